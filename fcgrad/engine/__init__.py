"""The engine: the op set with its VJPs (`ops`), reverse-mode autodiff over numpy
(`autodiff`), taped programs replayed on new values (`replay`), and pytrees (`pytree`).

`autodiff` is built on `tape` (primitives and the tape they record on) and `traced`
(`Box`, a traced value); `replay` on `recording` (a tape made a program) and `program`
(the program run).

Nothing here knows about nets or MNIST.
"""
