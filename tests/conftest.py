from __future__ import annotations

import pytest

from deploy.compile import stale


def pytest_sessionstart(session: pytest.Session) -> None:
    # A compiled twin older than a source would be imported instead of it, and the tests
    # would test the old code (deploy/compile.py; `make test` rebuilds first).
    problems = stale()
    if problems:
        raise pytest.UsageError("stale compiled modules, run `make compile`: "
                                + "; ".join(problems))
