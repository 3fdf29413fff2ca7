"""Using a trained model: its scores, its predictions, and a user's own image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.cli.render_model import digit_art
from fcgrad.errors import DataError, ShapeError
from fcgrad.nn import Loss
from fcgrad.training.evaluation import evaluate_model, load_image, predict
from fcgrad.training.train import Checkpoint, TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def trained(synthetic: Any) -> dict[Loss, Checkpoint]:
    x, y, xv, yv = synthetic
    return {
        loss: train(x, y, xv, yv, TrainConfig(loss=loss, epochs=2), stats=(0.0, 1.0)).checkpoint
        for loss in Loss
    }


@pytest.mark.parametrize("loss", list(Loss))
def test_scores_agree_with_the_training_loops_evaluation(
    synthetic: Any, trained: dict[Loss, Checkpoint], loss: Loss
) -> None:
    _, _, xv, yv = synthetic
    ck = trained[loss]
    result = evaluate_model(ck, xv, yv, "m.npz")
    want_loss, want_accuracy = evaluate(ck.params, xv, yv, ck.config.net())
    assert result.loss == pytest.approx(want_loss, rel=1e-6)
    assert result.accuracy == pytest.approx(want_accuracy)
    c = result.confusion
    assert c.shape == (10, 10) and c.sum() == len(yv)
    assert c.sum(axis=1).tolist() == np.bincount(yv, minlength=10).tolist()  # rows: true digit
    assert result.accuracy == pytest.approx(np.trace(c) / len(yv))
    assert result.per_class == pytest.approx((c.diagonal() / c.sum(axis=1)).tolist())
    assert set(result.to_dict()) >= {"loss", "accuracy", "per_class", "confusion"}


def test_predictions_give_sorted_top_three_probabilities(
    synthetic: Any, trained: dict[Loss, Checkpoint]
) -> None:
    _, _, xv, yv = synthetic
    raw = np.clip(xv[:4] * 0.1 + 0.5, 0, 1)  # any pixels in [0, 1]
    ck = trained[Loss.cross_entropy]
    got = predict(ck, raw, [f"#{i}" for i in range(4)], [int(d) for d in yv[:4]])
    for p in got.predictions:
        probabilities = [q for _, q in p.top]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
        assert p.digit == p.top[0][0] and p.output is None and p.image.shape == (28, 28)
    mse = predict(trained[Loss.mse], raw[:1], ["#0"], [None]).predictions[0]
    assert mse.top == [] and mse.digit == int(np.clip(np.rint(mse.output), 0, 9))


def test_a_users_image_from_npy(tmp_path: Path) -> None:
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 13:15] = 255  # a "1", in 0..255
    np.save(tmp_path / "one.npy", digit)
    pixels = load_image(tmp_path / "one.npy")
    assert pixels.shape == (784,) and pixels.max() == 1.0 and pixels.dtype == np.float32
    np.save(tmp_path / "flat.npy", pixels)  # already in [0, 1]: kept
    np.testing.assert_array_equal(load_image(tmp_path / "flat.npy"), pixels)
    art = digit_art(pixels.reshape(28, 28)).splitlines()
    assert len(art) == 28 and all(len(line) == 56 for line in art)
    assert art[10] == " " * 26 + "████" + " " * 26 and art[0] == " " * 56


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((28, 27)),
        np.full((28, 28), np.nan),
        np.full(784, -1.0),
        np.array(["a"] * 784),
        np.ones((28, 28), complex),  # was a ComplexWarning, and its real part predicted
        np.ones(784, "m8[s]"),  # numpy counts timedelta64 among its numbers
    ],
    ids=["misshapen", "nan", "negative", "text", "complex", "timedelta"],
)
def test_a_bad_image_file_is_a_data_error(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=r"bad\.npy"):
        load_image(tmp_path / "bad.npy")
    (tmp_path / "text.npy").write_bytes(b"not an array at all")  # numpy: "pickled" data
    with pytest.raises(DataError, match=r"text\.npy: not a \.npy or \.png file of an image$"):
        load_image(tmp_path / "text.npy")
    np.save(tmp_path / "cut.npy", np.zeros((28, 28)))
    with open(tmp_path / "cut.npy", "r+b") as f:
        f.truncate(200)  # the header and a few pixels
    with pytest.raises(DataError, match=r"cut\.npy: "):
        load_image(tmp_path / "cut.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros(3))
    with pytest.raises(DataError, match=r"two\.npz is an \.npz archive; give one image"):
        load_image(tmp_path / "two.npz")


def test_images_of_another_width_are_a_shape_error(trained: dict[Loss, Checkpoint]) -> None:
    with pytest.raises(ShapeError, match=r"must be \(N, 784\)"):
        predict(trained[Loss.mse], np.zeros((1, 783), np.float32), ["x"], [None])


def test_a_users_png_dark_on_light_is_read_as_mnist_draws_it(tmp_path: Path) -> None:
    import matplotlib.image

    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 13:15] = 1.0
    paper = np.stack([1.0 - digit] * 3, axis=-1)  # a dark "1" on white paper, in colour
    matplotlib.image.imsave(tmp_path / "one.png", paper)
    pixels = load_image(tmp_path / "one.png")
    np.testing.assert_allclose(pixels.reshape(28, 28), digit, atol=1 / 255)
    matplotlib.image.imsave(tmp_path / "big.png", np.zeros((30, 28)))
    with pytest.raises(DataError, match=r"big\.png must be a 28x28 picture, got 28x30"):
        load_image(tmp_path / "big.png")
    (tmp_path / "fake.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"fake\.png is not a readable PNG"):
        load_image(tmp_path / "fake.png")


def test_a_wide_models_evaluation_holds_one_chunk_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluate and predict run the net in chunks of `eval_chunk_rows`, as training does:
    under a 1 MB budget (16 rows through a 4,096-wide layer) scoring 1,000 images allocates
    under 4 MB, where one pass takes 16 MB per array (a 784-100000-10 model took 8.4 GB in
    fixed 10,000-row chunks)."""
    import tracemalloc

    from fcgrad.nn import memory
    from fcgrad.nn.init import init_params

    config = TrainConfig(hidden=(4096,))
    params = init_params(config.net(), 0)
    ck = Checkpoint(config, params, 2, 0, {}, 0.0, [], 0.0, 1.0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 1000)
    whole = evaluate_model(ck, x, labels)
    monkeypatch.setattr(memory, "EVAL_BUDGET_BYTES", 2**20)
    tracemalloc.start()
    try:
        chunked = evaluate_model(ck, x, labels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak
    assert chunked.accuracy == whole.accuracy and chunked.loss == pytest.approx(whole.loss)


def test_hostile_images_are_refused_from_their_headers(tmp_path: Path) -> None:
    """A 228-byte .npy claiming 100000 x 100000 float64 was a MemoryError for 74.5 GiB, and
    a PNG of 30000 x 30000 took 5.3 GB to decode before its size was refused (a helper's
    report on #13); both are refused by their headers now. Here the PNG is its signature
    and IHDR chunk alone: never decoded."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float64))
    header["shape"] = (100_000, 100_000)
    with open(tmp_path / "claim.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(64))
    with pytest.raises(DataError, match=r"claim\.npy must hold a 28x28 grayscale image, got \("):
        load_image(tmp_path / "claim.npy")
    ihdr = (30_000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + ihdr
    (tmp_path / "bomb.png").write_bytes(png + bytes(4))
    with pytest.raises(DataError, match=r"bomb\.png must be a 28x28 picture, got 30000x30000$"):
        load_image(tmp_path / "bomb.png")


def test_a_fifo_given_as_a_file_is_refused_not_waited_on(tmp_path: Path, synthetic: Any) -> None:
    """Opening a FIFO waits for a writer: evaluate, predict --image, train --resume and
    gradcheck --inputs hung on one."""
    import os

    from fcgrad.cli.userfn import make_inputs

    fifo = r"is a FIFO \(a named pipe\), not a regular file$"
    for name in ("fifo.npz", "fifo.npy", "fifo.png"):
        os.mkfifo(tmp_path / name)
    with pytest.raises(DataError, match=rf"fifo\.npz {fifo}"):
        Checkpoint.load(tmp_path / "fifo.npz")
    for name in ("fifo.npy", "fifo.png"):
        with pytest.raises(DataError, match=rf"{name} {fifo}"):
            load_image(tmp_path / name)
    with pytest.raises(DataError, match=rf"^--inputs .*fifo\.npz {fifo}"):
        make_inputs(tmp_path / "fifo.npz", [], 0)


@pytest.mark.parametrize(
    ("q", "shown"),
    [(0.5, "50.0%"), (0.001, "0.1%"), (0.0, "0.0%"), (8.7e-4, "0.087%"), (3.1e-9, "3.1e-07%")],
)
def test_a_probability_is_a_percentage_a_reader_takes_in(q: float, shown: str) -> None:
    """predict printed 8.7e-02% for 0.087% (a helper's report on #13)."""
    from fcgrad.cli.render_model import _percent

    assert _percent(q) == shown
