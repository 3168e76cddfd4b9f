"""The served schema is the checked-in graphql/schema.graphql (regenerate with `modula schema export`)."""

from __future__ import annotations

from pathlib import Path

from modula.schema.builder import build_schema, export_sdl

SNAPSHOT = Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql"


def test_core_schema_matches_the_checked_in_sdl():
    served = export_sdl(build_schema())
    assert SNAPSHOT.exists(), "graphql/schema.graphql is missing: run `modula schema export > graphql/schema.graphql`"
    assert served == SNAPSHOT.read_text(), (
        "the core schema changed: review the diff and run `modula schema export > graphql/schema.graphql`"
    )


async def test_running_server_serves_the_snapshot_schema(client):
    data = await client.data("{ __schema { mutationType { fields { name } } } }")
    names = {f["name"] for f in data["__schema"]["mutationType"]["fields"]}
    for name in ("createContent", "updateContent", "deleteContent", "moveContent", "createDatatype", "createRoute", "createSite"):
        assert name in names
        assert f"  {name}(" in SNAPSHOT.read_text()
