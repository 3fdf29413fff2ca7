"""Initial parameters that follow the activation (the lesson's "why kaiming init").

A dense layer feeding activation A gets weights `randn * std` with A's std
(`fcgrad.nn.activations.ACTIVATIONS`: kaiming, He et al. 2015, for the relu family;
Glorot/Xavier, Glorot and Bengio 2010, for tanh and sigmoid). The output layer, which
feeds the loss, gets `randn / sqrt(fan_in)` (LeCun's variance 1 / fan_in, as the
lesson's last layer). Biases are zero. Weights are drawn layer by layer from one
`numpy.random.Generator` (PCG64), so a seed gives the same weights everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fcgrad.errors import ConfigError
from fcgrad.nn.activations import ACTIVATIONS, Activation
from fcgrad.nn.losses import Loss
from fcgrad.nn.net import Act, Dense, Net, fitting_loss
from fcgrad.nn.params import Linear, Params


def layer_stds(net: Net) -> list[float]:
    """The std of each dense layer's weights: its activation's init, 1/sqrt(fan_in) last."""
    stds = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            after = net.layers[i + 1] if i + 1 < len(net.layers) else None
            if isinstance(after, Act):
                stds.append(ACTIVATIONS[after.activation].std(layer.fan_in, layer.fan_out))
            else:
                stds.append(1.0 / math.sqrt(layer.fan_in))
    return stds


def init_params(
    net: Net | Sequence[int],
    seed: int | np.random.Generator = 0,
    dtype: type = np.float32,
    activation: Activation = Activation.relu,
) -> Params:
    """Parameters for `net` (or, as before, the relu mlp of layer widths `net`, input first;
    `activation` then names its activation), float32 unless `dtype` says otherwise.

    `seed` seeds a `numpy.random.Generator` (PCG64); the same seed gives the same weights.
    Raises ConfigError (param `seed`) for a negative seed, and (param `hidden`) for fewer
    than two sizes or a size below 1.
    """
    if not isinstance(net, Net):
        net = Net.mlp(net, fitting_loss(net[-1]) if len(net) else Loss.mse, activation)
    if not isinstance(seed, np.random.Generator) and seed < 0:
        raise ConfigError(f"seed must be 0 or more, got {seed}", param="seed")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layers = []
    for d, std in zip(net.dense, layer_stds(net)):
        w: np.ndarray = (rng.standard_normal((d.fan_in, d.fan_out)) * std).astype(dtype)
        layers.append(Linear(w, np.zeros(d.fan_out, dtype=dtype)))
    return Params(tuple(layers))
