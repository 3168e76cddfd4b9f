"""The `modula` command: serve, migrate, schema export."""

from __future__ import annotations

import argparse
import asyncio
import sys

from modula.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_(
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        debug=True if getattr(args, "debug", False) else None,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modula", description="Modula: a GraphQL headless CMS with Lua plugins.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def database_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", help="sqlite:///path.db (default: ./modula.db) or postgresql://user@host/db; env DATABASE_URL")

    serve = commands.add_parser("serve", help="serve GraphQL over HTTP (creates and migrates the database)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; env MODULA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000; env MODULA_PORT)")
    database_flag(serve)
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply the core schema migrations and exit")
    database_flag(migrate)
    migrate.set_defaults(run=cmd_migrate)

    schema = commands.add_parser("schema", help="work with the GraphQL schema")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True, metavar="SUBCOMMAND")
    export = schema_commands.add_parser("export", help="print the schema as SDL")
    export.set_defaults(run=cmd_schema_export)
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
