"""The gradient checkers' shared parts: the verdict on one derivative, and finding kinks.

`fcgrad.check.check_grads` (any function) and `fcgrad.gradcheck.gradcheck` (the lesson's
net) judge every derivative with `fcgrad.checking.verdict.judge`, so that "pass" and
"FAIL" mean the same in both.
"""
