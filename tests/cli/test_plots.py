"""The pictures: PNG files of the expected size that are not blank, and a clear error
without matplotlib."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fcgrad.cli import plots
from fcgrad.errors import MissingExtra
from fcgrad.training.evaluation import evaluate_model
from fcgrad.training.train import TrainConfig, train
from tests.cli.helpers import run, run_json


def _png(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels: np.ndarray = matplotlib.image.imread(path)
    assert pixels[..., :3].std() > 0.05  # something is drawn
    return pixels


def test_training_and_evaluation_pictures(synthetic: Any, tmp_path: Path) -> None:
    x, y, xv, yv = synthetic
    result = train(x, y, xv, yv, TrainConfig(epochs=3, hidden=(12,)), stats=(0.0, 1.0))
    (curves,) = plots.training(result, tmp_path / "new" / "folder")
    assert curves.name == "train.png" and _png(curves).shape[:2] == (320, 640)
    scored = evaluate_model(result.checkpoint, xv, yv, "m.npz")
    drawn = plots.evaluation(scored, result.params.layers[0].w, xv, tmp_path)
    assert [p.name for p in drawn] == ["confusion.png", "weights.png", "wrong.png"]
    assert _png(drawn[0]).shape[:2] == (440, 500)
    assert _png(drawn[1]).shape[:2] == (200, 1000)  # 12 units: two rows of ten 28x28 tiles
    assert _png(drawn[2]).shape[1] == 880
    names = sorted(p.name for p in tmp_path.iterdir())  # no temporary file left behind
    assert names == sorted([*(p.name for p in drawn), "new"])


def test_without_matplotlib_plot_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingExtra, match=r"pip install 'fcgrad\[plot\]'"):
        plots.pyplot()
    result = run("train", "--plot", "pics", "--no-download", "--data-dir", "/nonexistent")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: plotting needs matplotlib")


def test_train_and_evaluate_draw_with_plot(mnist_data_dir: Path, tmp_path: Path) -> None:
    model, pics = tmp_path / "m.npz", tmp_path / "pics"
    data = ("--data-dir", mnist_data_dir, "--plot", pics)
    trained = run_json("train", "--epochs", "1", "--save", model, *data)
    assert trained["plots"] == [str(pics / "train.png")]
    scored = run_json("evaluate", model, *data)
    assert scored["plots"] == [str(pics / n) for n in ("confusion.png", "weights.png", "wrong.png")]
    assert _png(pics / "weights.png").shape[:2] == (500, 1000)  # 50 units: five rows of ten
    assert len(scored["wrong"]) == 16 and all(w["label"] != w["predicted"] for w in scored["wrong"])


def test_the_loss_sparkline() -> None:
    from fcgrad.cli.render import sparkline

    assert sparkline([0.27, 0.13, 0.10, 0.087, 0.074]) == "█▃▂▁▁"  # (v - min) / span * 7
    assert sparkline([1.0, 1.0]) == "▁▁" and sparkline([]) == ""
    assert sparkline([float("nan"), 2.0, 1.0]) == "?█▁"


def test_the_lessons_init_histograms(synthetic: Any, tmp_path: Path) -> None:
    from fcgrad.lesson.sections import init_activations

    acts = init_activations(synthetic[2], seed=0)
    assert set(acts) == {"naive", "kaiming"}
    (drawn,) = plots.init_histograms(acts, tmp_path)
    assert drawn.name == "init.png" and _png(drawn).shape[:2] == (480, 760)  # 2 x 2 panels
