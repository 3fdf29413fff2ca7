"""The gradient checkers' shared parts: the verdict on one derivative, and finding kinks.

`check_grads.check_grads` (any function) and `net_gradcheck.gradcheck` (the lesson's net: the
strategies against each other and finite differences) judge every derivative with
`verdict.judge`, so that "pass" and "FAIL" mean the same in both.
"""
