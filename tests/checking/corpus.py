"""A corpus of functions with hand-written gradients, right and wrong, for testing the tester.

Each `Case` is a scalar function written with `fcgrad.engine.ops` (plain numpy on arrays), its
arguments (float64, seeded), its correct gradient by hand, the wrong rules people
write for it (a dropped factor, a transpose, a forgotten sum over the broadcast rows,
a tie rule whose shares sum to 2, a relu'(0) that is no subgradient), and, at kinks,
other correct gradients that choose another valid convention (relu'(0) = 0, 1 or
1/2; a tie to the first, the last, or split). `tests/checking/test_mutations.py`
adds the mistakes any gradient can have (a sign flip, a 1% error in one element, a
1e-3 relative error everywhere, a stale evaluation point, one argument's gradient
zeroed, a transposed square gradient) and checks `check_grads` at its defaults
against all of them.

The functions are in `corpus_smooth.py` and `corpus_kinks.py` (kinks and ties), their
`Case` in `corpus_case.py`; this module gathers them.
"""

from __future__ import annotations

from tests.checking.corpus_case import Case, Grad
from tests.checking.corpus_kinks import KINKS, two_relu_layers
from tests.checking.corpus_smooth import SMOOTH

__all__ = ["CASES", "Case", "Grad", "two_relu_layers"]

CASES = [*SMOOTH, *KINKS]
