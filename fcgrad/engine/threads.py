"""How many BLAS threads each workload runs on: the thread policy.

A training step's products are batch-sized (64 x 784 @ 784 x 50 and smaller, about
0.1 ms): a second BLAS thread gains them little on a quiet machine and costs them
everything on a busy one, where each product waits for a thread that shares its core
with another program. Measured on the 2-core machine of issue #12 (OpenBLAS, SGD epoch
of the 784-50-10 net at batch 64): 0.73 s with 1 thread against 13.8 s with 2 while
another program kept one core busy (19x), and about 10% in favour of 2 threads when
quiet. Full-batch passes (60,000 x 784 @ 784 x 50, tens of ms) do split well across
cores: 141 against 180 ms on the quiet machine. Hence:

- `batch`: 1 thread for products of at most `BATCH_ROWS` rows (training steps);
- `full`: every core this process may run on, for bigger passes (each epoch's
  evaluation, gradcheck, bench's full-batch phases).

`--threads N` (`ThreadPolicy.fixed_at(N)`) runs both on N threads.

Before the first product on fewer threads than cores, `start_pool` runs one product on
every core, once per process. OpenBLAS runs single-threaded products much faster once
its thread pool has run one: on the 2-core Zen 1 EPYC of issue #12's figures (OpenBLAS
0.3.31, Haswell kernel), 64 x 784 @ 784 x 50 float32 took 235 us on 1 thread in a
process that had never run a product on 2, and 154 us after one 256 x 256 product on 2
threads (also with OPENBLAS_NUM_THREADS=1: 232 against 163 us). Without it a training
run's first epoch, before any full-batch pass, and everything under `--threads 1`, ran
at the slow rate. The product costs about a millisecond and changes no result; it is
the one product that runs on every core under `--threads N` too.

The thread count can change a product's last bits (OpenBLAS splits a 64 x 784 @ 784 x 50
product differently on 2 threads), so one fixed count for the batch steps also makes a
training run the same on every machine, whatever its cores. A checkpoint records the
run's `--threads` and a resume keeps it; resuming with another `--threads` than the run
began with continues correctly but not bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fcgrad.errors import ConfigError

BATCH_ROWS = 4096  # a product of at most this many rows is batch-sized
MAX_THREADS = 1024  # threads a policy may fix (OpenBLAS's own largest build)


def cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class ThreadPolicy:
    """BLAS threads for batch-sized products (`batch`) and for full-batch ones (`full`);
    `fixed` is True when the user chose one count for both (`--threads`)."""

    batch: int
    full: int
    fixed: bool = False

    @classmethod
    def default(cls) -> ThreadPolicy:
        """1 thread for batch steps, every core for full-batch passes."""
        return cls(batch=1, full=cores())

    @classmethod
    def fixed_at(cls, threads: int | None) -> ThreadPolicy:
        """`threads` for everything, or the default policy for None. ConfigError (param
        `threads`) below 1 or above MAX_THREADS."""
        if threads is None:
            return cls.default()
        if not 1 <= threads <= MAX_THREADS:
            raise ConfigError(
                f"threads must be from 1 to {MAX_THREADS:,}, got {threads}", param="threads"
            )
        return cls(batch=threads, full=threads, fixed=True)

    def for_rows(self, rows: int) -> int:
        """Threads for products with `rows` rows."""
        return self.batch if rows <= BATCH_ROWS else self.full

    def describe(self) -> str:
        """E.g. '1 BLAS thread for batch steps, 2 for full-batch passes' or '2 BLAS threads'."""
        if self.fixed or self.batch == self.full:
            return f"{self.batch} BLAS thread{'s' * (self.batch != 1)}"
        return f"{self.batch} BLAS thread for batch steps, {self.full} for full-batch passes"

    def to_dict(self) -> dict[str, object]:
        return {"batch": self.batch, "full": self.full, "fixed": self.fixed}

    @contextlib.contextmanager
    def batch_steps(self) -> Iterator[None]:
        """Within: BLAS runs on `batch` threads."""
        with blas_threads(self.batch):
            yield

    @contextlib.contextmanager
    def full_batch(self) -> Iterator[None]:
        """Within: BLAS runs on `full` threads."""
        with blas_threads(self.full):
            yield

    @contextlib.contextmanager
    def on_rows(self, rows: int) -> Iterator[None]:
        """Within: BLAS runs on the threads for products of `rows` rows."""
        with blas_threads(self.for_rows(rows)):
            yield


_pool_started = [False]


def start_pool() -> None:
    """Run one 256 x 256 float32 product on every core, the first time only (see the
    module's docstring: OpenBLAS's single-threaded products are faster afterwards)."""
    if _pool_started[0]:
        return
    _pool_started[0] = True
    n = cores()
    if n > 1:
        a = np.ones((256, 256), np.float32)
        with threadpool_limits(limits=n, user_api="blas"):
            np.matmul(a, a)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Within: numpy's BLAS runs on `n` threads (restored after); fewer than the cores
    start the pool first (`start_pool`)."""
    if n < cores():
        start_pool()
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def blas_threads_now() -> int:
    """The BLAS pool's current thread count (the largest, if there are several)."""
    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(pools, default=1)
