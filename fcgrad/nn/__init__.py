"""The net: its description (layers, activations, loss), parameters and init, losses, and
optimizers. Every strategy, checker, benchmark and the CLI read the same description.
"""
