"""Packaging hook: a built wheel carries the core migrations (the top-level sql/ folder) inside the
package, as modula/_data/sql, where `modula.resources` finds them; a checkout reads sql/ itself."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithMigrations(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            shutil.copytree(Path(__file__).resolve().parent / "sql", Path(self.build_lib) / "modula" / "_data" / "sql",
                            dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithMigrations})
