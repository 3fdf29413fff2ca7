"""A run's exact state at a step boundary, saved to and read from an .npz file."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fcgrad.errors import ConfigError, DataError, FcgradError, StateError, WriteError
from fcgrad.fileio import atomic_path, open_regular, remove_stale_temps, short_path
from fcgrad.nn import losses, optimizers
from fcgrad.nn.optimizers import State
from fcgrad.nn.params import Params
from fcgrad.training import checkpoint_read
from fcgrad.training.config import EpochResult, TrainConfig

OPTIMIZER_PREFIX = "optimizer."  # arrays of the optimizer's state: optimizer.velocity.w1, ...
RESCUE_PREFIX = "fcgrad-rescued-"  # a checkpoint written elsewhere when --save cannot be


@dataclasses.dataclass
class Checkpoint:
    """A run's exact state at a step boundary: continuing from it gives the same weights as
    never stopping.

    `epoch` is the epoch in progress (config.epochs + 1 once finished), `step` the steps of
    it already taken, `rng_state` the shuffling Generator's state at that epoch's start
    (so its permutation can be drawn again), `loss_sum` the sum of its steps' losses so far,
    `history` the finished epochs, `mean`/`std` the normalization statistics used, and
    `optimizer` the optimizer's state (`fcgrad.nn.optimizers`: momentum's velocities,
    Adam's moments and step count; nothing for SGD). `threads` is the run's `--threads`
    (None: the default policy, 1 BLAS thread for the batch steps), which a resume keeps:
    another thread count can change a product's last bits, and so the run's.
    """

    config: TrainConfig
    params: Params
    epoch: int
    step: int
    rng_state: Mapping[str, Any]
    loss_sum: float
    history: list[EpochResult]
    mean: float
    std: float
    optimizer: State = dataclasses.field(default_factory=dict)
    threads: int | None = None

    def save(self, path: str | Path, rescue: Sequence[str | Path] = ()) -> Path:
        """Write the weights (w1, b1, ...), the optimizer's arrays (optimizer.m.w1, ...) and
        the state (JSON) to `path` (.npz), atomically.

        When `path` cannot be written (a full disk, its folder gone), the checkpoint is
        written to a new `fcgrad-rescued-NAME-*.npz` in the first of the system's temp
        folder and the `rescue` folders that takes it, and WriteError says where
        (`rescued`); only when none takes it is it lost, and the error says so.
        """
        arrays = self._arrays()
        try:
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, **arrays)
            return Path(path)
        except FcgradError as e:
            failed = str(e)
        folders = [tempfile.gettempdir(), *map(str, rescue)]
        for folder in dict.fromkeys(folders):
            rescued = _write_rescue(arrays, folder, Path(path).stem)
            if rescued is not None:
                raise WriteError(
                    f"{failed}; the checkpoint is saved to {rescued} instead", rescued=rescued
                )
        raise WriteError(f"{failed}, nor in {', '.join(dict.fromkeys(folders))}: it is lost")

    def _arrays(self) -> dict[str, Any]:
        opt_arrays = {k: v for k, v in self.optimizer.items() if isinstance(v, np.ndarray)}
        meta = {
            "config": losses.config_dict(self.config),
            "epoch": self.epoch,
            "step": self.step,
            "rng_state": self.rng_state,
            "loss_sum": self.loss_sum,
            "mean": self.mean,
            "std": self.std,
            "history": [dataclasses.asdict(e) for e in self.history],
            "optimizer": {k: v for k, v in self.optimizer.items() if k not in opt_arrays},
            "threads": self.threads,
        }
        return {
            **self.params.named(),
            **{OPTIMIZER_PREFIX + k: v for k, v in opt_arrays.items()},
            "checkpoint": np.array(json.dumps(meta)),
        }

    def resumed(self, epochs: int | None = None) -> TrainConfig:
        """The configuration to continue with: the checkpoint's, run to `epochs` epochs when
        given (more extends a finished run). ConfigError (param `epochs`) when that leaves
        no epoch to run: the run has finished as many already."""
        done, total = len(self.history), self.config.epochs if epochs is None else epochs
        if total <= done:
            raise ConfigError(
                f"this run has finished {done} of its {self.config.epochs} epochs; to go on, "
                f"give epochs above {done}",
                param="epochs",
            )
        return dataclasses.replace(self.config, epochs=total)

    def check_statistics(self, mean: float, std: float, name: object, data: object) -> None:
        """DataError unless this run was normalized with the data's (mean, std): resuming on
        other data would silently train another problem. `name` and `data` name the
        checkpoint and the data in the message."""
        if not self.knows_statistics:
            raise DataError(
                f"{name} records no training statistics (a run of the Python API given "
                f"none), so it cannot be checked against {data}"
            )
        if not np.allclose((self.mean, self.std), (mean, std)):
            raise DataError(f"{name} was trained on data with other statistics than {data}")

    @property
    def knows_statistics(self) -> bool:
        """Whether the run recorded its data's (mean, std): NaN when train() was given none."""
        return not (np.isnan(self.mean) or np.isnan(self.std))

    def check_position(self, rows: int, name: object = "the checkpoint") -> None:
        """DataError unless this checkpoint's place in its run is one that training over
        `rows` rows reaches: its step within the epoch's ceil(rows / batch_size) steps, and
        the optimizer's step count (momentum, Adam) the steps taken to get there. A
        checkpoint at step 10^6 trained no step; one whose Adam t disagrees resumed with
        another bias correction than the run had. `name` names it in the message."""
        steps = -(-rows // self.config.batch_size)
        if self.step >= steps:
            raise DataError(
                f"{name}: its step {self.step} is past its epoch's {steps} steps "
                f"({rows:,} rows in batches of {self.config.batch_size})"
            )
        t, taken = self.optimizer.get("t"), (self.epoch - 1) * steps + self.step
        if t is not None and t != taken:
            raise DataError(
                f"{name}: its optimizer has taken {t} steps, where its epoch "
                f"{self.epoch} and step {self.step} say {taken:,}"
            )

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        """Read a checkpoint written by `save` (or by fcgrad before optimizers, as SGD), as
        an untrusted file (`fcgrad.training.checkpoint_read`: every array's header checked
        against the configuration before it is read, so a crafted file costs no more
        memory than a real one). DataError naming the file when it is not one: not an .npz
        (or a truncated one), its state unreadable, its arrays not those of its configured
        net and optimizer, or not finite."""
        try:
            with open_regular(path) as f, np.load(f, allow_pickle=False) as data:
                if not hasattr(data, "files"):  # an .npy: one array
                    raise DataError(f"{path} is one .npy array, not an fcgrad checkpoint")
                found = checkpoint_read.npz_headers(data, path)
                meta = checkpoint_read.read_meta(data, found, path)
                config = _config(meta)
                checkpoint_read.check_state(meta, path)
                if meta["epoch"] > config.epochs + 1:
                    raise DataError(
                        f"{path}: its epoch {meta['epoch']} is past the end of its run of "
                        f"{config.epochs} epochs"
                    )
                expected = _expected_shapes(config, found)
                read = checkpoint_read.read_arrays(data, found, expected, path)
            n = len(config.hidden) + 1
            params = Params.from_arrays([read[f"{k}{i}"] for i in range(1, n + 1) for k in "wb"])
            state: State = {
                k[len(OPTIMIZER_PREFIX) :]: v
                for k, v in read.items()
                if k.startswith(OPTIMIZER_PREFIX)
            }
            state.update(meta.get("optimizer", {}))
            optimizers.make(config.optimizer, params, config.hyper).load(state)  # (reads t)
            return cls(
                config,
                params,
                meta["epoch"],
                meta["step"],
                meta["rng_state"],
                meta["loss_sum"],
                [EpochResult(**e) for e in meta["history"]],
                meta["mean"],
                meta["std"],
                state,
                meta.get("threads"),  # (None in a checkpoint of fcgrad before it)
            )
        except DataError:
            raise
        except FcgradError as e:  # read, but not the arrays of its configured net and optimizer
            raise DataError(f"{path} does not fit its own configuration: {e}") from None
        except checkpoint_read.READ_ERRORS:
            raise DataError(
                f"{path} is not an fcgrad checkpoint (an .npz written by `fcgrad train --save`)"
            ) from None


def _config(meta: Any) -> TrainConfig:
    """The TrainConfig a checkpoint's state describes (TypeError/KeyError/ValueError when
    it describes none), validated."""
    cfg = dict(meta["config"])
    hidden = cfg["hidden"]
    if not isinstance(hidden, list) or not all(type(h) is int for h in hidden):
        raise TypeError("hidden")
    cfg["hidden"] = tuple(hidden)
    config = TrainConfig(**cfg)
    config.validate()
    return config


def _expected_shapes(config: TrainConfig, found: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every array the configuration needs, by name and shape: the net's w1, b1, ... for
    MNIST's 784 inputs, and its optimizer's slots (those the file has: a checkpoint of
    fcgrad before optimizers has none, and loads as SGD)."""
    net = config.net()
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (k, m) in enumerate(itertools.pairwise(net.sizes), start=1):
        shapes[f"w{i}"], shapes[f"b{i}"] = (k, m), (m,)
    slots = getattr(optimizers.OPTIMIZERS[config.optimizer], "SLOTS", ())
    for name in found:
        if name.startswith(OPTIMIZER_PREFIX):
            slot, _, key = name[len(OPTIMIZER_PREFIX) :].partition(".")
            if slot not in slots or key not in shapes:  # (an array of another optimizer
                # was accepted and dropped, as one for no parameter was refused)
                raise StateError(
                    f"optimizer array {short_path(name)} is not one of {config.optimizer.value}'s"
                    " for a parameter of the net"
                )
            shapes[name] = shapes[key]
    return shapes


def _write_rescue(arrays: dict[str, Any], folder: str, stem: str) -> str | None:
    """`arrays` in a new `fcgrad-rescued-STEM-<random>.npz` in `folder`, written as any
    save is (`atomic_path`: it appears complete or not at all, so a second signal or a
    kill mid-write leaves no half-written rescue); its path, or None (nothing left) when
    the folder cannot take it."""
    safe = re.sub(r"[^\w.-]", "_", stem[:40], flags=re.ASCII)  # a name one can paste
    remove_stale_temps(Path(folder), RESCUE_PREFIX, ".npz", prefix=True)  # a killed rescue's
    for _ in range(8):  # (a name already taken: another draw)
        path = Path(folder) / f"{RESCUE_PREFIX}{safe}-{secrets.token_hex(4)}.npz"
        if not path.exists():
            break
    try:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
    except (FcgradError, OSError):
        return None
    return str(path)
