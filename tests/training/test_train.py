"""Training on the real MNIST: the accuracy the issue promises, determinism, divergence, saving."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad import strategies
from fcgrad.errors import ConfigError, DataError, TrainingDiverged
from fcgrad.nn import Activation, Loss
from fcgrad.nn.optimizers import Optimizer
from fcgrad.training.train import Checkpoint, TrainConfig, TrainingInterrupted, train


def test_defaults_reach_97_percent(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    result = train(*mnist_normalized, TrainConfig())
    assert result.config == TrainConfig(
        strategy="tape",
        loss=Loss.cross_entropy,
        hidden=(50,),
        epochs=5,
        batch_size=64,
        lr=0.1,
        seed=0,
    )
    assert [e.epoch for e in result.epochs] == [1, 2, 3, 4, 5]
    assert result.valid_accuracy >= 0.970
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss


def test_same_seed_same_weights_with_every_strategy(
    mnist_normalized: tuple[np.ndarray, ...],
) -> None:
    x, y, xv, yv = mnist_normalized
    runs = {
        s: train(x[:6400], y[:6400], xv[:1000], yv[:1000], TrainConfig(strategy=s, epochs=2))
        for s in strategies.NAMES
    }
    ref = runs["manual"].params.named()
    for s, run in runs.items():
        for name, w in run.params.named().items():
            np.testing.assert_allclose(w, ref[name], rtol=1e-5, atol=1e-6, err_msg=f"{s} {name}")


def test_mse_trains_the_lessons_regression(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    x, y, xv, yv = mnist_normalized
    result = train(x, y, xv, yv, TrainConfig(loss=Loss.mse, epochs=2, strategy="vwc"))
    assert result.config.lr == 0.01  # mse's default rate; 0.1 diverges
    # predicting the mean digit gives MSE ~8.3 and ~10% rounded accuracy; training does far better
    assert result.epochs[-1].valid_loss < 2.5
    assert result.valid_accuracy > 0.3


def test_non_finite_loss_names_epoch_step_and_rate(
    mnist_normalized: tuple[np.ndarray, ...],
) -> None:
    x, y, xv, yv = mnist_normalized
    with pytest.raises(
        TrainingDiverged,
        match=r"epoch 1, step \d+ with learning rate 1e\+06 \(sgd\); try a smaller learning",
    ):
        train(x[:2000], y[:2000], xv[:100], yv[:100], TrainConfig(loss=Loss.mse, lr=1e6, epochs=1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "epochs must be at least 1"),
        ("batch_size", -1, "batch_size must be at least 1"),
        ("lr", 0.0, "lr must be a positive number"),
        ("lr", float("nan"), "lr must be a positive number"),
        ("hidden", (0,), "hidden sizes must be at least 1"),
        ("strategy", "adam", "strategy 'adam' is unknown"),
        ("momentum", 1.0, "momentum must be at least 0 and below 1"),
    ],
)
def test_bad_config_names_the_parameter_not_a_flag(field: str, value: Any, message: str) -> None:
    cfg = TrainConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"^{message}") as e:
        cfg.validate()
    assert e.value.param == field and "--" not in str(e.value)


def test_progress_receives_every_step(mnist_normalized: tuple[np.ndarray, ...]) -> None:
    x, y, xv, yv = mnist_normalized
    calls: list[str] = []

    class Recorder:
        def start_epoch(self, epoch: int, steps: int) -> None:
            calls.append(f"start {epoch} {steps}")

        def step(self, loss: float) -> None:
            calls.append("step")

        def end_epoch(self, result: Any) -> None:
            calls.append(f"end {result.epoch}")

    train(x[:130], y[:130], xv[:10], yv[:10], TrainConfig(epochs=1), Recorder())
    assert calls == ["start 1 3", "step", "step", "step", "end 1"]  # 130 rows / 64 = 3 steps


def test_save_writes_a_checkpoint_atomically(tmp_path: Path, mnist_normalized: Any) -> None:
    x, y, xv, yv = mnist_normalized
    cfg = TrainConfig(epochs=1)
    result = train(x[:640], y[:640], xv[:100], yv[:100], cfg, stats=(0.1307, 0.3081))
    path = result.checkpoint.save(tmp_path / "w.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temporary left behind
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["w1"], result.params.layers[0].w)
    back = Checkpoint.load(path)
    assert back.config == result.config and back.epoch == 2 and back.step == 0
    assert (back.mean, back.std) == (0.1307, 0.3081) and back.history == result.epochs


def test_not_a_checkpoint_is_a_data_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", a=np.ones(2))
    with pytest.raises(DataError, match="is not an fcgrad checkpoint"):
        Checkpoint.load(tmp_path / "x.npz")


RESUMED = [
    ("manual", Optimizer.sgd),
    ("vwc", Optimizer.sgd),
    ("tape", Optimizer.sgd),
    ("tape", Optimizer.momentum),
    ("vwc", Optimizer.adam),
    ("manual", Optimizer.adam),
]


@pytest.mark.parametrize(("name", "optimizer"), RESUMED)
def test_interrupted_saved_loaded_and_resumed_gives_the_same_weights(
    name: str, optimizer: Optimizer, tmp_path: Path, synthetic: Any
) -> None:
    """Stopped inside epoch 2, written to disk, read back and continued: the weights and the
    optimizer's state end bit for bit where an uninterrupted run ends."""
    x, y, xv, yv = synthetic
    cfg = TrainConfig(strategy=name, epochs=3, optimizer=optimizer, activation=Activation.tanh)
    reference = train(x, y, xv, yv, cfg)
    calls = iter(range(10**6))
    with pytest.raises(TrainingInterrupted) as stopped:  # stop after 60 steps: inside epoch 2
        train(x, y, xv, yv, cfg, should_stop=lambda: next(calls) >= 59)
    ck = stopped.value.checkpoint
    assert (ck.epoch, ck.step) == (2, 13)  # 47 steps an epoch: 47 + 13 = 60
    back = Checkpoint.load(ck.save(tmp_path / "stopped.npz"))
    assert back.config == cfg
    assert back.optimizer.keys() == ck.optimizer.keys()
    resumed = train(x, y, xv, yv, cfg, resume=back)
    for a, b in zip(resumed.params.arrays(), reference.params.arrays()):
        np.testing.assert_array_equal(a, b)  # bit for bit: same steps, same order, same state
    assert [e.train_loss for e in resumed.epochs] == [e.train_loss for e in reference.epochs]
    for k, v in reference.checkpoint.optimizer.items():
        np.testing.assert_array_equal(resumed.checkpoint.optimizer[k], v, err_msg=k)


def test_a_checkpoint_keeps_the_optimizers_state(tmp_path: Path, synthetic: Any) -> None:
    x, y, xv, yv = (a[:640] for a in synthetic)
    cfg = TrainConfig(epochs=1, optimizer=Optimizer.adam, activation=Activation.leaky_relu)
    result = train(x, y, xv, yv, cfg)
    path = result.checkpoint.save(tmp_path / "adam.npz")
    with np.load(path) as saved:
        names = sorted(k for k in saved.files if k.startswith("optimizer."))
        np.testing.assert_array_equal(saved["optimizer.m.w2"], result.checkpoint.optimizer["m.w2"])
    assert names == sorted(f"optimizer.{s}.{p}" for s in "mv" for p in ("w1", "b1", "w2", "b2"))
    back = Checkpoint.load(path)
    assert back.optimizer["t"] == 10 and back.config.optimizer is Optimizer.adam
    assert back.config.activation is Activation.leaky_relu


def test_a_checkpoint_from_before_optimizers_loads_as_sgd(tmp_path: Path) -> None:
    """The layout fcgrad wrote before: w1, b1, ..., and a config without activation,
    optimizer or momentum."""
    meta = {
        "config": {
            "strategy": "tape",
            "loss": "cross-entropy",
            "hidden": [3],
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.1,
            "seed": 0,
        },
        **{"epoch": 3, "step": 0, "loss_sum": 0.0},
        "rng_state": np.random.default_rng(0).bit_generator.state,
        **{"mean": 0.1307, "std": 0.3081},
        "history": [  # one record per finished epoch
            {"epoch": e, "train_loss": 0.5, "valid_loss": 0.4, "valid_accuracy": 0.9}
            | {"seconds": 1.0}
            for e in (1, 2)
        ],
    }
    arrays = {"w1": np.ones((784, 3)), "b1": np.ones(3), "w2": np.ones((3, 10)), "b2": np.ones(10)}
    np.savez(tmp_path / "old.npz", checkpoint=np.array(json.dumps(meta)), **arrays)
    back = Checkpoint.load(tmp_path / "old.npz")
    assert back.config.optimizer is Optimizer.sgd and back.config.activation is Activation.relu
    assert back.optimizer == {} and back.params.sizes == (784, 3, 10)


def test_a_checkpoint_refuses_data_normalized_otherwise(synthetic: Any) -> None:
    x, y, xv, yv = (a[:640] for a in synthetic)
    ck = train(x, y, xv, yv, TrainConfig(epochs=1), stats=(0.1307, 0.3081)).checkpoint
    ck.check_statistics(0.1307, 0.3081, "w.npz", "data")  # the same data: fine
    with pytest.raises(DataError, match=r"^w\.npz was trained on data with other statistics"):
        ck.check_statistics(0.5, 0.3081, "w.npz", "data")


def test_an_invalid_momentum_is_named_even_when_the_rate_is_derived_from_it() -> None:
    cfg = TrainConfig(optimizer=Optimizer.momentum, momentum=1.0)  # lr = 0.1 * (1 - 1) = 0
    with pytest.raises(ConfigError, match=r"^momentum must be at least 0 and below 1, got 1\.0"):
        cfg.validate()


def _spoiled(path: Path, tmp_path: Path, **change: Any) -> Path:
    """A copy of checkpoint `path` with arrays replaced (None: removed) or, under "meta",
    a function applied to its JSON state."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["checkpoint"]))
    if "meta" in change:
        change.pop("meta")(meta)
    arrays["checkpoint"] = np.array(json.dumps(meta))
    for key, value in change.items():
        key = key.replace("__", ".")
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    out = tmp_path / "spoiled.npz"
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"meta": lambda m: m["config"].update(optimizer="momentum")}, "not one of momentum's"),
        ({"optimizer__m__w1": None}, "optimizer state m.w1 is missing"),
        ({"optimizer__v__w2": np.zeros((3, 3), np.float32)}, "v.w2 is (3, 3) float32, where"),
        ({"w1": np.zeros((5, 50), np.float32)}, "w1 is (5, 50) float32, where it needs (784, 50)"),
        ({"meta": lambda m: m["optimizer"].pop("t")}, "optimizer state t is missing"),
        ({"w1": np.zeros((784, 50), np.int32)}, "w1 is (784, 50) int32, where it needs"),
        (
            {"w3": np.zeros((10, 10), np.float32), "b3": np.zeros(10, np.float32)},
            "it holds b3, w3, which the configuration does not describe",
        ),
    ],
    ids=[
        "another optimizer",
        "a moment gone",
        "a moment misshapen",
        "w1 misshapen",
        "no t",
        "w1 of integers",
        "a layer more",
    ],
)
def test_a_checkpoint_that_does_not_fit_its_configuration_is_one_data_error(
    tmp_path: Path, synthetic: Any, change: dict[str, Any], message: str
) -> None:
    x, y, xv, yv = (a[:640] for a in synthetic)
    net = TrainConfig(epochs=1, optimizer=Optimizer.adam, hidden=(50,))
    saved = train(x, y, xv, yv, net).checkpoint.save(tmp_path / "adam.npz")
    with pytest.raises(DataError, match="does not fit its own configuration") as e:
        Checkpoint.load(_spoiled(saved, tmp_path, **change))
    assert message in str(e.value) and "spoiled.npz" in str(e.value)


def test_a_truncated_checkpoint_is_a_data_error(tmp_path: Path, synthetic: Any) -> None:
    x, y, xv, yv = (a[:640] for a in synthetic)
    saved = train(x, y, xv, yv, TrainConfig(epochs=1)).checkpoint.save(tmp_path / "w.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved.read_bytes()[:1000])  # a partial copy
    with pytest.raises(DataError, match=r"cut\.npz is not an fcgrad checkpoint"):
        Checkpoint.load(cut)


def test_a_finished_run_extended_on_resume_ends_as_a_longer_run(synthetic: Any) -> None:
    x, y, xv, yv = (a[:1280] for a in synthetic)
    cfg = TrainConfig(epochs=1, optimizer=Optimizer.momentum)
    finished = train(x, y, xv, yv, cfg).checkpoint
    longer = train(x, y, xv, yv, dataclasses.replace(cfg, epochs=3))
    extended = train(x, y, xv, yv, finished.resumed(3), resume=finished)
    for a, b in zip(extended.params.arrays(), longer.params.arrays()):
        np.testing.assert_array_equal(a, b)
    assert [e.epoch for e in extended.epochs] == [1, 2, 3]
    for epochs in (None, 1):  # nothing left to run
        with pytest.raises(ConfigError, match="has finished 1 of its 1 epochs") as e:
            finished.resumed(epochs)
        assert e.value.param == "epochs"


def test_at_chance_is_a_valid_accuracy_of_at_most_15_percent(synthetic: Any) -> None:
    x, y, xv, yv = (a[:640] for a in synthetic)
    result = train(x, y, xv, yv, TrainConfig(epochs=1))
    assert not result.at_chance and result.to_dict()["at_chance"] is False
    for accuracy, chance in ((0.15, True), (0.1, True), (0.151, False)):
        last = dataclasses.replace(result.epochs[-1], valid_accuracy=accuracy)
        assert dataclasses.replace(result, epochs=[last]).at_chance is chance


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.full(64, 10), "labels_train must be digits 0..9, got values from 10 to 10"),
        (np.full(64, -1), "labels_train must be digits 0..9, got values from -1 to -1"),
        (np.zeros(64, np.float32), "labels_train must be integer digits 0..9, not float32"),
    ],
)
def test_labels_that_are_not_digits_are_refused(
    synthetic: Any, labels: np.ndarray, message: str
) -> None:
    """Issue #13: labels outside 0..9 were not checked in the Python API."""
    x, _, xv, yv = (a[:64] for a in synthetic)
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}") as e:
        train(x, labels, xv, yv, TrainConfig(epochs=1))
    assert e.value.param == "labels_train"


def test_a_checkpoint_resumes_only_from_a_place_its_run_reaches(synthetic: Any) -> None:
    """Its step within the epoch's steps and Adam's step count t the steps taken: a step of
    10^6 resumed into zero steps, and a t of 10^30 into another bias correction than the
    run had (a helper's report on #13). 640 rows in batches of 64 are 10 steps."""
    x, y, xv, yv = (a[:640] for a in synthetic)
    config = TrainConfig(epochs=2, optimizer=Optimizer.adam)
    with pytest.raises(TrainingInterrupted) as e:
        train(x, y, xv, yv, config, should_stop=lambda: True, stats=(0.1, 0.3))
    ck = e.value.checkpoint
    assert (ck.epoch, ck.step, ck.optimizer["t"]) == (1, 1, 1)
    ck.check_position(640)  # where the run stopped: fine
    past = dataclasses.replace(ck, step=10)
    with pytest.raises(DataError, match=r"^w\.npz: its step 10 is past its epoch's 10 steps"):
        past.check_position(640, "w.npz")
    with pytest.raises(DataError, match=r"\(640 rows in batches of 64\)$"):
        train(x, y, xv, yv, config, resume=past)
    other_t = dataclasses.replace(ck, optimizer={**ck.optimizer, "t": 5})
    with pytest.raises(DataError, match=r"has taken 5 steps, where its epoch 1 and step 1 say 1$"):
        other_t.check_position(640)


def test_without_its_statistics_a_checkpoint_cannot_predict_nor_be_checked(
    synthetic: Any,
) -> None:
    """A run of the API given no statistics keeps NaN for them: predict refused, instead
    of printing 'nan%' for every digit."""
    from fcgrad.training.evaluation import predict

    x, y, xv, yv = (a[:320] for a in synthetic)
    ck = train(x, y, xv, yv, TrainConfig(epochs=1)).checkpoint
    assert not ck.knows_statistics
    with pytest.raises(DataError, match=r"^w\.npz records no training statistics .* which predict"):
        predict(ck, np.zeros((1, 784), np.float32), ["#0"], [None], "w.npz")
    with pytest.raises(DataError, match=r"^w\.npz records no training statistics .* against d$"):
        ck.check_statistics(0.1307, 0.3081, "w.npz", "d")
