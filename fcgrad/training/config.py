"""A training run's configuration and the record of one epoch."""

from __future__ import annotations

import dataclasses
import math

from fcgrad import strategies
from fcgrad.errors import ConfigError
from fcgrad.nn.activations import Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import NetConfig
from fcgrad.nn.optimizers import Hyper, Optimizer, default_lr


@dataclasses.dataclass(frozen=True)
class TrainConfig(NetConfig):
    """Hyperparameters. Defaults: the lesson's net with cross-entropy, 784-50-10, relu, SGD.

    `lr` is the learning rate; None takes the optimizer's default for the loss
    (`fcgrad.nn.optimizers.default_lr`: SGD 0.1 for cross-entropy and 0.01 for mse,
    momentum those times 1 - mu, Adam 1e-3). `seed` seeds init and the per-epoch
    shuffles. `momentum` is momentum's mu (unused by the other optimizers).
    """

    strategy: str = "tape"
    loss: Loss = Loss.cross_entropy
    hidden: tuple[int, ...] = (50,)
    epochs: int = 5
    batch_size: int = 64
    lr: float = None  # type: ignore[assignment]  # filled in by __post_init__
    seed: int = 0
    activation: Activation = Activation.relu
    optimizer: Optimizer = Optimizer.sgd
    momentum: float = 0.9

    def __post_init__(self) -> None:
        for name, kind in (("loss", Loss), ("activation", Activation), ("optimizer", Optimizer)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        if self.lr is None:
            object.__setattr__(self, "lr", default_lr(self.optimizer, self.loss, self.momentum))

    @property
    def hyper(self) -> Hyper:
        return Hyper(self.lr, self.momentum)

    def validate(self) -> None:
        """Raise ConfigError naming (as `param`) the first option that cannot be used."""
        strategies.get(self.strategy)
        self.check_at_least(epochs=1, batch_size=1, seed=0)
        if not 0 <= self.momentum < 1:  # first: the default rate is derived from it
            raise ConfigError(
                f"momentum must be at least 0 and below 1, got {self.momentum}", param="momentum"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr}", param="lr")


@dataclasses.dataclass(frozen=True)
class EpochResult:
    """One epoch: mean training loss over its steps, validation loss and accuracy, seconds."""

    epoch: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    seconds: float
