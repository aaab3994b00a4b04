"""PostgreSQL specifics: selectors the connector refuses or handles safely, identifiers and
values an attacker chooses, credentials, and what keeps deleted rows (proved on the cluster's own
files)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from connectors.postgres import PostgresTable
from sundown import registry
from sundown.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from sundown.records import RecordEntry
from tests.conformance_records import unique
from tests.conformance_records.backend_postgres import PostgresBackend, connect, insert, rows
from tests.fixtures.postgres import Postgres


@pytest.fixture
def backend(postgres_env: Postgres) -> PostgresBackend:
    return PostgresBackend(postgres_env)


def test_a_selector_on_an_unindexed_column_is_refused_naming_it(backend: PostgresBackend) -> None:
    seeded = backend.seed(3)
    store = registry.open_record_store(seeded.url, {"where": {"session": "s1"}})
    with pytest.raises(InputError, match="column 'session' is not indexed"):
        list(store.inventory())
    with pytest.raises(InputError, match="column 'session' is not indexed"):
        store.purge([RecordEntry(seeded.ids[0])])
    assert len(rows(backend.pg, seeded.names["table"])) == 3 + 5


def test_a_partial_index_does_not_make_a_column_indexed(backend: PostgresBackend) -> None:
    seeded = backend.seed(2)
    table = seeded.names["table"]
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL("CREATE INDEX ON {} (session) WHERE system = 'x'").format(sql.Identifier(table))
        )
    store = registry.open_record_store(seeded.url, {"where": {"session": "s1"}})
    with pytest.raises(InputError, match="'session' is not indexed"):
        list(store.inventory())


def test_a_selector_on_a_missing_column_is_refused_naming_it(backend: PostgresBackend) -> None:
    seeded = backend.seed(1)
    store = registry.open_record_store(seeded.url, {"where": {"tenant": "a"}})
    with pytest.raises(InputError, match="no column 'tenant'"):
        list(store.inventory())


@pytest.mark.parametrize(
    "value",
    ["support-bot' OR '1'='1", "support-bot'; DROP TABLE x; --", "%", "support-bot\\", "*"],
)
def test_sql_metacharacters_in_a_value_are_a_value(backend: PostgresBackend, value: str) -> None:
    seeded = backend.seed(4)
    table = seeded.names["table"]
    [own] = insert(backend.pg, table, value, ["the row whose system is literally the value"])
    before = rows(backend.pg, table, "system <> " + "'support-bot'")
    store = registry.open_record_store(seeded.url, {"where": {"system": value}})
    entries = list(store.inventory())
    assert [e.id for e in entries] == [own]
    result = store.purge(entries)
    assert result.deleted == [own]
    after = rows(backend.pg, table)
    assert len(after) == 4 + 5  # the selector's 4 support-bot rows and the 5 canaries stay
    assert [r for r in before if str(r[0]) != own] == [r for r in after if r[1] != "support-bot"]


def test_identifiers_with_quotes_and_semicolons_are_quoted(backend: PostgresBackend) -> None:
    schema, table = 'Mixed "Schema"', 'logs"; DROP TABLE x; --'
    with connect(backend.pg) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, system text)").format(
                sql.Identifier(schema, table)
            )
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (system)").format(sql.Identifier(schema, table)))
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES ('a', 'bot'), ('b', 'bot'), ('c', 'other')").format(
                sql.Identifier(schema, table)
            )
        )
    url = backend.url(quote(table, safe=""), schema=quote(schema, safe=""))
    store = registry.open_record_store(url, {"where": {"system": "bot"}})
    entries = list(store.inventory())
    assert sorted(e.id for e in entries) == ["a", "b"]
    assert sorted(store.purge(entries, batch_size=1).deleted) == ["a", "b"]
    with connect(backend.pg) as conn:
        left = conn.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(schema, table)))
        assert [r[0] for r in left] == ["c"]


def test_a_forged_identifier_is_refused_before_any_delete(backend: PostgresBackend) -> None:
    seeded = backend.seed(3)
    store = registry.open_record_store(seeded.url, seeded.selector)
    entries = list(store.inventory())
    for forged in ("1 OR 1=1", "1; DELETE FROM x", " 1", "1.0"):
        with pytest.raises(InputError, match="not a bigint primary key"):
            store.purge([*entries, RecordEntry(forged)])
    assert len(rows(backend.pg, seeded.names["table"])) == 8


def test_tables_without_a_single_column_primary_key_are_refused(backend: PostgresBackend) -> None:
    nopk, composite = unique("nopk"), unique("comp")
    with connect(backend.pg) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (system text)").format(sql.Identifier(nopk)))
        conn.execute(
            sql.SQL("CREATE TABLE {} (a int, b int, PRIMARY KEY (a, b))").format(
                sql.Identifier(composite)
            )
        )
    with pytest.raises(InputError, match="no primary key"):
        list(registry.open_record_store(backend.url(nopk), {"whole_table": True}).inventory())
    with pytest.raises(InputError, match="several columns"):
        list(registry.open_record_store(backend.url(composite), {"whole_table": True}).inventory())


def test_a_missing_table_is_not_found(backend: PostgresBackend) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        list(registry.open_record_store(backend.url("nosuch"), {"whole_table": True}).inventory())


def test_a_table_others_depend_on_is_not_dropped(backend: PostgresBackend) -> None:
    seeded = backend.seed(3, whole=True)
    table = seeded.names["table"]
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
                sql.Identifier(table + "_view"), sql.Identifier(table)
            )
        )
    store = registry.open_record_store(seeded.url, seeded.selector)
    with pytest.raises(ConflictError, match="depend"):
        store.purge(list(store.inventory()))
    assert len(rows(backend.pg, table)) == 3


def test_a_password_in_the_url_is_refused_and_never_echoed(backend: PostgresBackend) -> None:
    url = f"postgresql://me:hunter2-secret@127.0.0.1:{backend.pg.server.port}/records/public/t"
    with pytest.raises(InputError) as caught:
        registry.open_record_store(url, {"whole_table": True})
    assert "hunter2" not in str(caught.value) and "PGPASSWORD" in str(caught.value)


def test_a_wrong_password_is_permission_denied_without_the_password(
    backend: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = backend.seed(1)
    monkeypatch.setenv("PGPASSWORD", "wrong-password-xyzzy")
    with pytest.raises(PermissionDeniedError) as caught:
        list(registry.open_record_store(seeded.url, seeded.selector).inventory())
    assert "xyzzy" not in str(caught.value)


def _relation_file(pg: Postgres, table: str) -> Path:
    with connect(pg) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SELECT pg_relation_filepath(%s::regclass)", (table,)).fetchone()
    assert row is not None
    return pg.folder / "data" / str(row[0])


def _in_wal(pg: Postgres, text: str) -> bool:
    return any(text.encode() in p.read_bytes() for p in (pg.folder / "data" / "pg_wal").glob("0*"))


def test_deleted_rows_stay_in_pages_and_wal_as_the_findings_say(backend: PostgresBackend) -> None:
    """What the findings state, shown on the cluster's own files: after DELETE the rows' bytes
    are still in the table's file (dead tuples) and in the WAL; after VACUUM the dead-tuple
    count is 0, and the table's file and the WAL still hold the bytes."""
    seeded = backend.seed(20)
    table = seeded.names["table"]
    store = PostgresTable(seeded.url, seeded.selector)
    store.purge(list(store.inventory()))
    assert seeded.canary_text.encode() in _relation_file(backend.pg, table).read_bytes()
    assert _in_wal(backend.pg, seeded.canary_text)
    found = {f.setting: f for f in store.findings()}
    assert found["wal_level"].value == "replica" and found["wal_level"].keeps_deleted_data
    assert (
        found["archive_mode"].value == "off" and found["archive_mode"].keeps_deleted_data is False
    )
    assert found["dead tuples"].keeps_deleted_data
    deadline = time.monotonic() + 10
    while not (found["dead tuples"].value or "").startswith("20 "):
        assert time.monotonic() < deadline, found["dead tuples"]
        time.sleep(0.2)
        found = {f.setting: f for f in store.findings()}
    done = {f.setting: f for f in store.compact()}
    assert done["VACUUM"].value == "ran"
    assert (done["dead tuples"].value or "").startswith("0 ")
    assert done["VACUUM"].keeps_deleted_data
    assert seeded.canary_text.encode() in _relation_file(backend.pg, table).read_bytes()
    assert _in_wal(backend.pg, seeded.canary_text)


def test_a_replication_slot_is_reported(backend: PostgresBackend) -> None:
    seeded = backend.seed(1)
    slot = unique("slot")
    with connect(backend.pg) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s)", (slot,))
    try:
        found = registry.open_record_store(seeded.url, seeded.selector).findings()
        slots = [f for f in found if f.setting == "replication slot"]
        assert any(slot in (f.value or "") and f.keeps_deleted_data for f in slots)
        replication = [f for f in found if f.setting == "pg_stat_replication"]
        assert replication and replication[0].value == "0 connected"
    finally:
        with connect(backend.pg) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def test_dropping_a_whole_table_is_reported_by_compact(backend: PostgresBackend) -> None:
    seeded = backend.seed(2, whole=True)
    store = PostgresTable(seeded.url, seeded.selector)
    store.purge(list(store.inventory()))
    [finding] = store.compact()
    assert finding.setting == "DROP TABLE" and finding.value == "dropped"
    with psycopg.connect(
        host="127.0.0.1", port=backend.pg.server.port, dbname="records", user=backend.pg.user,
        password=backend.pg.password,
    ) as conn:  # fmt: skip
        assert conn.execute("SELECT to_regclass(%s)", (seeded.names["table"],)).fetchone() == (
            None,
        )


def test_a_row_written_into_a_batch_range_during_the_purge_stops_it(
    backend: PostgresBackend,
) -> None:
    """A writer racing the purge (here a trigger that fires when the first batch deletes, as a
    still-running system would): the row it writes lies inside a later batch's key range and in
    scope. That batch's DELETE returns a key the list does not name, so the batch is rolled back
    and the purge stops with the reason; the earlier batches stay deleted, the raced row, the rest
    of the selector and the canaries stay."""
    seeded = backend.seed(20)
    table = seeded.names["table"]
    before = backend.outside(seeded)
    with connect(backend.pg) as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE id = 12").format(sql.Identifier(table)))
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO {t} (id, system, body) VALUES (12, 'support-bot', 'raced') "
                "ON CONFLICT DO NOTHING; RETURN NULL; END $$"
            ).format(fn=sql.Identifier(table + "_race"), t=sql.Identifier(table))
        )
        conn.execute(
            sql.SQL("CREATE TRIGGER race AFTER DELETE ON {t} FOR EACH STATEMENT "
                    "EXECUTE FUNCTION {fn}()").format(
                t=sql.Identifier(table), fn=sql.Identifier(table + "_race")
            )
        )  # fmt: skip
    store = registry.open_record_store(seeded.url, seeded.selector)
    entries = list(store.inventory())
    assert "12" not in {e.id for e in entries} and len(entries) == 19
    result = store.purge(entries, batch_size=5)  # [1-5] [6-10] [11,13-16] [17-20]
    assert result.stopped is not None and "'11'..'16'" in result.stopped
    assert sorted(result.deleted, key=int) == [str(i) for i in range(1, 11)]
    assert [b.deleted for b in result.batches] == [5, 5]
    left = {str(r[0]) for r in rows(backend.pg, table, "system = 'support-bot'")}
    assert left == {str(i) for i in range(11, 21)}
    assert backend.outside(seeded) == before


def test_the_example_in_docs_records_md_runs(backend: PostgresBackend) -> None:
    """docs/records.md's Python example, run as written against a table of the session's cluster
    (only the URL is swapped)."""
    import re

    from tests.fixtures.process import ROOT

    text = (ROOT / "docs" / "records.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    seeded = backend.seed(3)
    example_url = "postgresql://127.0.0.1:5432/app/public/interactions"
    assert example_url in code and '{"where": {"system": "support-bot"}}' in code
    scope: dict[str, object] = {}
    exec(code.replace(example_url, seeded.url), scope)
    assert scope["summary"].count == 3  # type: ignore[attr-defined]
    assert scope["check"].clean  # type: ignore[attr-defined]
    assert any(f.setting == "VACUUM" for f in scope["done"])  # type: ignore[attr-defined]


def test_a_value_the_column_type_cannot_hold_is_bad_input(backend: PostgresBackend) -> None:
    seeded = backend.seed(2)
    store = registry.open_record_store(seeded.url, {"where": {"id": "abc"}})
    with pytest.raises(InputError, match="bigint"):
        list(store.inventory())
    by_id = registry.open_record_store(seeded.url, {"where": {"id": int(seeded.ids[1])}})
    assert [e.id for e in by_id.inventory()] == [seeded.ids[1]]


def test_a_role_without_delete_is_refused_and_nothing_is_deleted(
    backend: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user from the URL, the password from PGPASSWORD; a role that may read but not delete
    gets PermissionDeniedError on the first batch (rolled back), and its findings still come."""
    seeded = backend.seed(4)
    table = seeded.names["table"]
    role = unique("reader")
    with connect(backend.pg) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'reader-pw'").format(
            sql.Identifier(role)))  # fmt: skip
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.Identifier(table), sql.Identifier(role)))  # fmt: skip
    monkeypatch.setenv("PGPASSWORD", "reader-pw")
    url = seeded.url.replace("postgresql://", f"postgresql://{role}@")
    store = registry.open_record_store(url, seeded.selector)
    entries = list(store.inventory())
    assert len(entries) == 4
    with pytest.raises(PermissionDeniedError, match="permission denied"):
        store.purge(entries)
    assert len(rows(backend.pg, table)) == 4 + 5
    settings = {f.setting for f in store.findings()}
    assert {"wal_level", "archive_mode", "pg_stat_replication", "dead tuples"} <= settings


def _count(pg: Postgres, table: str) -> int:
    with connect(pg) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_a_partitioned_table_is_refused_before_any_delete(backend: PostgresBackend) -> None:
    """whole_table on a partitioned parent would list and DROP every partition, which another
    spec may name as its own table."""
    parent, part = unique("parted"), unique("part")
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, system text NOT NULL) "
                "PARTITION BY RANGE (id)"
            ).format(sql.Identifier(parent))
        )
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (0) TO (100)").format(
                sql.Identifier(part), sql.Identifier(parent)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (1, 'x'), (2, 'y')").format(sql.Identifier(part))
        )
    store = registry.open_record_store(backend.url(parent), {"whole_table": True})
    with pytest.raises(InputError, match="is partitioned"):
        list(store.inventory())
    with pytest.raises(InputError, match="is partitioned"):
        store.purge([RecordEntry("1"), RecordEntry("2")])
    assert _count(backend.pg, part) == 2


def test_a_table_with_inheritance_children_is_refused(backend: PostgresBackend) -> None:
    """A ``where`` delete on a parent reaches its inheritance children's rows."""
    seeded = backend.seed(2)
    table, child = seeded.names["table"], unique("child")
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} () INHERITS ({})").format(
                sql.Identifier(child), sql.Identifier(table)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (id, system, body) VALUES (100000, 'support-bot', 'c')").format(
                sql.Identifier(child)
            )
        )
    store = registry.open_record_store(seeded.url, seeded.selector)
    with pytest.raises(InputError, match="has inheritance children"):
        list(store.inventory())
    assert _count(backend.pg, child) == 1
    assert len(rows(backend.pg, table)) == 2 + 5 + 1  # ONLY-less count includes the child


def test_a_child_added_after_inventory_stops_the_drop(backend: PostgresBackend) -> None:
    seeded = backend.seed(2, whole=True)
    table, child = seeded.names["table"], unique("child")
    store = registry.open_record_store(seeded.url, seeded.selector)
    entries = list(store.inventory())
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} () INHERITS ({})").format(
                sql.Identifier(child), sql.Identifier(table)
            )
        )
    with pytest.raises(InputError, match="has inheritance children"):
        store.purge(entries)
    assert _count(backend.pg, table) == 2


U = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"


def _typed_table(pg: Postgres, column_type: str, values: list[str]) -> str:
    table = unique("typed")
    with connect(pg) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, owner {} NOT NULL)").format(
                sql.Identifier(table), sql.SQL(column_type)
            )
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (owner)").format(sql.Identifier(table)))
        for v in values:
            conn.execute(
                sql.SQL("INSERT INTO {} (owner) VALUES (%s)").format(sql.Identifier(table)), (v,)
            )
    return table


@pytest.mark.parametrize(
    ("column_type", "stored", "own", "other_spelling", "canonical"),
    [
        ("uuid", U, U, "{" + U + "}", U),
        ("uuid", U, U, U.upper(), U),
        ("date", "2025-01-01", "2025-01-01", "20250101", "2025-01-01"),
        ("numeric", "1.0", "1.0", "1", "1.0"),
    ],
)
def test_a_value_spelled_unlike_postgresql_is_refused_before_any_delete(
    backend: PostgresBackend,
    column_type: str,
    stored: str,
    own: str,
    other_spelling: str,
    canonical: str,
) -> None:
    """Two specs naming the same rows in two spellings pass the overlap check (their text
    differs); the second is refused at inventory naming PostgreSQL's spelling, and the first
    system's rows stay."""
    table = _typed_table(backend.pg, column_type, [stored, stored])
    url = backend.url(table)
    other = registry.open_record_store(url, {"where": {"owner": other_spelling}})
    with pytest.raises(InputError, match=f"'owner' value .* as '{canonical}'"):
        list(other.inventory())
    with pytest.raises(InputError, match="write the selector value that way"):
        other.purge([RecordEntry("1"), RecordEntry("2")])
    assert _count(backend.pg, table) == 2
    mine = registry.open_record_store(url, {"where": {"owner": own}})
    assert sorted(e.id for e in mine.inventory()) == ["1", "2"]


def test_session_settings_give_one_text_per_value(backend: PostgresBackend) -> None:
    """A timestamptz column under a server whose default TimeZone is not UTC: the selector
    written in UTC ISO form selects its row (the connector sets TimeZone, DateStyle, ...)."""
    table = _typed_table(backend.pg, "timestamptz", ["2025-01-01 00:00:00+00"])
    with connect(backend.pg) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET TimeZone = 'Asia/Kolkata'").format(
                sql.Identifier(backend.pg.database)
            )
        )
    try:
        store = registry.open_record_store(
            backend.url(table), {"where": {"owner": "2025-01-01 00:00:00+00"}}
        )
        assert [e.id for e in store.inventory()] == ["1"]
    finally:
        with connect(backend.pg) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RESET TimeZone").format(
                    sql.Identifier(backend.pg.database)
                )
            )
