"""JSON output that stays JSON: NaN and infinities (which json.dumps writes as bare NaN,
Infinity, not JSON) become null."""

from __future__ import annotations

import math
from typing import Any


def finite(obj: Any) -> Any:
    """`obj` with every non-finite float inside dicts, lists and tuples replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj
