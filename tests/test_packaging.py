"""A built wheel is a whole Modula: `pip install modula` users get the migrations and the playground
without a checkout or Node."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_migration_and_the_built_playground(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path),
                            str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("modula-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    migrations = {f"modula/_data/sql/{path.relative_to(ROOT / 'sql').as_posix()}" for path in (ROOT / "sql").rglob("*.sql")}
    assert migrations and migrations <= names, sorted(migrations - names)
    assert {"modula/playground_assets/playground.js", "modula/playground_assets/playground.css"} <= names
    examples = {f"modula/playground_assets/examples/{path.name}"
                for path in (ROOT / "server/modula/playground_assets/examples").iterdir()}
    assert examples <= names, sorted(examples - names)
