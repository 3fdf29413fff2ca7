"""Stop signals outside training, through the console script's `fcgrad.entry.main`: one
line and exit 128 + n, whatever the command was doing (a helper's re-check of #13 found a
Ctrl-C during numpy's start a traceback about one run in five, and a SIGTERM while the
data loads a silent death). Each signal is real, sent by the process to itself at a
chosen moment (an import, the data's loading): an event, not a timer."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import run


def _run(probe: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )


def _loading_sends(*signums: int, then: str = "pass") -> str:
    """A probe running `fcgrad train` whose data loading sends its main thread `signums`
    (together, as one batch: they are blocked until all are sent), then runs `then`.

    Each is sent to the main thread itself: sent to the process while the main thread
    blocks it, the kernel would hand it to another thread (numpy's BLAS workers), whose
    C handler may run after the main thread's next check, so that the two came apart in
    either order (CI saw the SIGTERM handled first)."""
    return (
        "import signal, sys, threading\n"
        "import fcgrad.entry\n"
        "from fcgrad.cli.commands import train\n"
        "from fcgrad.errors import DataError\n"
        "def prepared(*args, **kw):\n"
        f"    signums = {[int(s) for s in signums]!r}\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, signums)\n"
        "    for s in signums:\n"
        "        signal.pthread_kill(threading.get_ident(), s)\n"
        "    signal.pthread_sigmask(signal.SIG_UNBLOCK, signums)\n"
        f"    {then}\n"
        "    raise DataError('the data loaded on')\n"
        "train.prepared = prepared\n"
        "sys.argv = ['fcgrad', 'train', '--epochs', '1']\n"
        "fcgrad.entry.main()\n"
    )


def test_ctrl_c_while_numpys_c_extension_loads_is_one_line() -> None:
    """numpy's C extension imports `datetime` as it starts; a Ctrl-C there became numpy's
    ImportError ("PyCapsule_Import could not import module datetime"), a traceback."""
    probe = (
        "import os, signal, sys\n"
        "assert 'datetime' not in sys.modules and 'numpy' not in sys.modules\n"
        "import fcgrad.entry\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'datetime' and 'numpy' in sys.modules:\n"
        "            sys.meta_path.remove(self)\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['fcgrad', 'train']\n"
        "fcgrad.entry.main()\n"
    )
    done = _run(probe)
    assert (done.returncode, done.stderr) == (130, "interrupted\n"), done.stderr


@pytest.mark.parametrize(
    ("signum", "line"),
    [(signal.SIGTERM, "interrupted (SIGTERM)"), (signal.SIGHUP, "interrupted (SIGHUP)")],
)
def test_a_stop_signal_while_the_data_loads_is_one_line(signum: int, line: str) -> None:
    """Before training's own handlers: SIGTERM killed the process without a word (-15)."""
    done = _run(_loading_sends(signum))
    assert (done.returncode, done.stderr) == (128 + signum, line + "\n"), done.stderr


def test_a_second_signal_while_the_first_unwinds_changes_nothing() -> None:
    """A SIGTERM that comes while a Ctrl-C unwinds the command (Python runs their handlers
    one after the other) would be a second exception inside the first one's exit."""
    done = _run(_loading_sends(signal.SIGINT, signal.SIGTERM))
    assert (done.returncode, done.stderr) == (130, "interrupted\n"), done.stderr


def _training_sends(target: Path, during: str, at_hold: str) -> str:
    """A probe running `fcgrad train --save target` on 256 seeded random rows: as training
    starts it sends its main thread the signals `during` names, and the signals `at_hold`
    names as the entry puts the stop signals on hold (the command done, its handlers
    back): Python code, e.g. "signal.SIGINT,", or "" for none."""
    return (
        "import signal, sys, threading\n"
        "import numpy as np\n"
        "import fcgrad.entry\n"
        "from fcgrad import interrupts\n"
        "from fcgrad.cli.commands import train\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((256, 784)).astype(np.float32)\n"
        "y = rng.integers(0, 10, 256)\n"
        "train._data_for = lambda *args: ((x, y, x[:64], y[:64]), (0.0, 1.0))\n"
        "def send(*signums):\n"
        "    for s in signums:\n"
        "        signal.pthread_kill(threading.get_ident(), s)\n"
        "real_train, real_hold = train.train, interrupts.hold\n"
        "def training(*args, **kw):\n"
        f"    send({during})\n"
        "    return real_train(*args, **kw)\n"
        "def hold():\n"
        f"    send({at_hold})\n"
        "    real_hold()\n"
        "train.train, interrupts.hold = training, hold\n"
        f"sys.argv = ['fcgrad', 'train', '--epochs', '1', '--save', {str(target)!r}]\n"
        "fcgrad.entry.main()\n"
    )


def test_a_signal_once_trainings_handlers_are_gone_changes_nothing(tmp_path: Path) -> None:
    """A Ctrl-C that training took (it stops at the next step and saves), then a SIGTERM
    once the command's own handlers are back: that was a second line, `interrupted
    (SIGTERM)`, and exit 143, or a traceback (a helper's report on #13, signals 12-25 ms
    apart)."""
    target = tmp_path / "w.npz"
    done = _run(_training_sends(target, during="signal.SIGINT", at_hold="signal.SIGTERM"))
    lines = done.stderr.splitlines()
    assert done.returncode == 130 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"interrupted at epoch 1, step 1; saved to {target}; "), lines
    assert target.is_file()


def test_a_signal_once_a_run_is_done_and_saved_ends_nothing(tmp_path: Path) -> None:
    """The run finished and said where it saved, then a SIGINT as the command returned:
    `interrupted` and exit 130, as if the run were lost (a helper's re-check of #13)."""
    target = tmp_path / "w.npz"
    done = _run(_training_sends(target, during="", at_hold="signal.SIGINT, signal.SIGTERM"))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert f"saved the checkpoint to {target}" in done.stdout and target.is_file()


def test_a_signal_ignored_at_the_start_stays_ignored() -> None:
    probe = "import signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    done = _run(probe + _loading_sends(signal.SIGHUP))
    assert done.returncode == 1 and "the data loaded on" in done.stderr, done.stderr


def test_a_signal_once_the_command_is_done_ends_nothing() -> None:
    """After the command (the summary printed, the checkpoint saved) an interrupt would be
    a traceback from Python's shutdown."""
    probe = (
        "import os, signal, sys\n"
        "import fcgrad.entry, fcgrad.cli.app\n"
        "fcgrad.cli.app.app = lambda: None\n"
        "sys.argv = ['fcgrad', 'train']\n"
        "fcgrad.entry.main()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('done')\n"
    )
    done = _run(probe)
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", ""), done.stderr


def test_the_message_and_exit_code_follow_the_shells_convention() -> None:
    from fcgrad import interrupts

    assert [interrupts.exit_code(s) for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)] == [
        130,
        129,
        143,
    ]
    assert interrupts.message(signal.SIGINT) == "interrupted"
    assert interrupts.message(signal.SIGTERM) == "interrupted (SIGTERM)"
    assert interrupts.signal_of(interrupts.Interrupted(signal.SIGHUP)) == signal.SIGHUP


@pytest.mark.parametrize(
    ("signum", "line"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "interrupted (SIGTERM)")]
)
def test_an_interrupt_while_typer_parses_the_command_line_is_one_line(
    monkeypatch: pytest.MonkeyPatch, signum: int, line: str
) -> None:
    """typer makes an interrupt while it parses (its first parse imports pydantic, a tenth
    of a second) a silent exit 130, whatever the signal: real SIGTERMs at 0.42-0.52 s
    after launch ended so, without a word."""
    from fcgrad import interrupts
    from fcgrad.cli import app as app_module

    def interrupted(params: object) -> None:
        raise interrupts.Interrupted(signum)

    monkeypatch.setattr(app_module, "_no_flag_metavars", interrupted)
    result = run("train", "--epochs", "1")
    assert (result.exit_code, result.stderr) == (128 + signum, line + "\n"), result.output
