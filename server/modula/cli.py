"""The `modula` command: serve, migrate, plugins, schema export, users."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from modula.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        debug=True if getattr(args, "debug", False) else None,
        watch=True if getattr(args, "watch", False) else None,
        production=True if getattr(args, "production", False) else None,
        plugins_dir=Path(args.plugins_dir) if getattr(args, "plugins_dir", None) else None,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from modula.app import create_app

    settings = _settings(args)
    print(f"Modula serving GraphQL at http://{settings.host}:{settings.port}/graphql ({settings.database_url})")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from modula.db.connection import Database
    from modula.db.migrations import migrate

    settings = _settings(args)

    async def run() -> list[str]:
        database = Database(settings.database_url)
        await database.connect()
        try:
            async with database.session() as session:
                return await migrate(session, progress=lambda v: print(f"applying {v} ...", flush=True))
        finally:
            await database.disconnect()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" if applied else "the database is up to date")
    return 0


def cmd_schema_export(args: argparse.Namespace) -> int:
    from modula.schema.builder import build_schema, export_sdl

    sys.stdout.write(export_sdl(build_schema()))
    return 0


def _with_host(args: argparse.Namespace, work):
    """Run `work(host, settings)` against the configured database with a migrated schema."""
    from modula.db.connection import Database
    from modula.db.migrations import migrate
    from modula.plugins.host import PluginHost

    settings = _settings(args)

    async def run():
        database = Database(settings.database_url)
        await database.connect()
        host = PluginHost(database)
        try:
            async with database.session() as session:
                await migrate(session)
            return await work(host, settings)
        finally:
            await host.close()
            await database.disconnect()

    return asyncio.run(run())


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from modula.plugins import registry
    from modula.plugins.manifest import read_manifest

    async def work(host, settings):
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
            state = "not installed" if row is None else (f"{row['version']:<10} " + ("enabled" if row["enabled"] else "disabled"))
            print(f"{name:<16} {state:<22} {on_disk.get(name, '(no folder)')}")
        if not installed and not on_disk:
            print(f"no plugins (plugins directory: {settings.plugins_dir})")
        return 0

    return _with_host(args, work)


def cmd_plugins_install(args: argparse.Namespace) -> int:
    import shutil

    from modula.plugins.manifest import read_manifest

    async def work(host, settings):
        source = Path(args.path).resolve()
        manifest = read_manifest(source)
        target = settings.plugins_dir.resolve() / manifest.name
        if source != target:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target)
        print(f"installing {manifest.name} {manifest.version} ...", flush=True)
        plugin = await host.install(target)
        print(f"installed {plugin.name} {plugin.manifest.version}: tables {', '.join(plugin.tables) or '(none)'}")
        return 0

    return _with_host(args, work)


def cmd_plugins_reload(args: argparse.Namespace) -> int:
    async def work(host, settings):
        plugin = await host.reload(args.name, settings.plugins_dir)
        print(f"reloaded {plugin.name} {plugin.manifest.version}")
        return 0

    return _with_host(args, work)


def cmd_plugins_remove(args: argparse.Namespace) -> int:
    import shutil

    async def work(host, settings):
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
    print(f"created {folder}: plugin.json, init.lua, test_{args.name}.py")
    print(f"test it with `pytest {folder}`; check it with `modula plugins check {folder}`")
    return 0


def cmd_plugins_check(args: argparse.Namespace) -> int:
    import logging

    from modula.plugins.check import check_plugin

    if not args.debug:
        logging.disable(logging.ERROR)  # problems are printed below, one line each, not logged twice
    report = asyncio.run(check_plugin(Path(args.path)))
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(report.sdl)
    return 0


def _read_new_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of standard input; never an argument,
    which would sit in the shell history and the process list."""
    import getpass

    from modula.auth.users import password_problem

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password and password != getpass.getpass("Password (again): "):
            raise ValueError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ValueError("the password is empty: type it at the prompt or pipe it on standard input")
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    return password


def _with_session(args: argparse.Namespace, work):
    """Run `work(session)` on the configured database, migrated first."""
    from modula.db.connection import Database
    from modula.db.migrations import migrate

    settings = _settings(args)

    async def run():
        database = Database(settings.database_url)
        await database.connect()
        try:
            async with database.session() as session:
                await migrate(session)
                return await work(session)
        finally:
            await database.disconnect()

    return asyncio.run(run())


def cmd_users_create(args: argparse.Namespace) -> int:
    from modula.auth.users import create_user
    from modula.errors import ModulaError

    roles = sorted(set(args.role or []) | ({"admin"} if args.admin else set()))
    password = _read_new_password()

    async def work(session):
        try:
            return await create_user(session, username=args.username, email=args.email, password=password, roles=roles)
        except ModulaError as exc:
            raise ValueError(exc.message) from None

    user = _with_session(args, work)
    print(f"created user {user['username']} (id {user['id']}, roles: {', '.join(user['roles']) or 'none'})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from modula.auth.users import list_users

    found = _with_session(args, list_users)
    for user in found:
        state = "" if user["is_active"] else " (inactive)"
        print(f"{user['id']:>5}  {user['username']:<20} {user['email']:<32} {', '.join(user['roles']) or '-'}{state}")
    if not found:
        print("no users: create the first administrator with `modula users create --username NAME --email EMAIL --admin`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modula", description="Modula: a GraphQL headless CMS with Lua plugins.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def database_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", help="sqlite:///path.db (default: ./modula.db) or postgresql://user@host/db; env DATABASE_URL")

    serve = commands.add_parser("serve", help="serve GraphQL over HTTP (creates and migrates the database)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; env MODULA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000; env MODULA_PORT)")
    serve.add_argument("--watch", action="store_true", help="reload a plugin when its files change")
    serve.add_argument("--production", action="store_true",
                       help="introspection and field suggestions for admins only (env MODULA_PRODUCTION=1)")
    database_flag(serve)
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply the core schema migrations and exit")
    database_flag(migrate)
    migrate.set_defaults(run=cmd_migrate)

    plugins = commands.add_parser("plugins", help="list, install, reload or remove plugins; scaffold and check new ones")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", required=True, metavar="SUBCOMMAND")

    def plugin_parser(name: str, help: str, run) -> argparse.ArgumentParser:
        p = plugin_commands.add_parser(name, help=help)
        database_flag(p)
        p.add_argument("--plugins-dir", help="folder of plugins (default ./plugins; env MODULA_PLUGINS_DIR)")
        p.set_defaults(run=run)
        return p

    plugin_parser("list", "installed plugins and plugin folders", cmd_plugins_list)
    plugin_parser("install", "copy a plugin folder into the plugins directory and install it", cmd_plugins_install).add_argument(
        "path", help="folder with plugin.json and init.lua")
    new = plugin_commands.add_parser("new", help="scaffold a plugin: manifest, init.lua with a table, a query and a hook, and a test")
    new.add_argument("name", help="the plugin's name: lower-case letters, digits and _, starting with a letter")
    new.add_argument("--dir", default=".", help="folder to create the plugin in (default: the current folder)")
    new.set_defaults(run=cmd_plugins_new)
    check = plugin_commands.add_parser(
        "check", help="validate a plugin folder on a throwaway database and print the GraphQL it adds (exit 1 on problems)")
    check.add_argument("path", help="folder with plugin.json and init.lua")
    check.set_defaults(run=cmd_plugins_check)
    plugin_parser("reload", "install a plugin again from its folder (upgrades its tables)", cmd_plugins_reload).add_argument("name")
    plugin_parser("remove", "forget a plugin and delete its folder (keeps its tables)", cmd_plugins_remove).add_argument("name")

    schema = commands.add_parser("schema", help="work with the GraphQL schema")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True, metavar="SUBCOMMAND")
    export = schema_commands.add_parser("export", help="print the schema as SDL")
    export.set_defaults(run=cmd_schema_export)

    users = commands.add_parser("users", help="create and list users")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")
    create = user_commands.add_parser(
        "create", help="create a user; the password is prompted for, or read from standard input when piped")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--admin", action="store_true", help="give the user the admin role")
    create.add_argument("--role", action="append", metavar="ROLE", help="give the user this role (repeatable)")
    database_flag(create)
    create.set_defaults(run=cmd_users_create)
    list_users = user_commands.add_parser("list", help="list users and their roles")
    database_flag(list_users)
    list_users.set_defaults(run=cmd_users_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line for users, tracebacks with --debug
        if args.debug:
            raise
        print(f"modula: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
