"""The release: two builds of one tree give the same bytes, and the measurement of the installed
release, of its wheel and of the definition in docs/transparency.md are one value."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ohttp.aio.release import ReleaseError, measure, measure_wheel
from tests.support import REPO

PYTHON = sys.executable
EPOCH = "1700000000"


def _tree_files() -> list[str]:
    """The tree as a commit would hold it: tracked and new files, minus ignored and deleted."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _copy_tree(dest: Path, mtime: float) -> Path:
    for name in _tree_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, target)
        os.utime(target, (mtime, mtime))
    return dest


def _build(tree: Path, out: Path, *, sbom: bool = False) -> str:
    command = [PYTHON, str(REPO / "deploy" / "release.py"), "--tree", str(tree), "--out", str(out)]
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    result = subprocess.run(
        [*command, *([] if sbom else ["--no-sbom"])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("release")
    _build(_copy_tree(base / "tree", 1_500_000_000), base / "dist")
    (found,) = (base / "dist").glob("*.whl")
    return found


def _definition(wheel: Path) -> str:
    """docs/transparency.md's definition, written out independently of ohttp.aio.release."""
    with zipfile.ZipFile(wheel) as archive:
        names = [
            name
            for name in archive.namelist()
            if not name.endswith("/") and not name.split("/")[0].endswith(".dist-info")
        ]
        lines = [
            f"{hashlib.sha256(archive.read(name)).hexdigest()}  {name}\n"
            for name in sorted(names, key=str.encode)
        ]
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def test_two_builds_of_one_tree_give_identical_bytes(wheel: Path, tmp_path: Path) -> None:
    # The second copy has other file times and is built in another directory.
    _build(_copy_tree(tmp_path / "tree", 1_000_000_000), tmp_path / "dist")
    first = {p.name: p.read_bytes() for p in wheel.parent.iterdir()}
    second = {p.name: p.read_bytes() for p in (tmp_path / "dist").iterdir()}
    assert sorted(first) == sorted(second)
    assert {name for name in first if name.endswith((".whl", ".tar.gz"))} == set(first)
    assert len(first) == 2
    for name, data in first.items():
        assert data == second[name], name


def test_the_wheel_measurement_follows_the_written_definition(wheel: Path) -> None:
    value = measure_wheel(wheel)
    assert value == _definition(wheel)
    assert len(value) == len("sha256:") + 64
    assert value == value.lower()


def _install(wheel: Path, target: Path) -> None:
    subprocess.run(
        [PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _cli(
    target: Path | None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if target is not None:
        env["PYTHONPATH"] = str(target)  # before the editable install on sys.path
    code = "import sys; from ohttp.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [PYTHON, "-c", code, "release", "measure", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=cwd or target or REPO,
        timeout=60,
    )


def test_the_installed_release_measures_as_its_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    _install(wheel, target)
    result = _cli(target)
    assert result.returncode == 0, result.stderr
    assert result.stdout == measure_wheel(wheel) + "\n"
    assert _cli(None, "--wheel", str(wheel)).stdout == result.stdout


def test_a_changed_installed_file_is_no_release(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    _install(wheel, target)
    with (target / "ohttp" / "keys.py").open("a") as module:
        module.write("# changed\n")
    result = _cli(target)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "ohttp/keys.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_working_tree_is_refused_with_what_to_do(tmp_path: Path) -> None:
    # In-process, the checkout's own ohttp.egg-info may come first on sys.path: no RECORD.
    with pytest.raises(ReleaseError):
        measure()
    # The dev environment's `ohttp` is the editable install (make's venv).
    result = _cli(None, cwd=tmp_path)
    assert result.returncode == 1
    assert "editable install" in result.stderr
    assert "--wheel" in result.stderr
    assert result.stdout == ""


def test_a_record_hash_is_read_as_pep_376_says(wheel: Path) -> None:
    # RECORD's urlsafe, unpadded base64 of the digest is what measure() compares against.
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read(next(n for n in archive.namelist() if n.endswith("/RECORD")))
        path, digest, _ = record.decode().splitlines()[0].split(",")
        expected = base64.urlsafe_b64encode(hashlib.sha256(archive.read(path)).digest())
    assert digest == "sha256=" + expected.decode().rstrip("=")


def test_release_writes_a_cyclonedx_sbom_of_the_runtime_dependencies(tmp_path: Path) -> None:
    out = _build(_copy_tree(tmp_path / "tree", 1_600_000_000), tmp_path / "dist", sbom=True)
    assert out.splitlines()[-1].startswith("measurement: sha256:")
    sbom = json.loads((tmp_path / "dist" / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["name"] == "ohttp"
    names = {component["name"] for component in sbom["components"]}
    assert {"aiohttp", "cryptography", "pyhpke", "gmpy2", "prometheus-client"} <= names
    assert not names & {"pytest", "mypy", "ruff", "setuptools"}  # runtime only
