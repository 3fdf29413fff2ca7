"""The five commands end to end on the real MNIST, served over HTTP on 127.0.0.1.

These are the issue's acceptance points, run through the real CLI (Typer's test
runner in process, plus the console script and `python -m fcgrad` as subprocesses).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fcgrad.cli.app import app

runner = CliRunner()
MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
COMMANDS = ("download", "normalize", "train", "gradcheck", "bench")


def run(*args: str, **kw: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args], **kw)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ----------------------------------------------------------------------------- entry points


def test_help_lists_the_five_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_help_keeps_square_brackets_that_rich_would_take_for_markup() -> None:
    result = run("bench", "--help", env={"COLUMNS": "200"})
    assert "pip install 'fcgrad[peers]'" in result.stdout


@pytest.mark.parametrize(
    "argv", [["fcgrad"], [sys.executable, "-m", "fcgrad"]], ids=["script", "module"]
)
def test_installed_entry_points(argv: list[str]) -> None:
    if argv == ["fcgrad"]:
        script = Path(sys.executable).parent / "fcgrad"
        argv = [str(script if script.exists() else shutil.which("fcgrad"))]
    done = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert all(c in done.stdout for c in COMMANDS)


# ----------------------------------------------------------------------------- download


def test_download_retries_and_backoff_options(
    tmp_path: Path, shared_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fcgrad.data import transfer
    from tests.data.faulty_server import FaultyServer, status

    waits: list[float] = []
    monkeypatch.setattr(transfer, "_sleep", waits.append)  # the backoff asked for, not timed
    name = "t10k-labels-idx1-ubyte.gz"
    for retries, backoff, code in (("1", "0", 1), ("2", "0.2", 0)):
        waits.clear()
        with FaultyServer(shared_mnist) as server:
            server.plan(name, status(503), status(503))  # the third GET gets the file
            result = run(
                *("download", "mnist", "--mirror", server.url, "--no-default-mirrors"),
                *("--retries", retries, "--backoff", backoff, "--data-dir", tmp_path / retries),
            )
            assert result.exit_code == code, result.output
            assert len(server.requests(name)) == 1 + int(retries)
        if code:
            assert "HTTP 503" in result.stderr
        else:
            assert waits == [0.2, 0.4]  # 0.2 s, then doubled


def test_download_then_cached_then_fallback(
    tmp_path: Path, shared_mnist: Path, serve_folder: Callable[[Path], Any], dead_mirror_url: str
) -> None:
    server = serve_folder(shared_mnist)
    first = run_json("download", "mnist", "--mirror", server.url, "--data-dir", tmp_path)
    assert [r["status"] for r in first["rows"]] == ["downloaded"] * 4
    assert server.count("GET") == 4
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(
        r["name"] for r in first["rows"]
    )

    again = run("download", "mnist", "--mirror", server.url, "--data-dir", tmp_path)
    assert again.exit_code == 0 and "already here" in again.stdout
    assert server.count("GET") == 4  # the second run verified what was there and fetched nothing

    forced = run_json(
        "download",
        "mnist",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        server.url,
        "--data-dir",
        tmp_path,
        "--force",
    )
    assert server.count("GET") == 8
    for row in forced["rows"]:
        assert row["status"] == "downloaded" and row["mirror"].startswith(server.url)
        assert [a["url"] for a in row["attempts"]] == [dead_mirror_url + row["name"]]


def test_download_table_shows_file_bytes_checksum_and_mirror(
    tmp_path: Path, mnist_server: str, dead_mirror_url: str
) -> None:
    result = run(
        "download",
        "mnist",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        mnist_server,
        "--data-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert "train-images-idx3-ubyte.gz" in result.stdout and "9,719,438" in result.stdout
    assert "sha256 ok" in result.stdout and mnist_server in result.stdout
    assert result.stdout.count("downloaded (1 mirror failed)") == 4


def test_every_mirror_failing_is_one_line_listing_each_url(
    tmp_path: Path, dead_mirror_url: str, serve_folder: Callable[[Path], Any]
) -> None:
    empty = serve_folder(tmp_path)  # answers 404 for every file
    result = run(
        "download",
        "mnist",
        "--no-default-mirrors",
        "--mirror",
        dead_mirror_url,
        "--mirror",
        empty.url,
        "--data-dir",
        tmp_path / "d",
    )
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "train-images-idx3-ubyte.gz" in line and dead_mirror_url in line and empty.url in line
    assert "connection refused" in line and "404" in line
    assert list((tmp_path / "d" / "mnist").iterdir()) == []  # nothing partial left behind


def test_rows_beyond_the_training_set_is_an_error(mnist_data_dir: Path) -> None:
    result = run("gradcheck", "--rows", "70000", "--data-dir", mnist_data_dir)
    assert result.exit_code == 1 and "--rows 70000 is more than the 60,000" in result.stderr


def test_data_dir_from_environment(tmp_path: Path, mnist_server: str) -> None:
    result = run(
        "download",
        "mnist",
        "--mirror",
        mnist_server,
        env={"FCGRAD_DATA_DIR": str(tmp_path / "env")},
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "env" / "mnist").glob("*.gz"))) == 4


# ----------------------------------------------------------------------------- normalize


def test_normalize_shows_the_lessons_statistics(mnist_data_dir: Path, tmp_path: Path) -> None:
    result = run("normalize", "--data-dir", mnist_data_dir, "--output", tmp_path / "n.npz")
    assert result.exit_code == 0, result.output
    assert "0.13066" in result.stdout and "0.30811" in result.stdout
    assert "0.0060" in result.stdout and "1.0077" in result.stdout
    assert result.stdout.count("pass") == 2
    with np.load(tmp_path / "n.npz") as saved:
        assert saved["x_train"].shape == (60000, 784) and saved["x_valid"].shape == (10000, 784)
        assert float(saved["mean"]) == pytest.approx(0.13066, abs=1e-5)
        assert abs(float(saved["x_train"].mean())) < 1e-3


def test_normalize_json(mnist_data_dir: Path) -> None:
    report = run_json("normalize", "--data-dir", mnist_data_dir)
    assert report["ok"] is True
    assert report["train_before"]["mean"] == pytest.approx(0.13066, abs=1e-5)
    assert report["train_before"]["std"] == pytest.approx(0.30811, abs=1e-5)
    assert [c["passed"] for c in report["checks"]] == [True, True]


# ----------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("strategy", ["vwc", "manual", "tape", "all"])
def test_gradcheck_passes_on_all_60000_rows(mnist_data_dir: Path, strategy: str) -> None:
    result = run("gradcheck", "--strategy", strategy, "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    assert "60,000 rows" in result.stdout and "FAIL" not in result.stdout
    assert "|a - r| <=" in result.stdout  # the tolerance rule is printed


def test_gradcheck_json_and_cross_entropy(mnist_data_dir: Path) -> None:
    report = run_json(
        "gradcheck",
        "--strategy",
        "tape",
        "--loss",
        "cross-entropy",
        "--rows",
        "5000",
        "--data-dir",
        mnist_data_dir,
    )
    assert report["ok"] and report["rows_used"] == 5000
    assert {c["parameter"] for c in report["checks"]} == {"all", "w1", "b1", "w2", "b2", "x"}
    assert {tuple(c["shape"]) for c in report["checks"] if c["parameter"] == "w2"} == {(50, 10)}


# ----------------------------------------------------------------------------- train


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
    assert "valid accuracy" in result.stdout.splitlines()[-1]


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


def test_gradcheck_of_a_deeper_net_with_another_activation(mnist_data_dir: Path) -> None:
    args = ("--activation", "leaky-relu", "--loss", "cross-entropy", "--hidden", "64")
    more = ("--hidden", "32", "--rows", "3000", "--fd-rows", "200", "--data-dir", mnist_data_dir)
    report = run_json("gradcheck", *args, *more)
    assert report["ok"] and report["config"]["activation"] == "leaky-relu"
    assert {tuple(c["shape"]) for c in report["checks"] if c["parameter"] == "w3"} == {(32, 10)}


# ----------------------------------------------------------------------------- bench


def test_bench_table_for_all_three_strategies(mnist_data_dir: Path) -> None:
    result = run("bench", "--repeat", "10", "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    for word in (
        "gemm reference",
        "manual",
        "vwc",
        "tape",
        "fwd+bwd all",
        "fwd+bwd weights",
        "median ms",
        "vs gemm",
        "GFLOP/s",
        "peak MB",
        "60,000 rows",
    ):
        assert word in result.stdout


def test_bench_json_with_a_peer_and_a_training_epoch(mnist_data_dir: Path) -> None:
    args = (
        "bench",
        "--repeat",
        "3",
        "--rows",
        "2000",
        "--strategy",
        "vwc",
        "--compare",
        "autograd",
    )
    report = run_json(*args, "--train-epoch", "--data-dir", mnist_data_dir)
    cases = [(t["implementation"], t["phase"]) for t in report["timings"]]
    for impl in ("gemm reference", "vwc", "autograd"):
        for phase in ("forward", "fwd+bwd all", "fwd+bwd weights"):
            assert (impl, phase) in cases
    assert ("vwc", "train epoch") in cases
    assert all(len(t["times_ms"]) >= 1 and t["ratio"] >= 1.0 for t in report["timings"])


def test_bench_compare_with_a_missing_library_is_a_user_error(mnist_data_dir: Path) -> None:
    result = run("bench", "--compare", "tensorflow", "--data-dir", mnist_data_dir)
    assert result.exit_code == 1 and "choose from numpy, torch, jax, autograd" in result.stderr


# ----------------------------------------------------------------------------- user errors


USER_ERRORS = [
    (["train", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--lr", "-1"], "--lr must be a positive number"),
    (["train", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["gradcheck", "--rows", "0"], "--rows must be at least 1"),
    (["bench", "--repeat", "0"], "--repeat must be at least 1"),
    (["train", "--hidden", "0"], "--hidden sizes must be at least 1"),
    (["train", "--momentum", "1"], "--momentum must be at least 0 and below 1"),
    (["train", "--optimizer", "adam", "--lr", "nan"], "--lr must be a positive number"),
    (["download", "mnist", "--mirror", "ftp://example.invalid/"], "ftp://example.invalid/"),
    (["normalize", "--no-download"], "run `fcgrad download mnist --data-dir "),
    (["download", "mnist", "--no-default-mirrors"], "no MNIST mirrors to download from"),
    (["download", "mnist", "--mirror", ""], "empty MNIST mirror"),
    (["download", "mnist", "--mirror", "http://[::1"], "bad MNIST mirror"),
    (["train", "--save", "/nonexistent-dir/w.npz"], "folder /nonexistent-dir does not exist"),
    (["download", "mnist", "--mirror", "/", "--retries", "-1"], "--retries must be 0 or more"),
    (["download", "mnist", "--mirror", "/", "--backoff", "nan"], "--backoff must be 0 or more"),
    (["download", "mnist", "--mirror", "/", "--timeout", "0"], "--timeout must be above 0"),
]


@pytest.mark.parametrize(
    ("args", "message"), USER_ERRORS, ids=[" ".join(a) for a, _ in USER_ERRORS]
)
def test_user_error_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, "--data-dir", tmp_path / "empty")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--strategy", "adam"],
        ["train", "--loss", "hinge"],
        ["train", "--activation", "swish"],
        ["train", "--optimizer", "lbfgs"],
        ["gradcheck", "--activation", "gelu"],
        ["download", "cifar"],
        ["bench", "--repeat", "x"],
        ["train", "--seed", "-1"],
        ["gradcheck", "--seed", "-3"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()  # one line, not a framed usage box
    assert line.startswith("error: ") and "--help" in line


def test_diverging_training_is_a_one_line_error(mnist_data_dir: Path) -> None:
    result = run(
        "train", "--loss", "mse", "--lr", "1e6", "--epochs", "1", "--data-dir", mnist_data_dir
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "epoch 1, step" in lines[0] and "learning rate 1000000.0" in lines[0]
    assert "Traceback" not in result.output and "RuntimeWarning" not in result.output


def test_output_never_replaces_a_special_file(tmp_path: Path, mnist_data_dir: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run("normalize", "--data-dir", mnist_data_dir, "--output", fifo)
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not a 220 MB regular file


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path, mnist_data_dir: Path) -> None:
    (tmp_path / "link.npz").symlink_to("target.npz")
    args = ("train", "--epochs", "1", "--save", tmp_path / "link.npz")
    result = run(*args, "--data-dir", mnist_data_dir)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.npz").is_symlink() and (tmp_path / "target.npz").is_file()
    with np.load(tmp_path / "link.npz") as saved:
        assert saved["w1"].shape == (784, 50)


def test_json_has_no_bare_nan() -> None:
    from fcgrad.jsonio import finite

    got = finite({"a": [float("nan"), 1.0], "b": float("inf"), "c": "x"})
    assert got == {"a": [None, 1.0], "b": None, "c": "x"}


USER_MODULE = """
import numpy as np
from fcgrad.engine import ops

def loss(w, x):
    return ops.mean(ops.square(ops.matmul(x, w))) * 0.5

def loss_grad(w, x):
    out = x @ w
    return x.T @ out / out.size, out @ w.T / out.size

def loss_grad_half(w, x):
    dw, dx = loss_grad(w, x)
    return dw, dx / 2

def not_scalar(w, x):
    return ops.matmul(x, w)

def returns_none(x):
    return None
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mine.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mine", raising=False)
    return tmp_path


def test_function_and_its_hand_written_gradient_pass(user_module: Path) -> None:
    for extra in ([], ["--grad", "mine:loss_grad"]):
        result = run(
            "gradcheck", "--function", "mine:loss", *extra, "--shape", "4,3", "--shape", "5,4"
        )
        assert result.exit_code == 0, result.output
        assert "gradient check passed" in result.stdout and "args[1]" in result.stdout


def test_a_wrong_hand_written_gradient_exits_1_with_the_worst_element(user_module: Path) -> None:
    args = ("gradcheck", "--function", "mine:loss", "--grad", "mine:loss_grad_half")
    result = run(*args, "--shape", "4,3", "--shape", "5,4", "--full")
    assert result.exit_code == 1
    assert "gradient check FAILED: coordinates: args[1][" in result.stdout
    assert "nan" not in result.stdout  # no one-sided columns for a failure away from kinks
    report = json.loads(run(*args, "--shape", "4,3", "--shape", "5,4", "--full", "--json").stdout)
    bad = report["leaves"][1]
    assert bad["n_failures"] == 20 and bad["worst"]["analytic"] == pytest.approx(
        bad["worst"]["numeric"] / 2
    )
    # the closing line names the worst element: the one the table's worst index shows
    worst = bad["failures"][0]
    assert worst["index"] == bad["worst"]["index"]
    assert f"args[1]{worst['index']}: analytic" in result.stdout.replace("\n", "")


def test_function_inputs_from_an_npz_file(user_module: Path) -> None:
    np.savez(user_module / "in.npz", w=np.ones((4, 3)), x=np.arange(20.0).reshape(5, 4))
    report = run_json("gradcheck", "--function", "mine:loss", "--inputs", user_module / "in.npz")
    assert report["ok"] and [leaf["shape"] for leaf in report["leaves"]] == [[4, 3], [5, 4]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--function", "mine:not_scalar", "--shape", "4,3", "--shape", "5,4"],
            "must return a scalar",
        ),
        (["--function", "nowhere:f", "--shape", "3"], "cannot import nowhere"),
        (["--function", "mine:missing", "--shape", "3"], "has no attribute 'missing'"),
        (["--function", "mine:loss"], "--inputs FILE.npz or with --shape"),
        (["--function", "mine:loss", "--shape", "3,a"], "--shape"),
        (["--function", "mine:loss", "--shape", "3,x"], "--shape"),
        (["--function", "mine:loss", "--shape", "3"], "mine:loss raised"),
        (
            ["--function", "mine:returns_none", "--shape", "3"],
            "must return a real scalar, not NoneType",
        ),
        (["--grad", "mine:loss_grad", "--shape", "3"], "go with --function"),
    ],
)
def test_function_mode_user_errors(user_module: Path, args: list[str], message: str) -> None:
    result = run("gradcheck", *args)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.output


def test_gradcheck_deeper_net_both_losses(mnist_data_dir: Path) -> None:
    for loss in ("mse", "cross-entropy"):
        args = ("gradcheck", "--hidden", "128", "--hidden", "64", "--loss", loss, "--rows", "10000")
        result = run(*args, "--data-dir", mnist_data_dir)
        assert result.exit_code == 0, result.output
        assert "w3" in result.stdout and "784×128" in result.stdout


def test_sigint_saves_a_checkpoint_that_resumes_to_the_same_weights(
    mnist_data_dir: Path, tmp_path: Path
) -> None:
    script = Path(sys.executable).parent / "fcgrad"
    argv = [
        str(script if script.exists() else shutil.which("fcgrad")),
        "train",
        "--strategy",
        "manual",
        "--epochs",
        "60",
        "--data-dir",
        str(mnist_data_dir),
        "--json",
    ]
    reference = tmp_path / "reference.npz"
    subprocess.run([*argv, "--save", str(reference)], capture_output=True, timeout=300, check=True)
    saved = tmp_path / "ck.npz"
    stderr = _interrupt_once_training(
        [*(a for a in argv if a != "--json"), "--save", str(saved)], tmp_path
    )  # (exit 130 asserted there)
    assert "interrupted at epoch" in stderr and f"fcgrad train --resume {saved}" in stderr
    assert "Traceback" not in stderr
    resumed = tmp_path / "resumed.npz"
    result = run(
        "train", "--resume", saved, "--save", resumed, "--data-dir", mnist_data_dir, "--json"
    )
    assert result.exit_code == 0, result.output
    with np.load(reference) as a, np.load(resumed) as b:
        for key in ("w1", "b1", "w2", "b2"):
            np.testing.assert_array_equal(a[key], b[key])


def _interrupt_once_training(argv: list[str], tmp_path: Path) -> str:
    """Run `fcgrad train` on a terminal (a pty), send SIGINT when its live display shows
    that training has begun (an event: the first frame, after the data is loaded), and
    return its stderr once it has exited 130."""
    import pty
    import select
    import threading

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    with open(tmp_path / "stderr.txt", "w+") as err_file:
        proc = subprocess.Popen(argv, stdout=slave, stderr=err_file, env=env)
        os.close(slave)
        seen = bytearray()
        while b"Training" not in seen:  # the display's title: training has begun
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, "no training display within 120 s"
            seen += os.read(master, 4096)
        proc.send_signal(signal.SIGINT)

        def drain() -> None:  # the child must not block on a full terminal
            with contextlib.suppress(OSError):
                while os.read(master, 4096):
                    pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        proc.wait(timeout=120)
        os.close(master)
        err_file.seek(0)
        stderr = err_file.read()
    assert proc.returncode == 130, stderr
    return stderr


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


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = run("normalize", "--no-download", "--data-dir", tmp_path / "file")
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["download", "mnist", "--no-default-mirrors", "--mirror", "."],
            "cannot create /proc/fcgrad/mnist",
        ),
        (
            ["train", "--resume", str(Path(__file__).resolve().parents[2] / "pyproject.toml")],
            "is not an fcgrad checkpoint",
        ),
    ],
)
def test_unwritable_data_dir_and_a_bad_checkpoint_are_one_line_errors(
    args: list[str], message: str
) -> None:
    result = run(*args, "--data-dir", "/proc/fcgrad")  # /proc: no folder can be made there
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.output


def test_numpy_on_a_traced_value_in_a_users_function_is_one_line_naming_the_op(
    tmp_path: Path,
) -> None:
    user = tmp_path / "numpy_user.py"
    user.write_text("import numpy as np\n\ndef loss(x):\n    return np.sum(np.exp(x))\n")
    result = run("gradcheck", "--function", f"{user}:loss", "--shape", "3")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "numpy.exp was called on a traced value; use fcgrad.ops.exp" in line
    assert "Traceback" not in result.output
