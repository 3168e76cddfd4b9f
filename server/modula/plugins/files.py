"""A plugin's code as text: plugin.json and its Lua files by relative path, with one checksum.

The same value comes from a folder (what `install` and `--watch` read) and from the registry
(what every server process loads), so a plugin runs identically whichever it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modula.plugins.errors import PluginError

MANIFEST = "plugin.json"
INIT = "init.lua"
# A plugin's own tests stay where its source is: never stored, never copied into the plugins folder.
TEST_FOLDERS = frozenset({"tests", "test", "spec"})


@dataclass(frozen=True, eq=False)
class PluginFiles:
    files: Mapping[str, str]  # relative posix path -> text

    @property
    def checksum(self) -> str:
        """sha256 over every file's path and bytes, so any code change is a new checksum."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0")
            digest.update(self.files[path].encode("utf-8") + b"\0")
        return digest.hexdigest()

    def text(self, path: str) -> str | None:
        return self.files.get(path)

    def write(self, folder: Path) -> list[Path]:
        """Write the files under `folder` (created); returns the paths written."""
        written = []
        for relative, content in sorted(self.files.items()):
            target = folder.joinpath(*_safe_parts(relative))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            written.append(target)
        return written


def is_plugin_code(relative: str) -> bool:
    """Whether a .lua file (a path relative to the plugin folder) is code the plugin runs, not one
    of its tests (under tests/, test/ or spec/, or named test_*.lua, *_test.lua or *_spec.lua)."""
    *folders, name = PurePosixPath(relative).parts
    return not (TEST_FOLDERS & set(folders) or name.startswith("test_") or name.endswith(("_test.lua", "_spec.lua")))


def read_folder(folder: Path) -> PluginFiles:
    """plugin.json and every .lua file under `folder` that is plugin code (see `is_plugin_code`), as text."""
    files = {}
    for path in sorted([folder / MANIFEST, *folder.rglob("*.lua")]):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or (relative != MANIFEST and not is_plugin_code(relative)):
            continue
        try:
            files[relative] = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PluginError(folder.name, f"{relative} is not UTF-8 text (byte {exc.start})", location=relative) from None
    return PluginFiles(files)


def _safe_parts(relative: str) -> tuple[str, ...]:
    # Stored paths were read below a plugin folder; refuse any that would climb out of one.
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or any(part in ("..", "") for part in parts):
        raise ValueError(f"unsafe plugin file path {relative!r}")
    return parts
