"""``make release``: build the sdist and the wheel of one commit reproducibly, write the SBOM, and
print the measurement.

Usage: ``python deploy/release.py [--ref REF] [--tree DIR] [--out DIR] [--no-sbom]``.

The source is ``git archive REF`` (the commit, not the working tree's uncommitted changes), or
``--tree DIR`` as it is. ``SOURCE_DATE_EPOCH`` is the commit's time (or is taken from the
environment), so the wheel's zip entries carry no build time; the sdist is then rewritten with
sorted members, fixed owners and modes, and that time, because setuptools leaves the build's
own times in it. The build uses the environment's pinned setuptools (``--no-isolation``), so two
builds of one commit with the locked build tools give the same bytes (tests/test_release.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ohttp.aio.release import measure_wheel

REPO = Path(__file__).resolve().parent.parent
SBOM_NAME = "sbom.cdx.json"


def commit_epoch(ref: str) -> int:
    """The committer time of ``ref``: the build time every output carries."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct", ref],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def export_commit(ref: str, dest: Path) -> None:
    """The files of ``ref`` (``git archive``), nothing of the working tree."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def _normal(info: tarfile.TarInfo, epoch: int) -> tarfile.TarInfo:
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.pax_headers = {}  # setuptools writes the build time there too
    executable = info.isdir() or info.mode & 0o100
    info.mode = 0o755 if executable else 0o644
    return info


def normalize_sdist(path: Path, epoch: int) -> None:
    """Rewrite an sdist: members sorted by name, owner 0, modes 644/755, times and gzip at epoch."""
    with tarfile.open(path) as source:
        members = sorted(source.getmembers(), key=lambda member: member.name)
        contents = {m.name: source.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in members:
            data = contents.get(member.name)
            target.addfile(_normal(member, epoch), io.BytesIO(data) if data is not None else None)
    with path.open("wb") as out, gzip.GzipFile(
        filename="", mode="wb", fileobj=out, mtime=epoch, compresslevel=9
    ) as zipped:
        zipped.write(raw.getvalue())


def build(source: Path, out: Path, epoch: int) -> tuple[Path, Path]:
    """Build the sdist and the wheel of ``source`` into ``out``; returns (sdist, wheel)."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    sdist = next(out.glob("*.tar.gz"))
    wheel = next(out.glob("*.whl"))
    normalize_sdist(sdist, epoch)
    return sdist, wheel


def write_sbom(out: Path) -> Path:
    """A CycloneDX SBOM of the runtime dependencies: the hash-locked ``requirements.lock``."""
    target = out / SBOM_NAME
    subprocess.run(
        [
            str(Path(sys.executable).parent / "cyclonedx-py"),
            "requirements",
            "--pyproject", str(REPO / "pyproject.toml"),
            "--output-reproducible",
            "--output-format", "JSON",
            "--output-file", str(target),
            str(REPO / "requirements.lock"),
        ],
        check=True,
    )
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Build, write the SBOM, print the artifacts' hashes and the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ref", default="HEAD", help="the commit to build (default HEAD)")
    parser.add_argument("--tree", type=Path, help="build this directory as it is instead")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--no-sbom", action="store_true")
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or commit_epoch(args.ref))
    args.out.mkdir(parents=True, exist_ok=True)
    for old in [*args.out.glob("*.whl"), *args.out.glob("*.tar.gz")]:
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        source = args.tree
        if source is None:
            source = Path(scratch)
            export_commit(args.ref, source)
        sdist, wheel = build(source, args.out.resolve(), epoch)

    for artifact in (sdist, wheel):
        print(f"{_sha256(artifact)}  {artifact.name}")
    if not args.no_sbom:
        print(f"sbom: {write_sbom(args.out)}")
    print(f"SOURCE_DATE_EPOCH={epoch}")
    print(f"measurement: {measure_wheel(wheel)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
