"""`fcgrad.ops`, the op set's public name (`from fcgrad.ops import relu`): it is
`fcgrad.engine.ops` itself, not a copy, so an op registered in one is in the other."""

import sys

from fcgrad.engine import ops

sys.modules[__name__] = ops
