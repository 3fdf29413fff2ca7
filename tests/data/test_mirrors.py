"""Mirror resolution: order, local folders, rejection of bad values; the MNIST specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcgrad.data import DEFAULT_MNIST_MIRRORS, MNIST_FILES, Mirror, parse_mirror, resolve_mirrors
from fcgrad.errors import ConfigError

OSSCI = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CVDF = "https://storage.googleapis.com/cvdf-datasets/mnist/"
LECUN = "http://yann.lecun.com/exdb/mnist/"


def locations(mirrors: list[Mirror]) -> list[str]:
    return [m.location for m in mirrors]


def test_defaults_in_order_lecun_last() -> None:
    assert DEFAULT_MNIST_MIRRORS == (OSSCI, CVDF, LECUN)
    assert locations(resolve_mirrors(env={})) == [OSSCI, CVDF, LECUN]


def test_user_then_env_then_defaults() -> None:
    env = {"FCGRAD_MNIST_MIRRORS": "http://e1.test/m/, http://e2.test/m/\n http://e3.test/m/"}
    got = resolve_mirrors(["http://u1.test/a/", "https://u2.test/b"], env=env)
    assert locations(got) == [
        "http://u1.test/a/",
        "https://u2.test/b/",
        "http://e1.test/m/",
        "http://e2.test/m/",
        "http://e3.test/m/",
        OSSCI,
        CVDF,
        LECUN,
    ]
    assert all(m.kind == "http" for m in got)


def test_duplicates_dropped_first_place_kept() -> None:
    env = {"FCGRAD_MNIST_MIRRORS": f"{LECUN},http://u.test/x/"}
    got = resolve_mirrors(["http://u.test/x", "http://U.TEST/x/", LECUN], env=env)
    assert locations(got) == ["http://u.test/x/", LECUN, OSSCI, CVDF]


def test_blank_separators_in_the_variable_are_ignored() -> None:
    got = resolve_mirrors([], env={"FCGRAD_MNIST_MIRRORS": " , ,\t"})
    assert locations(got) == [OSSCI, CVDF, LECUN]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_mirror_value_is_an_error(value: str) -> None:
    # silently dropping it would send the download to the internet mirrors instead
    with pytest.raises(ConfigError, match=r"^empty MNIST mirror \(user_mirrors\): ") as info:
        resolve_mirrors([value], env={})
    assert info.value.param == "user_mirrors"


@pytest.mark.parametrize("value", ["http://[::1", "http://host:port/"])
def test_a_malformed_url_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="bad MNIST mirror"):
        resolve_mirrors([value], env={})


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FCGRAD_MNIST_MIRRORS", "http://from-env.test/")
    assert locations(resolve_mirrors())[0] == "http://from-env.test/"


def test_defaults_can_be_turned_off() -> None:
    got = resolve_mirrors(["http://only.test/"], env={}, defaults=())
    assert locations(got) == ["http://only.test/"]


def test_local_folders_as_path_and_file_url(tmp_path: Path) -> None:
    copy_a = tmp_path / "copy a"
    copy_b = tmp_path / "b"
    copy_a.mkdir()
    copy_b.mkdir()
    env = {"FCGRAD_MNIST_MIRRORS": copy_b.as_uri()}
    got = resolve_mirrors([str(copy_a), copy_a.as_uri()], env=env, defaults=())
    assert got == [Mirror("local", str(copy_a.resolve())), Mirror("local", str(copy_b.resolve()))]
    assert got[0].is_local
    assert got[0].url("t10k-labels-idx1-ubyte.gz") == str(copy_a / "t10k-labels-idx1-ubyte.gz")


def test_relative_folder_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mirror").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_mirror("mirror") == Mirror("local", str((tmp_path / "mirror").resolve()))


def test_http_url_for_file() -> None:
    mirror = parse_mirror("http://127.0.0.1:8000/data")
    assert mirror.url("train-labels-idx1-ubyte.gz") == (
        "http://127.0.0.1:8000/data/train-labels-idx1-ubyte.gz"
    )


@pytest.mark.parametrize(
    "value",
    [
        "ftp://example.test/mnist/",
        "s3://bucket/mnist/",
        "http://",
        "https:///no-host",
        "http://host.test/mnist/?q=1",
        "file://otherhost/srv/mnist",
        "/definitely/not/a/folder/here",
        "not-a-folder-either",
    ],
)
def test_bad_user_values_rejected_by_name(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_mirrors([value], env={})
    message = str(info.value)
    assert message.startswith(f"bad MNIST mirror {value!r} (user_mirrors): ")
    assert info.value.param == "user_mirrors"
    assert "--" not in message  # the CLI puts its flag in place of the parameter's name


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    with pytest.raises(ConfigError) as info:
        resolve_mirrors([], env={"FCGRAD_MNIST_MIRRORS": f"http://ok.test/ {missing}"})
    assert str(missing) in str(info.value)
    assert "FCGRAD_MNIST_MIRRORS" in str(info.value)
    assert info.value.param is None  # an environment variable, not a parameter


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match="existing folder"):
        resolve_mirrors([str(path)], env={})


def test_mnist_file_specs_match_the_readme() -> None:
    # Values from ../shared/data/mnist/README.md and the MNIST web page.
    expected = {
        "train-images-idx3-ubyte.gz": (47040016, "ba891046e6505d7a", (60000, 28, 28)),
        "train-labels-idx1-ubyte.gz": (60008, "65a50cbbf4e906d7", (60000,)),
        "t10k-images-idx3-ubyte.gz": (7840016, "0fa7898d509279e4", (10000, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": (10008, "ff7bcfd416de3373", (10000,)),
    }
    assert [f.name for f in MNIST_FILES] == list(expected)
    for spec in MNIST_FILES:
        size, sha_prefix, shape = expected[spec.name]
        assert (spec.raw_size, spec.shape, spec.dtype) == (size, shape, "uint8")
        assert spec.raw_sha256.startswith(sha_prefix) and len(spec.raw_sha256) == 64
