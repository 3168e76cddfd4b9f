"""A server process that starts Modula's application (migrations, bundled plugins, schema) on each
database URL it reads from stdin, prints what it serves as one JSON line, and stops it again.

tests/test_replicas.py runs three of these and hands them the same fresh database at the same
instant: the race of replicas starting together, repeated without paying Python's start-up each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

from modula.testing import running_app

BUNDLED = Path(__file__).resolve().parents[1] / "plugins"


async def serve_once(url: str) -> dict:
    try:
        async with running_app(url, plugins_dir=BUNDLED) as app:
            report = app.state.schemas.last_report
            served = app.state.live_schema.current
            return {"plugins": report.plugins, "failures": report.failures, "generation": served.generation,
                    "sdl": hashlib.sha256(served.schema.as_str().encode()).hexdigest()}
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    for line in sys.stdin:
        print(json.dumps(asyncio.run(serve_once(line.strip()))), flush=True)


if __name__ == "__main__":
    main()
