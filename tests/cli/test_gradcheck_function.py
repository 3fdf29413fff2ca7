"""`fcgrad gradcheck --function`: a user's function, its hand-written gradient, its errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import run, run_json

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

def shouts(x):
    raise ValueError("first line\\nsecond line \\x1b[31m" + "!" * 5000)

def exits(x):
    raise SystemExit(3)

def generator_exit(x):
    raise GeneratorExit("done")

def relus(x):
    return ops.sum(ops.relu(x))
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
    ("args", "message", "code"),
    [
        # the user's code ran and failed: exit 1
        (
            ["--function", "mine:not_scalar", "--shape", "4,3", "--shape", "5,4"],
            "must return a scalar",
            1,
        ),
        (["--function", "mine:loss", "--shape", "3"], "mine:loss raised", 1),
        (
            ["--function", "mine:returns_none", "--shape", "3"],
            "must return a real scalar, not NoneType",
            1,
        ),
        # its error's newline and escape sequence shown escaped, 5,000 '!' cut to the ends
        (["--function", "mine:shouts", "--shape", "3"], "first line\\nsecond line \\x1b[31m!!", 1),
        # sys.exit(3) in it is its failure: exit 1, not its 3
        (["--function", "mine:exits", "--shape", "3"], "mine:exits raised SystemExit(3)", 1),
        (["--function", "mine:generator_exit", "--shape", "3"], "raised GeneratorExit: done", 1),
        # a value on the command line fcgrad cannot use: exit 2
        (["--function", "nowhere:f", "--shape", "3"], "cannot import nowhere", 2),
        (["--function", "mine:missing", "--shape", "3"], "has no attribute 'missing'", 2),
        (["--function", "mine:loss"], "--inputs FILE.npz or with --shape", 2),
        (["--function", "mine:loss", "--shape", "3,a"], "--shape", 2),
        (["--function", "mine:loss", "--shape", "3,x"], "--shape", 2),
        (["--grad", "mine:loss_grad", "--shape", "3"], "go with --function", 2),
    ],
)
def test_function_mode_user_errors(
    user_module: Path, args: list[str], message: str, code: int
) -> None:
    result = run("gradcheck", *args)
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.output and len(line) < 1100


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


def test_inputs_that_are_not_an_npz_of_arrays_are_one_line(user_module: Path) -> None:
    np.save(user_module / "one.npy", np.ones(3))
    (user_module / "text.npz").write_text("hello")
    np.savez(user_module / "cut.npz", w=np.ones((4, 3)))
    (user_module / "cut.npz").write_bytes((user_module / "cut.npz").read_bytes()[:60])
    np.savez(user_module / "words.npz", w=np.array(["hello"]))  # a file's fault: exit 1
    np.savez(user_module / "flags.npz", w=np.array([True]))
    for name, message, code in [
        ("one.npy", "one .npy array; save the inputs with np.savez as an .npz", 2),
        ("text.npz", "not a .npy or .npz file of numeric arrays", 1),
        ("cut.npz", "--inputs cut.npz: ", 1),
        ("words.npz", "--inputs words.npz: w is <U5, not an array of real numbers", 1),
        ("flags.npz", "--inputs flags.npz: w is bool, not an array of real numbers", 1),
    ]:
        result = run("gradcheck", "--function", "mine:loss", "--inputs", name)
        assert result.exit_code == code, result.output
        (line,) = result.stderr.strip().splitlines()
        assert message in line and "Traceback" not in result.output and "pickle" not in line


def test_a_function_that_prints_leaves_json_on_stdout(tmp_path: Path) -> None:
    user = tmp_path / "noisy.py"
    user.write_text(
        "from fcgrad import ops\nprint('importing')\n\n"
        "def loss(x):\n    print('called')\n    return ops.sum(x * x)\n"
    )
    result = run("gradcheck", "--function", f"{user}:loss", "--shape", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True  # only the report
    assert "importing" in result.stderr and "called" in result.stderr


def test_the_kink_note_counts_each_coordinate_once(user_module: Path) -> None:
    """relu at 3,000 zeros: every coordinate is a kink. The note said 2,068 passed and
    297,952 'more coordinates at kinks not judged' of 300,000 (the sampled ones counted
    twice), and ended as if cut off: '(the largest jumps were)'."""
    np.savez(user_module / "zeros.npz", x=np.zeros((30, 100)))
    args = ("gradcheck", "--function", "mine:relus", "--inputs", "zeros.npz")
    result = run(*args)
    assert result.exit_code == 0, result.output
    note = " ".join(result.stdout.split("gradient check passed")[1].split())  # (wrapped)
    (leaf,) = run_json(*args)["leaves"]
    judged, unjudged = leaf["n_kinks"], leaf["unjudged"]
    assert judged + unjudged == 3_000 and judged > 2_048
    assert "gradient check passed" + note == (
        f"gradient check passed; {judged:,} kinks passed (not differentiable there: a valid "
        f"subgradient); {unjudged:,} more not judged (of each argument's kinks, the 2,048 "
        "largest jumps are, and those sampled)"
    )
