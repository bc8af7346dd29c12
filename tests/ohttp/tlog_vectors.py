"""The known answers of tests/vectors/tlog.json (sources are named inside the file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "vectors" / "tlog.json").read_text()
)
