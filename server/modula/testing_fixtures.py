"""The pytest plugin Modula installs (entry point `pytest11`): the `modula_plugin` fixture, which
serves a plugin on a temporary SQLite database so a plugin's tests read like a client's requests.

    async def test_my_plugin(modula_plugin):
        client = await modula_plugin("path/to/plugin")   # an administrator's GraphQLClient
        data = await client.data("{ myThings { name } }")

Tests are async: set `asyncio_mode = "auto"` for pytest-asyncio or mark them `pytest.mark.asyncio`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

try:
    import pytest_asyncio
except ImportError:  # Modula installed without its test extra: say so when the fixture is used, not at pytest start
    pytest_asyncio = None


def _missing_pytest_asyncio():
    pytest.fail("the modula_plugin fixture needs pytest-asyncio: pip install 'modula[test]'", pytrace=False)


def _fixture(function):
    return pytest_asyncio.fixture(function) if pytest_asyncio else pytest.fixture(name=function.__name__)(_missing_pytest_asyncio)


@_fixture
async def modula_plugin(tmp_path_factory):
    """`await modula_plugin(*paths, **settings)`: start Modula on a fresh SQLite file with the plugin
    folders in `paths` loaded (copied into a temporary plugins directory, so the originals stay
    clean) and return a client holding an administrator's API token. The plugin's proposed grants
    are not approved. Fails the test with the reason when a plugin does not load. Every app started
    is stopped at teardown; `client.app` reaches the app for more clients (see `modula.testing`)."""
    # Imported here so that pytest starts fast in any environment Modula is installed in.
    from modula.plugins.manifest import read_manifest
    from modula.testing import GraphQLClient, running_app, token_client

    async with contextlib.AsyncExitStack() as stack:

        async def start(*paths: str | Path, **settings) -> GraphQLClient:
            if not paths:
                raise TypeError("modula_plugin() needs the folder of at least one plugin")
            root = tmp_path_factory.mktemp("modula")
            plugins_dir = root / "plugins"
            plugins_dir.mkdir()
            names = []
            for path in paths:
                manifest = read_manifest(Path(path).resolve())
                manifest.files.write(plugins_dir / manifest.name)  # what `plugins install` copies
                names.append(manifest.name)
            app = await stack.enter_async_context(
                running_app(f"sqlite:///{root / 'modula.db'}", plugins_dir=plugins_dir, **settings))
            report = app.state.schemas.last_report
            missing = [name for name in names if name not in report.plugins]
            if missing:
                pytest.fail("; ".join(f"plugin {name} did not load: {report.failures.get(name, 'no reason reported')}"
                                      for name in missing), pytrace=False)
            return await stack.enter_async_context(token_client(app, "admin", roles=["admin"]))

        yield start
