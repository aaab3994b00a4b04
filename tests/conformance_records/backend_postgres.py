"""postgresql:// in the record conformance suite: a fresh table per location on the session's
private cluster; canaries are another system's rows in the same table and a second table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.backend_modules import BackendSpec
from tests.conformance_records import RecordBackend, Seeded, unique
from tests.fixtures.postgres import Postgres

SYSTEM = "support-bot"


def connect(pg: Postgres) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1", port=pg.server.port, dbname=pg.database, user=pg.user,
        password=pg.password, autocommit=True,
    )  # fmt: skip


def make_table(pg: Postgres, table: str, *, schema: str = "public") -> None:
    with connect(pg) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, system text NOT NULL, "
                "session text, body text NOT NULL)"
            ).format(sql.Identifier(schema, table))
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (system)").format(sql.Identifier(schema, table)))


def insert(
    pg: Postgres, table: str, system: str, bodies: list[str], schema: str = "public"
) -> list[str]:
    with connect(pg) as conn:
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {} (system, session, body) SELECT %s, 's' || n, b "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS u(b, n) RETURNING id::text"
            ).format(sql.Identifier(schema, table)),
            (system, bodies),
        )
        return [str(r[0]) for r in cur.fetchall()]


def rows(pg: Postgres, table: str, condition: str = "TRUE") -> list[tuple[Any, ...]]:
    with connect(pg) as conn:
        return conn.execute(
            sql.SQL("SELECT id, system, body FROM {} WHERE " + condition + " ORDER BY id").format(
                sql.Identifier("public", table)
            )
        ).fetchall()


class PostgresBackend(RecordBackend):
    name = "postgresql"

    def __init__(self, pg: Postgres) -> None:
        self.pg = pg

    def url(self, table: str, schema: str = "public") -> str:
        return f"postgresql://127.0.0.1:{self.pg.server.port}/{self.pg.database}/{schema}/{table}"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        table, other = unique("logs"), unique("other")
        canary = unique("CANARY-")
        make_table(self.pg, table)
        make_table(self.pg, other)
        ids = insert(self.pg, table, SYSTEM, [f"{canary} question {i}" for i in range(n)])
        foreign: list[str] = []
        if not whole:
            foreign = insert(self.pg, table, "support-bot-v2", [f"v2 {i}" for i in range(5)])
        insert(self.pg, other, SYSTEM, [f"other table {i}" for i in range(5)])
        selector = {"whole_table": True} if whole else {"where": {"system": SYSTEM}}
        names = {"table": table, "other": other}
        return Seeded(self.url(table), selector, ids, foreign, canary, names)

    def add_in_scope(self, seeded: Seeded) -> str:
        return insert(self.pg, seeded.names["table"], SYSTEM, ["written late"])[0]

    def outside(self, seeded: Seeded) -> object:
        table, other = seeded.names["table"], seeded.names["other"]
        mine = (
            []
            if seeded.selector == {"whole_table": True}
            else rows(self.pg, table, "system <> 'support-bot'")
        )
        return (mine, rows(self.pg, other))


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return PostgresBackend(fixtures["postgres_env"])


BACKENDS = [BackendSpec("postgresql", ("postgres_env",), _factory)]
