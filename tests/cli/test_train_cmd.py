"""`fcgrad train` on the real MNIST: accuracy, options, saving, SIGINT and resume, bad data."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import interrupt_once_training, run, run_json

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def test_train_defaults_reach_97_percent(mnist_data_dir: Path, tmp_path: Path) -> None:
    report = run_json("train", "--data-dir", mnist_data_dir, "--save", tmp_path / "w.npz")
    assert report["valid_accuracy"] >= 0.970
    assert [e["epoch"] for e in report["epochs"]] == [1, 2, 3, 4, 5]
    assert set(report["epochs"][0]) == {
        "epoch",
        "train_loss",
        "valid_loss",
        "valid_accuracy",
        "seconds",
    }
    with np.load(tmp_path / "w.npz") as saved:
        assert saved["w1"].shape == (784, 50) and saved["w2"].shape == (50, 10)


def test_train_table(mnist_data_dir: Path) -> None:
    result = run("train", "--data-dir", mnist_data_dir, "--epochs", "1", "--strategy", "manual")
    assert result.exit_code == 0, result.output
    for column in ("train loss", "valid loss", "valid accuracy", "seconds"):
        assert column in result.stdout
    *_, summary, threads = result.stdout.splitlines()
    assert summary.startswith("valid accuracy") and threads.startswith("ran on 1 BLAS thread")


@pytest.mark.parametrize(
    ("optimizer", "activation", "lr"),
    [("momentum", "tanh", 0.01), ("adam", "leaky-relu", 0.001), ("sgd", "sigmoid", 0.1)],
)
def test_train_with_each_optimizer_and_activation(
    mnist_data_dir: Path, optimizer: str, activation: str, lr: float
) -> None:
    """One epoch each, from the command line; the default rate is the optimizer's."""
    args = ("--optimizer", optimizer, "--activation", activation, "--epochs", "1")
    report = run_json("train", *args, "--data-dir", mnist_data_dir)
    cfg = report["config"]
    assert (cfg["optimizer"], cfg["activation"], cfg["momentum"]) == (optimizer, activation, 0.9)
    assert cfg["lr"] == pytest.approx(lr) and report["valid_accuracy"] > 0.9


def test_train_downloads_mnist_first(tmp_path: Path, mnist_server: str) -> None:
    result = run(
        "train", "--data-dir", tmp_path, "--mirror", mnist_server, "--epochs", "1", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid_accuracy"] > 0.9
    assert len(list((tmp_path / "mnist").glob("*.gz"))) == 4


def test_diverging_training_is_a_one_line_error(mnist_data_dir: Path) -> None:
    result = run(
        "train", "--loss", "mse", "--lr", "1e6", "--epochs", "1", "--data-dir", mnist_data_dir
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "epoch 1, step" in lines[0] and "learning rate 1e+06" in lines[0]
    assert "Traceback" not in result.output and "RuntimeWarning" not in result.output


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path, mnist_data_dir: Path) -> None:
    (tmp_path / "link.npz").symlink_to("target.npz")
    args = ("train", "--epochs", "1", "--save", tmp_path / "link.npz")
    result = run(*args, "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.npz").is_symlink() and (tmp_path / "target.npz").is_file()
    with np.load(tmp_path / "link.npz") as saved:
        assert saved["w1"].shape == (784, 50)


@pytest.mark.parametrize(
    ("signum", "code", "named"),
    [
        (signal.SIGINT, 130, ""),
        (signal.SIGTERM, 143, " (SIGTERM)"),
        (signal.SIGHUP, 129, " (SIGHUP)"),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_stop_signal_saves_a_checkpoint_that_resumes_to_the_same_weights(
    mnist_data_dir: Path, tmp_path: Path, signum: int, code: int, named: str
) -> None:
    """Ctrl-C, and what kill, docker stop and systemd (SIGTERM) or a closed terminal
    (SIGHUP) send: each saves at a step boundary and exits 128 + its number."""
    script = Path(sys.executable).parent / "fcgrad"
    argv = [
        str(script if script.exists() else shutil.which("fcgrad")),
        "train",
        "--strategy",
        "manual",
        "--epochs",
        "4",  # interrupted at its first frame: four epochs leave ample time
        "--data-dir",
        str(mnist_data_dir),
        "--json",
    ]
    reference = tmp_path / "reference.npz"
    subprocess.run([*argv, "--save", str(reference)], capture_output=True, timeout=300, check=True)
    saved = tmp_path / "ck.npz"
    stderr = interrupt_once_training(
        [*(a for a in argv if a != "--json"), "--save", str(saved)], tmp_path, signum, code
    )  # (the exit code asserted there)
    assert f"interrupted{named} at epoch" in stderr
    assert f"fcgrad train --resume {saved}" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    resumed = tmp_path / "resumed.npz"
    result = run(
        "train", "--resume", saved, "--save", resumed, "--data-dir", mnist_data_dir, "--json"
    )
    assert result.exit_code == 0, result.output
    with np.load(reference) as a, np.load(resumed) as b:
        for key in ("w1", "b1", "w2", "b2"):
            np.testing.assert_array_equal(a[key], b[key])


def test_resume_saves_back_and_epochs_extends_the_run(mnist_data_dir: Path, tmp_path: Path) -> None:
    """`--resume a.npz --epochs 2` after a 1-epoch run: saved back to a.npz, and bit for bit
    the weights of a 2-epoch run; options the checkpoint fixes are refused, not ignored."""
    data = ("--data-dir", mnist_data_dir)
    first = tmp_path / "a.npz"
    run_json("train", "--epochs", "1", "--optimizer", "adam", "--save", first, *data)
    report = run_json("train", "--resume", first, "--epochs", "2", *data)
    assert report["saved"] == str(first) and [e["epoch"] for e in report["epochs"]] == [1, 2]
    run_json("train", "--epochs", "2", "--optimizer", "adam", "--save", tmp_path / "b.npz", *data)
    with np.load(first) as a, np.load(tmp_path / "b.npz") as b:
        for key in ("w1", "b1", "w2", "b2", "optimizer.m.w1", "optimizer.v.b2"):
            np.testing.assert_array_equal(a[key], b[key])
    refused = run("train", "--resume", first, "--optimizer", "sgd", "--lr", "0.5", *data)
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: --optimizer, --lr cannot change the run resumed from {first}")
    done = run("train", "--resume", first, *data)
    assert done.exit_code == 2
    assert "finished 2 of its 2 epochs; to go on, give --epochs above 2" in done.stderr


def test_a_run_that_ends_at_chance_warns_and_suggests_a_smaller_rate(mnist_data_dir: Path) -> None:
    result = run("train", "--epochs", "1", "--lr", "10", "--data-dir", mnist_data_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout stays one JSON object
    assert report["at_chance"] and report["valid_accuracy"] <= 0.15
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: valid accuracy ") and "about chance" in line
    assert "try a smaller --lr such as 1" in line


@pytest.mark.parametrize("name", MNIST_FILES)
def test_a_truncated_cached_file_makes_train_exit_1_naming_it(
    name: str, mnist_data_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(mnist_data_dir / "mnist", tmp_path / "mnist")
    target = tmp_path / "mnist" / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    result = run("train", "--epochs", "1", "--no-download", "--data-dir", tmp_path)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert (
        name in line
        and "fcgrad download mnist --force" in line
        and "Traceback" not in result.output
    )


def test_a_resume_keeps_the_runs_threads(mnist_data_dir: Path, tmp_path: Path) -> None:
    """The checkpoint records `--threads` and a resume without it runs on the same count
    (another count can change a product's last bits); it ran on the default before, and
    the resume hint did not say --threads (a helper's report on #13)."""
    common = ("--strategy", "manual", "--threads", "2", "--data-dir", mnist_data_dir)
    reference = run_json("train", *common, "--epochs", "2", "--save", tmp_path / "ref.npz")
    assert reference["threads"]["fixed"] and reference["threads"]["batch"] == 2
    run_json("train", *common, "--epochs", "1", "--save", tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as saved:
        assert json.loads(str(saved["checkpoint"]))["threads"] == 2
    more = ("--epochs", "2", "--data-dir", mnist_data_dir)
    resumed = run_json("train", "--resume", tmp_path / "a.npz", *more)
    assert resumed["threads"] == reference["threads"]
    with np.load(tmp_path / "ref.npz") as a, np.load(tmp_path / "a.npz") as b:
        for key in ("w1", "b1", "w2", "b2"):
            np.testing.assert_array_equal(a[key], b[key])
