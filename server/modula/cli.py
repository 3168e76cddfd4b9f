"""The `modula` command: serve, migrate, plugins, schema export, users, content import and export.

Results go to stdout, progress and errors to stderr. An error is two lines, `modula: error: <what is
wrong>` and `  fix: <what to do>`, with exit code 1; `--debug` (anywhere on the line) adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

from modula.config import Settings
from modula.errors import CommandError, ModulaError
from modula.progress import Progress


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        debug=True if getattr(args, "debug", False) else None,
        watch=True if getattr(args, "watch", False) else None,
        production=True if getattr(args, "production", False) else None,
        plugins_dir=Path(args.plugins_dir) if getattr(args, "plugins_dir", None) else None,
        workers=getattr(args, "workers", None),
        access_log=True if getattr(args, "access_log", False) else None,
        log_format=getattr(args, "log_format", None),
    )


@contextlib.asynccontextmanager
async def _connected(settings: Settings, progress: Progress, applied: list[str] | None = None) -> AsyncIterator:
    """The configured database, connected and migrated; each migration applied is reported (and
    appended to `applied`). Connection failures become one line naming the server or file, and the fix."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from modula.cli_errors import bad_url, database_problem
    from modula.db.connection import Database
    from modula.db.migrations import migrate

    def applying(version: str) -> None:
        progress.step(f"applying migration {version} ...")
        if applied is not None:
            applied.append(version)

    try:
        scheme = make_url(settings.database_url).get_backend_name()
    except ArgumentError:
        raise bad_url(settings.database_url, "it is not a database URL") from None
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise bad_url(settings.database_url, f"unsupported database URL scheme {scheme!r}")
    database = Database(settings.database_url, pool_size=settings.database_pool_size,
                        plugin_pool_size=settings.plugin_pool_size)
    try:
        await database.connect()
        async with database.session() as session:
            await migrate(session, progress=applying)
    except Exception as exc:
        with contextlib.suppress(Exception):
            await database.disconnect()
        problem = database_problem(exc, settings.database_url)
        if problem is None:
            raise
        raise problem from exc
    try:
        yield database
    finally:
        await database.disconnect()


def _on_database(args: argparse.Namespace, work):
    """Run `await work(database, settings, progress)` on the configured database, migrated first."""
    settings = _settings(args)
    progress = Progress()

    async def run():
        async with _connected(settings, progress) as database:
            return await work(database, settings, progress)

    return asyncio.run(run())


def _with_host(args: argparse.Namespace, work):
    """Run `await work(host, settings, progress)` with a plugin host on the migrated database."""
    from modula.lua.limits import Limits
    from modula.plugins.host import PluginHost

    async def on_host(database, settings, progress):
        host = PluginHost(database, limits=Limits.from_settings(settings))
        try:
            return await work(host, settings, progress)
        finally:
            await host.close()

    return _on_database(args, on_host)


# --- serve and migrate -------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from modula.app import create_app
    import logging.config

    from modula.cli_errors import shown_url
    from modula.logs import FORMATS, logging_config
    from modula.progress import LoggedProgress
    from modula.serving import listen, run_workers

    settings = _settings(args)
    if settings.workers < 1:
        raise CommandError(f"--workers must be 1 or more, not {settings.workers}", "give --workers N with N >= 1")
    if settings.log_format not in FORMATS:
        raise CommandError(f"unknown log format {settings.log_format!r}",
                           f"give --log-format (or MODULA_LOG_FORMAT) one of {', '.join(FORMATS)}")
    log_config = logging_config(settings.log_format)
    logging.config.dictConfig(log_config)  # for what `prepare` logs too (plugin installs)
    listening = listen(settings.host, settings.port)

    # Migrations are reported as lines, or as log records where every line must be JSON.
    progress = Progress() if settings.log_format == "text" else LoggedProgress(logging.getLogger("modula.migrations"))

    async def prepare() -> None:  # migrate here, where progress and errors reach the user as lines
        # One connection is enough here; each server opens its own pool afterwards.
        async with _connected(settings.with_(database_pool_size=1), progress) as database:
            if settings.workers > 1:
                # Installs and upgrades happen here, once; the workers then only load what is installed.
                from modula.lua.limits import Limits
                from modula.plugins.host import PluginHost

                host = PluginHost(database, limits=Limits.from_settings(settings))
                try:
                    await host.install_folders(settings.plugins_dir)
                finally:
                    await host.close()

    try:
        asyncio.run(prepare())
    except BaseException:
        listening.close()
        raise
    workers = f", {settings.workers} workers" if settings.workers > 1 else ""
    print(f"Modula serving GraphQL at http://{settings.host}:{settings.port}/graphql ({shown_url(settings.database_url)}{workers})",
          flush=True)

    def serve() -> None:
        # The line per request is the app's own (modula.request, with the request id and operation).
        config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_config=log_config,
                                access_log=False)
        uvicorn.Server(config).run(sockets=[listening])

    if settings.workers == 1:
        serve()
        return 0
    return run_workers(settings.workers, serve)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    applied: list[str] = []

    async def run() -> None:
        async with _connected(settings, Progress(), applied):
            pass

    asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" if applied else "the database is up to date")
    return 0


def cmd_schema_export(args: argparse.Namespace) -> int:
    from modula.schema.builder import build_schema, export_sdl

    sys.stdout.write(export_sdl(build_schema()))
    return 0


# --- plugins -----------------------------------------------------------------------------------

def cmd_plugins_list(args: argparse.Namespace) -> int:
    from modula.plugins import registry
    from modula.plugins.manifest import read_manifest

    async def work(host, settings, progress):
        async with host.database.session() as session:
            rows = await registry.list_plugins(session)
        installed = {row["name"]: row for row in rows}
        on_disk = {}
        if settings.plugins_dir.is_dir():
            for folder in sorted(settings.plugins_dir.iterdir()):
                if (folder / "plugin.json").is_file():
                    try:
                        on_disk[read_manifest(folder).name] = folder
                    except Exception as exc:  # noqa: BLE001 - listed, not fatal
                        print(f"{folder.name:<16} (broken: {exc})")
        for name in sorted(set(installed) | set(on_disk)):
            row = installed.get(name)
            if row is None:
                print(f"{name:<16} {'not installed':<22} {on_disk[name]}")
                continue
            state = "enabled" if row["enabled"] else "disabled"
            print(f"{name:<16} {row['version']:<10} {state:<10} sha256:{row['checksum'][:12]}  "
                  f"from {row['source'] or '(unknown)'}")
        if not installed and not on_disk:
            print(f"no plugins (plugins directory: {settings.plugins_dir})")
        return 0

    return _with_host(args, work)


def cmd_plugins_export(args: argparse.Namespace) -> int:
    from modula.plugins import registry

    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CommandError(f"{target} exists and is not an empty folder",
                           "give a new folder (or an empty one) to write the plugin's files into")

    async def work(host, settings, progress):
        row = await _installed(host, args.name)
        async with host.database.session() as session:
            files = await registry.stored_files(session, row["id"])
        if not files.files:
            raise CommandError(f"the registry holds no files of {args.name} (installed before plugins were stored)",
                               f"install it again from its folder with `modula plugins install PATH`")
        written = files.write(target)
        print(f"exported {args.name} {row['version']} (sha256:{row['checksum'][:12]}): {len(written)} file(s) to {target}")
        return 0

    return _with_host(args, work)


def _plugin_folder(path: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise CommandError(f"plugin folder {folder} does not exist",
                           "give the folder that holds plugin.json and init.lua, or create one with `modula plugins new NAME`")
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder", "give the plugin's folder (the one holding plugin.json), not a file in it")
    if not (folder / "plugin.json").is_file():
        raise CommandError(f"{folder} has no plugin.json, so it is not a plugin folder",
                           "give the folder that holds plugin.json and init.lua, or create one with `modula plugins new NAME`")
    return folder


async def _install(host, folder: Path, shown: Path, progress: Progress):
    """Install (or reinstall) the plugin in `folder`, reporting each step."""
    from modula.cli_errors import plugin_problem
    from modula.plugins.errors import PluginError

    try:
        return await host.install(folder, progress=progress.step)
    except PluginError as exc:
        raise plugin_problem(exc, shown) from exc


def _check_schema(host, plugin, shown: Path, progress: Progress) -> None:
    """Build the GraphQL schema with the plugin, as the server will, and say what it adds."""
    from modula.schema.builder import build, build_schema

    result = build([plugin], host)
    if plugin.name in result.failures:
        location = result.locations.get(plugin.name)
        message = result.failures[plugin.name].replace(f" ({location})", "", 1) if location else result.failures[plugin.name]
        raise CommandError(f"{shown / (location or 'init.lua')}: {message} (its tables are in place)",
                           f"correct init.lua in the plugins directory, then `modula plugins reload {plugin.name}`")
    core, extended = build_schema()._schema, result.schema._schema
    new_types = sum(1 for name in extended.type_map if name not in core.type_map and not name.startswith("__"))
    new_roots = sum(len(getattr(extended, root).fields) - len(getattr(core, root).fields)
                    for root in ("query_type", "mutation_type"))
    progress.step(f"schema checked: {new_types} type(s) and {new_roots} root field(s) added")


def cmd_plugins_install(args: argparse.Namespace) -> int:
    source = _plugin_folder(args.path)

    async def work(host, settings, progress):
        # Install from the source, and copy it into the plugins directory only once its tables and
        # registry row are in place: a failed install leaves the folder of the installed version
        # alone. From then on folder and registry must agree, whatever the schema check says: the
        # copy is exactly the files stored (plugin.json and the Lua code; not its tests).
        plugin = await _install(host, source.resolve(), source, progress)
        target = settings.plugins_dir.resolve() / plugin.name
        if source.resolve() != target:
            try:
                if target.exists():
                    shutil.rmtree(target)
                plugin.manifest.files.write(target)
            except OSError as exc:
                raise CommandError(f"installed {plugin.name}, but could not copy it to {target}: {exc.strerror}",
                                   "make the plugins directory writable (or choose another with --plugins-dir) "
                                   "and install again") from exc
        _check_schema(host, plugin, target, progress)
        print(f"installed {plugin.name} {plugin.manifest.version}: tables {', '.join(plugin.tables) or '(none)'}")
        return 0

    return _with_host(args, work)


async def _installed(host, name: str) -> dict:
    from modula.plugins import registry

    async with host.database.session() as session:
        row = await registry.get_plugin(session, name)
    if row is None:
        raise CommandError(f"no plugin named {name!r} is installed",
                           "`modula plugins list` shows the installed plugins; `modula plugins install PATH` installs one")
    return row


def cmd_plugins_reload(args: argparse.Namespace) -> int:
    async def work(host, settings, progress):
        await _installed(host, args.name)
        folder = settings.plugins_dir / args.name
        if not (folder / "plugin.json").is_file():
            raise CommandError(f"plugin {args.name} is installed but {folder / 'plugin.json'} is missing",
                               "install it again from its source with `modula plugins install PATH`, "
                               "or point --plugins-dir at the folder that holds it")
        plugin = await _install(host, folder, folder, progress)
        _check_schema(host, plugin, folder, progress)
        print(f"reloaded {plugin.name} {plugin.manifest.version}")
        return 0

    return _with_host(args, work)


def cmd_plugins_remove(args: argparse.Namespace) -> int:
    async def work(host, settings, progress):
        await _installed(host, args.name)
        await host.remove(args.name)
        folder = settings.plugins_dir / args.name
        if folder.is_dir():
            shutil.rmtree(folder)
        print(f"removed {args.name}; its tables were kept (they hold data): drop them by hand if you must")
        return 0

    return _with_host(args, work)


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from modula.plugins.scaffold import scaffold

    folder = scaffold(args.name, Path(args.dir))
    print(f"created {folder}: plugin.json, init.lua, tests/test_{args.name}.py")
    print(f"test it with `pytest {folder}`; check it with `modula plugins check {folder}`; "
          f"serve it with `modula plugins install {folder}`")
    return 0


def cmd_plugins_check(args: argparse.Namespace) -> int:
    import logging

    from modula.lua.limits import Limits
    from modula.plugins.check import check_plugin

    if not args.debug:
        logging.disable(logging.ERROR)  # problems are printed below, one line each, not logged twice
    report = asyncio.run(check_plugin(Path(args.path), Limits.from_settings(Settings.from_env())))
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(report.sdl)
    return 0


# --- users -------------------------------------------------------------------------------------

def _read_new_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of standard input; never an argument,
    which would sit in the shell history and the process list."""
    import getpass

    from modula.auth.users import password_problem

    where = "type it at the prompt" if sys.stdin.isatty() else "pipe it on standard input (one line)"
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password and password != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ", "type the same password twice")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("the password is empty", f"{where}: it is never taken as an argument")
    problem = password_problem(password)
    if problem:
        raise CommandError(problem, f"choose a password that has them and {where}")
    return password


def _user_problem(exc: ModulaError, args: argparse.Namespace) -> CommandError:
    """The service's first problem with the new user, named by the flag that carried the value."""
    problem = getattr(exc, "problems", [exc])[0]
    if "roles" in problem.path:
        return CommandError(f"--role: {problem.reason}",
                            "give roles that exist: admin, editor, viewer, or one made with the createRole mutation")
    flag = next((part for part in problem.path if part in ("username", "email")), None)
    if flag is None:
        return CommandError(problem.message, "correct the value named above")
    value = getattr(args, flag)
    if problem.code == "CONFLICT":
        fix = ("choose another --username (`modula users list` shows the existing ones)" if flag == "username"
               else "give another --email: no two users share one")
        return CommandError(f"a user with the {flag} {value!r} already exists", fix)
    return CommandError(f"--{flag} {value!r}: {problem.reason}", f"give a valid --{flag}")


def cmd_users_create(args: argparse.Namespace) -> int:
    from modula.auth.users import create_user

    roles = sorted(set(args.role or []) | ({"admin"} if args.admin else set()))
    password = _read_new_password()

    async def work(database, settings, progress):
        async with database.session() as session:
            try:
                return await create_user(session, username=args.username, email=args.email, password=password, roles=roles)
            except ModulaError as exc:
                raise _user_problem(exc, args) from exc

    user = _on_database(args, work)
    print(f"created user {user['username']} (id {user['id']}, roles: {', '.join(user['roles']) or 'none'})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from modula.auth.users import list_users

    async def work(database, settings, progress):
        async with database.session() as session:
            return await list_users(session)

    found = _on_database(args, work)
    for user in found:
        state = "" if user["is_active"] else " (inactive)"
        print(f"{user['id']:>5}  {user['username']:<20} {user['email']:<32} {', '.join(user['roles']) or '-'}{state}")
    if not found:
        print("no users: create the first administrator with `modula users create --username NAME --email EMAIL --admin`")
    return 0


# --- content -----------------------------------------------------------------------------------

def _import_text(path: str) -> str:
    """The import file's text; `-` reads standard input (`modula content export | modula content import -`)."""
    if path == "-":
        return sys.stdin.read()
    file = Path(path)
    if not file.exists():
        raise CommandError(f"import file {file} does not exist", "give the path of a JSON Lines file (one content node per line)")
    if file.is_dir():
        raise CommandError(f"{file} is a folder", "give the path of a JSON Lines file (one content node per line)")
    try:
        return file.read_text(encoding="utf-8-sig")  # -sig: a byte order mark some editors write is not JSON
    except UnicodeDecodeError as exc:
        raise CommandError(f"{file} is not UTF-8 text (byte {exc.start} cannot be read)",
                           "save the file as UTF-8 JSON Lines") from exc


def cmd_content_import(args: argparse.Namespace) -> int:
    from modula.cms.transfer import import_content, read_records

    source = "standard input" if args.file == "-" else args.file
    records = read_records(_import_text(args.file), source)

    async def work(database, settings, progress):
        async with database.session() as session:
            with progress.counter("importing", len(records), "nodes") as counter:
                return await import_content(session, records, source=source, advance=counter.advance)

    created = _on_database(args, work)
    print(f"imported {created} content node(s) from {source}")
    return 0


def cmd_content_export(args: argparse.Namespace) -> int:
    import json

    from modula.cms.transfer import export_content

    async def work(database, settings, progress):
        async with database.session() as session:
            return await export_content(session)

    for record in _on_database(args, work):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


# --- the parser --------------------------------------------------------------------------------

DESCRIPTION = """\
Modula: a GraphQL headless CMS with Lua plugins.

Settings come from flags, else from the environment (DATABASE_URL, MODULA_PLUGINS_DIR, ...), else
defaults (./modula.db, ./plugins). Results go to stdout; progress and errors to stderr. An error is
one line plus a line saying how to fix it; --debug, anywhere on the line, adds the traceback.

examples:
  modula serve --port 8000
  modula plugins install ./plugins-src/shop
  modula content import pages.jsonl --database-url postgresql://cms@db.example/cms
  modula COMMAND --help
"""

IMPORT_DESCRIPTION = """\
Create content nodes from a JSON Lines file, one node per line (a file holding one JSON array of
such objects works too). All or nothing: every line is checked, then all nodes are written in one
transaction; a bad line is reported by number and field, and nothing is imported.

A line:
  {"ref": "home", "route": "site", "datatype": "Page", "status": "published",
   "fields": {"Title": "Welcome", "Views": 3, "Meta": {"tags": ["a"]}}}
  {"ref": "about", "parent": "home", "route": "site", "datatype": "Page", "fields": {"Title": "About"}}

  route     the route's slug (or its id)               datatype  the datatype's label (or its id)
  fields    field label -> value (JSON: text, numbers, true/false, any JSON for json fields;
            a content field takes {"ref": "..."} naming another line, or a node's id)
  status    published (default) or draft               ref       a name other lines can use
  parent    the ref of an earlier line (or the id of a node already in the database)
  slug      unique among the node's siblings (default: derived from its title, made free)

Routes and datatypes must exist already; the import creates content only.

example:
  modula content export --database-url sqlite:///old.db > site.jsonl
  modula content import site.jsonl --database-url postgresql://cms@db.example/cms
"""


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    # --debug is accepted after a subcommand too; SUPPRESS keeps a subcommand from resetting the
    # value the top-level flag set.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, show the traceback as well")
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--database-url", metavar="URL",
                          help="sqlite:///path.db (default: sqlite:///modula.db) or postgresql://user:password@host:port/db; "
                               "env DATABASE_URL")
    plugins_dir = argparse.ArgumentParser(add_help=False)
    plugins_dir.add_argument("--plugins-dir", metavar="DIR", help="folder of installed plugins (default ./plugins; env MODULA_PLUGINS_DIR)")

    parser = argparse.ArgumentParser(prog="modula", description=DESCRIPTION, formatter_class=formatter)
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback as well")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name: str, help: str, description: str, run=None, parents=()) -> argparse.ArgumentParser:
        p = group.add_parser(name, help=help, description=description, formatter_class=formatter,
                             parents=[common, *parents])
        if run is not None:
            p.set_defaults(run=run)
        return p

    serve = command(commands, "serve", "serve GraphQL over HTTP (creates and migrates the database first)",
                    "Serve the GraphQL API at /graphql and the playground at /playground. The database is\n"
                    "created and migrated first (each migration is reported), plugins in the plugins\n"
                    "directory are loaded.\n\nexample:\n  modula serve --host 0.0.0.0 --port 8080 --watch",
                    cmd_serve, [database, plugins_dir])
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; env MODULA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000; env MODULA_PORT)")
    serve.add_argument("--watch", action="store_true", help="reload a plugin when its files change")
    serve.add_argument("--production", action="store_true",
                       help="introspection and field suggestions for admins only (env MODULA_PRODUCTION=1)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="server processes sharing the port, each a whole server on the one database "
                            "(default 1; env MODULA_WORKERS; more than 1 wants PostgreSQL)")
    serve.add_argument("--access-log", action="store_true",
                       help="log a line per request: request id, operation, status, duration (env MODULA_ACCESS_LOG=1)")
    serve.add_argument("--log-format", choices=("text", "json"),
                       help="log lines as text (the default) or one JSON object per line (env MODULA_LOG_FORMAT)")

    command(commands, "migrate", "apply the core schema migrations and exit",
            "Apply the core schema migrations not yet applied, reporting each, and exit.\n"
            "Every other command migrates too; this one does only that.\n\n"
            "example:\n  modula migrate --database-url postgresql://cms@127.0.0.1:5432/cms",
            cmd_migrate, [database])

    plugins = command(commands, "plugins", "list, install, reload or remove plugins; scaffold and check new ones",
                      "Manage Lua plugins: a plugin is a folder with plugin.json and init.lua.\n\n"
                      "example:\n  modula plugins new notes && modula plugins check notes && modula plugins install notes")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", required=True, metavar="SUBCOMMAND")
    command(plugin_commands, "list", "installed plugins and plugin folders",
            "List the installed plugins (version, enabled, the hash of their stored files and the folder\n"
            "they were installed from) and the plugin folders in the plugins directory not installed.",
            cmd_plugins_list, [database, plugins_dir])
    export = command(plugin_commands, "export", "write an installed plugin's stored files to a folder",
                     "Write the files the registry holds for an installed plugin (plugin.json and its Lua\n"
                     "files, exactly as every server runs them) into DIR, a new or empty folder.\n\n"
                     "example:\n  modula plugins export shop ./shop-as-installed", cmd_plugins_export, [database])
    export.add_argument("name", help="the plugin's name, as `modula plugins list` shows it")
    export.add_argument("dir", metavar="DIR", help="a new or empty folder to write the files into")
    install = command(plugin_commands, "install", "install a plugin folder and copy it into the plugins directory",
                      "Install the plugin in FOLDER (reporting each step: manifest, init.lua, tables, schema): its\n"
                      "files are stored in the database, from where every `modula serve` process loads it, and\n"
                      "copied into the plugins directory (for `plugins reload` and `serve --watch`). Installing\n"
                      "a new version upgrades its tables (additions only).\n\n"
                      "example:\n  modula plugins install ./shop", cmd_plugins_install, [database, plugins_dir])
    install.add_argument("path", metavar="FOLDER", help="folder with plugin.json and init.lua")
    reload = command(plugin_commands, "reload", "install a plugin again from its folder in the plugins directory",
                     "Install an installed plugin again from its folder in the plugins directory, upgrading its\n"
                     "tables (after editing it there).\n\nexample:\n  modula plugins reload shop",
                     cmd_plugins_reload, [database, plugins_dir])
    reload.add_argument("name", help="the plugin's name, as `modula plugins list` shows it")
    remove = command(plugin_commands, "remove", "forget a plugin and delete its folder (keeps its tables)",
                     "Forget an installed plugin and delete its folder from the plugins directory. Its tables\n"
                     "and their data are kept.\n\nexample:\n  modula plugins remove shop",
                     cmd_plugins_remove, [database, plugins_dir])
    remove.add_argument("name", help="the plugin's name, as `modula plugins list` shows it")
    new = command(plugin_commands, "new", "scaffold a plugin: manifest, init.lua and a test",
                  "Create the source folder DIR/NAME of a plugin: plugin.json, an init.lua declaring a table,\n"
                  "a query and a hook, and tests/test_NAME.py that tests it. The source lives outside the\n"
                  "plugins directory; `modula plugins install DIR/NAME` stores and copies the plugin's code\n"
                  "there (not its tests).\n\nexample:\n  modula plugins new notes --dir plugins-src",
                  cmd_plugins_new)
    new.add_argument("name", help="the plugin's name: lower-case letters, digits and _, starting with a letter")
    new.add_argument("--dir", default=".",
                     help="folder to create the plugin's source in (default: the current folder), not the plugins directory")
    check = command(plugin_commands, "check", "validate a plugin folder and print the GraphQL it adds",
                    "Validate a plugin on a throwaway database (the real one is not touched) and print the\n"
                    "GraphQL it adds to stdout. Problems go to stderr as FILE:LINE: message; exit 1 then.\n\n"
                    "example:\n  modula plugins check ./notes", cmd_plugins_check)
    check.add_argument("path", metavar="FOLDER", help="folder with plugin.json and init.lua")

    schema = command(commands, "schema", "work with the GraphQL schema", "Work with the GraphQL schema.")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True, metavar="SUBCOMMAND")
    command(schema_commands, "export", "print the core schema as SDL",
            "Print the core GraphQL schema (without plugins) as SDL to stdout.\n\n"
            "example:\n  modula schema export > schema.graphql", cmd_schema_export)

    users = command(commands, "users", "create and list users", "Create and list users.")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")
    create = command(user_commands, "create", "create a user; the password is prompted for or read from stdin",
                     "Create a user. The password is prompted for on a terminal, or read from the first line\n"
                     "of standard input when piped; never from an argument.\n\n"
                     "example:\n  modula users create --username ada --email ada@example.com --admin",
                     cmd_users_create, [database])
    create.add_argument("--username", required=True, help="1 to 64 letters, digits or . _ @ -")
    create.add_argument("--email", required=True, help="the user's email address (unique)")
    create.add_argument("--admin", action="store_true", help="give the user the admin role")
    create.add_argument("--role", action="append", metavar="ROLE", help="give the user this role (repeatable)")
    command(user_commands, "list", "list users and their roles", "List users with their email and roles.",
            cmd_users_list, [database])

    content = command(commands, "content", "import and export content nodes (JSON Lines)",
                      "Import and export content nodes as JSON Lines: one node per line, routes by slug,\n"
                      "datatypes and fields by label. See `modula content import --help` for the format.")
    content_commands = content.add_subparsers(dest="content_command", required=True, metavar="SUBCOMMAND")
    import_ = command(content_commands, "import", "create content nodes from a JSON Lines file, all or nothing",
                      IMPORT_DESCRIPTION, cmd_content_import, [database])
    import_.add_argument("file", metavar="FILE", help="a JSON Lines file (.jsonl) or a JSON array file; - reads standard input")
    command(content_commands, "export", "print every content node as JSON Lines",
            "Print every content node to stdout in the format `modula content import` reads: parents\n"
            "before children, siblings in order, each node's ref its id.\n\n"
            "example:\n  modula content export > site.jsonl", cmd_content_export, [database])
    return parser


def main(argv: list[str] | None = None) -> int:
    from modula.cli_errors import explain

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("modula: interrupted (work in progress was rolled back)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line and the fix for users; the traceback with --debug
        if args.debug:
            traceback.print_exc()
        error = explain(exc)
        print(f"modula: error: {error.message}\n  fix: {error.fix}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
