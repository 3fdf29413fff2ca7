"""`fcgrad evaluate` and `fcgrad predict` on a model trained from the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import run, run_json

TRAINED: dict[str, float] = {}


@pytest.fixture(scope="module")
def model(mnist_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.npz"
    report = run_json("train", "--epochs", "1", "--save", path, "--data-dir", mnist_data_dir)
    TRAINED["valid_accuracy"] = report["valid_accuracy"]
    return path


def test_evaluate_scores_the_valid_set(model: Path, mnist_data_dir: Path) -> None:
    report = run_json("evaluate", model, "--data-dir", mnist_data_dir)
    assert report["accuracy"] == TRAINED["valid_accuracy"] > 0.9  # the same 10,000 images
    assert report["rows"] == 10_000 and sum(map(sum, report["confusion"])) == 10_000
    table = run("evaluate", model, "--data-dir", mnist_data_dir)
    assert table.exit_code == 0, table.output
    assert "Confusion matrix" in table.stdout and "Accuracy per digit" in table.stdout


def test_predict_draws_valid_images_and_a_users_npy(
    model: Path, mnist_data_dir: Path, tmp_path: Path
) -> None:
    from fcgrad.data import load_mnist

    *_, x_valid, y_valid = load_mnist(mnist_data_dir)
    np.save(tmp_path / "mine.npy", (x_valid[3].reshape(28, 28) * 255).astype(np.uint8))
    args = ("predict", model, "--index", "0", "--index", "3", "--image", tmp_path / "mine.npy")
    report = run_json(*args, "--data-dir", mnist_data_dir)
    first, fourth, mine = report["predictions"]
    assert (first["source"], first["label"]) == ("valid image 0", int(y_valid[0]))
    assert mine["label"] is None and mine["digit"] == fourth["digit"]  # the same pixels
    assert mine["top"][0]["probability"] == pytest.approx(fourth["top"][0]["probability"])
    shown = run(*args, "--data-dir", mnist_data_dir)
    assert shown.exit_code == 0, shown.output
    assert "█" in shown.stdout and "valid image 0: predicted" in shown.stdout


def test_predict_refuses_an_index_past_the_valid_set(model: Path, mnist_data_dir: Path) -> None:
    result = run("predict", model, "--index", "10000", "--data-dir", mnist_data_dir)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --index 10000 is not a valid image: give 0 to 9999 (see ")
