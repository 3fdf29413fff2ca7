"""The engine: the op set with its VJPs (`ops`), reverse-mode autodiff over numpy
(`autodiff`), taped programs replayed on new values (`replay`), and pytrees (`pytree`).

Nothing here knows about nets or MNIST.
"""
