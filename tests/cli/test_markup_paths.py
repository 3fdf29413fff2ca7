"""Paths with '[' and ']' are printed as they are, not read as rich markup (issue #13:
`[red]` vanished from a mirror's path, and a wrong file name was printed)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cli.helpers import run


def test_bracketed_paths_are_printed_whole(mnist_data_dir: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "[red]mirror"
    shutil.copytree(mnist_data_dir / "mnist", mirror)
    data = tmp_path / "[bold]data"
    args = ["mnist", "--mirror", mirror, "--no-default-mirrors", "--data-dir", data]
    fetched = run("download", *args)
    assert fetched.exit_code == 0, fetched.output
    folded = "".join(fetched.stdout.split()).replace("│", "")  # a long path folds in its cell
    assert "".join(f"{mirror}/".split()) in folded
    model = tmp_path / "[u]m.npz"
    trained = run("train", "--epochs", "1", "--save", model, "--data-dir", data)
    assert trained.exit_code == 0 and f"saved the checkpoint to {model}" in trained.stdout
    normalized = run("normalize", "--output", tmp_path / "[i]n.npz", "--data-dir", data)
    assert f"to {tmp_path / '[i]n.npz'}" in " ".join(normalized.stdout.split())
    shown = run("evaluate", model, "--data-dir", data)
    assert shown.stdout.startswith("[u]m.npz (784-50-10")
    missing = run("normalize", "--no-download", "--data-dir", tmp_path / "[red]none")
    assert f"missing from {tmp_path / '[red]none' / 'mnist'}" in missing.stderr
