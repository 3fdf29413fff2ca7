"""What a run of a net needs in memory, estimated before it starts, so that a net too big
for the machine is refused in one line with the figure instead of dying of a MemoryError
after an epoch (issue #13: `--hidden 100000` needed 8.5 GB at each epoch's evaluation).

The estimates count the arrays numpy holds at the peak, in bytes, for the float32 arrays
training uses: the parameters, their gradients and the optimizer's state; a batch step's
activations and their cotangents; and a chunk of evaluation (see `eval_chunk_rows`).
They leave out Python's own few MB and the data set, which is loaded already.
"""

from __future__ import annotations

import itertools
import os

from fcgrad.errors import ConfigError
from fcgrad.nn.net import Net

FLOAT = 4  # bytes of a float32
EVAL_BUDGET_BYTES = 256 * 2**20  # what one chunk of evaluation may hold
LIVE_COPIES = 4  # arrays of a layer's width alive at once in a pass (h, act, cotangent, mask)
STATE_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}  # optimizer arrays per parameter


def param_count(net: Net) -> int:
    """Weights and biases of the net."""
    sizes = net.sizes
    return sum(k * m + m for k, m in itertools.pairwise(sizes))


def pass_bytes(net: Net, rows: int) -> int:
    """A forward+backward pass on `rows` rows: each layer's activations and cotangents."""
    return rows * sum(net.sizes) * FLOAT * LIVE_COPIES


def eval_chunk_rows(net: Net) -> int:
    """Rows evaluated at once: as many as EVAL_BUDGET_BYTES holds for the widest layer
    (21,399 for the lesson's net, so the 10,000 valid images are one chunk)."""
    return max(1, EVAL_BUDGET_BYTES // (max(net.sizes) * FLOAT * LIVE_COPIES))


def train_bytes(net: Net, batch_size: int, optimizer: str) -> int:
    """Training's peak: parameters, gradients and optimizer state, a batch step, and a
    chunk of evaluation."""
    params = param_count(net) * FLOAT
    state = params * STATE_COPIES.get(optimizer, 2)
    step = pass_bytes(net, batch_size)
    evaluation = eval_chunk_rows(net) * max(net.sizes) * FLOAT * LIVE_COPIES
    return 2 * params + state + step + evaluation


def available_bytes() -> int | None:
    """Memory the machine can still give (MemAvailable of /proc/meminfo, else the free
    physical pages), or None when it cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def shortfall(needed: int) -> str | None:
    """'X of memory and Y is available' when `needed` bytes are more than the machine has
    available, else None (also when that cannot be told)."""
    have = available_bytes()
    if have is None or needed <= have:
        return None
    return f"{_size(needed)} of memory and {_size(have)} is available"


def check_fits(needed: int, what: str, param: str = "hidden") -> None:
    """ConfigError (naming `param`) when `needed` bytes are more than the machine has
    available; `what` says what needs them ('training a 784-100000-10 net')."""
    short = shortfall(needed)
    if short is not None:
        raise ConfigError(f"{param} too large: {what} needs about {short}", param=param)


def _size(n: int) -> str:
    """Bytes in GB or MB, as a person reads them."""
    return f"{n / 2**30:,.1f} GB" if n >= 2**30 else f"{n / 2**20:,.0f} MB"
