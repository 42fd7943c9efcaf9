"""`schema.graphql` is the exported schema: a stale file fails here."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from graph.permissions import is_guarded
from graph.schema import Mutation, Query, Subscription, build_schema, schema, schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema_sdl(), (
        "schema.graphql is stale: run `backtester export-schema -o schema.graphql`"
    )


def test_export_schema_command_writes_the_same_sdl(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    result = CliRunner().invoke(main, ["export-schema", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")

    printed = CliRunner().invoke(main, ["export-schema"])
    assert printed.exit_code == 0
    assert printed.stdout == schema_sdl()


def test_limits_do_not_change_the_sdl() -> None:
    assert build_schema(max_depth=3, max_aliases=1, max_tokens=100).as_str() == schema.as_str()


def test_every_root_field_passes_the_permission_hook() -> None:
    for root in (Query, Mutation, Subscription):
        fields = root.__strawberry_definition__.fields
        assert fields
        unguarded = [f.python_name for f in fields if not is_guarded(f)]
        assert unguarded == [], f"{root.__name__} fields without the permission hook"


def test_no_32_bit_timestamps_in_the_schema() -> None:
    sdl = schema_sdl()
    for line in sdl.splitlines():
        name = line.strip().split(":")[0].split("(")[0]
        if name.endswith(("At", "Time", "Ms")) or name in {"start", "end", "t"}:
            assert ": Int" not in line, f"timestamp as a 32-bit Int: {line.strip()}"
