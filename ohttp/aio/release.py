"""The release measurement: one SHA-256 that names the code of an ``ohttp`` release.

Definition (docs/transparency.md, "Release and measurement"): take every file that the release's
wheel installs into ``site-packages``, that is every file of the wheel except those under
``*.dist-info/`` and ``*.data/``; write one line ``<sha256 hex of the file>  <path>`` per file
(the ``sha256sum`` format, paths relative to the wheel's root with ``/``), sorted by the path's
UTF-8 bytes; the measurement is ``sha256:`` and the SHA-256 of those lines. Metadata is left out
on purpose: it names the build backend's version, which does not change what runs.

The same value comes from a wheel (:func:`measure_wheel`), from the files of an installed
release, recomputed from disk and checked against the install's ``RECORD``
(:func:`measure`), and from a source tag, by building its wheel (``make release``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Final

DISTRIBUTION: Final = "ohttp"
PREFIX: Final = "sha256:"


class ReleaseError(Exception):
    """The release cannot be measured; the message says why and what to do instead."""


def _is_measured(path: str) -> bool:
    parts = PurePosixPath(path).parts
    if not parts or parts[0] == ".." or "__pycache__" in parts:
        return False  # scripts outside site-packages, bytecode compiled at install time
    return not parts[0].endswith((".dist-info", ".data"))


def digest(files: Iterable[tuple[str, str]]) -> str:
    """The measurement of ``(path, sha256 hex)`` pairs: the definition in the module docstring."""
    ordered = sorted(files, key=lambda item: item[0].encode())
    lines = "".join(f"{sha}  {path}\n" for path, sha in ordered)
    return PREFIX + hashlib.sha256(lines.encode()).hexdigest()


def measure_wheel(wheel: Path) -> str:
    """The measurement of a wheel file, e.g. one built from a source tag."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            files = [
                (info.filename, hashlib.sha256(archive.read(info)).hexdigest())
                for info in archive.infolist()
                if not info.is_dir() and _is_measured(info.filename)
            ]
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReleaseError(f"cannot read the wheel: {type(exc).__name__}") from exc
    if not files:
        raise ReleaseError("the wheel holds no files to measure")
    return digest(files)


def _editable(dist: importlib.metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if text is None:
        return False
    try:
        info = json.loads(text)
    except ValueError:
        return False
    return bool(isinstance(info, dict) and info.get("dir_info", {}).get("editable"))


def _recorded_sha256(hash_: importlib.metadata.FileHash | None) -> str | None:
    if hash_ is None or hash_.mode != "sha256":
        return None
    padded = hash_.value + "=" * (-len(hash_.value) % 4)
    return base64.urlsafe_b64decode(padded).hex()  # RECORD: urlsafe base64, unpadded (PEP 376)


def _installed_files(dist: importlib.metadata.Distribution) -> list[tuple[str, str]]:
    files = []
    for entry in dist.files or ():
        recorded = _recorded_sha256(entry.hash)
        if recorded is None or not _is_measured(entry.as_posix()):
            continue
        try:
            actual = hashlib.sha256(Path(str(entry.locate())).read_bytes()).hexdigest()
        except OSError as exc:
            raise ReleaseError(f"installed file missing: {entry.as_posix()}") from exc
        if actual != recorded:
            # A changed file is no release at all: report it rather than measure it.
            raise ReleaseError(f"installed file differs from its RECORD: {entry.as_posix()}")
        files.append((entry.as_posix(), actual))
    return files


def measure(distribution: str = DISTRIBUTION) -> str:
    """The measurement of the installed release, recomputed from the installed files.

    Raises :class:`ReleaseError` for an editable install (``pip install -e``: the code is a
    working tree, not a release; measure a wheel instead), an install without a ``RECORD``, or
    an installed file changed since installation.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ReleaseError(f"{distribution} is not installed") from exc
    if _editable(dist):
        raise ReleaseError(
            f"{distribution} is an editable install (a working tree, not a release): "
            "run `make release` and measure dist/*.whl with --wheel, or install that wheel"
        )
    files = _installed_files(dist)
    if not files:
        raise ReleaseError(f"{distribution} has no RECORD of hashed files to measure")
    return digest(files)
