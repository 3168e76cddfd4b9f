"""Finds the project's data folders (sql/, graphql/, playground/, plugins/) in a checkout or an install."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder `name`: bundled inside the package when installed, at the repo root in a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"Modula's {name}/ folder is missing from this installation")
