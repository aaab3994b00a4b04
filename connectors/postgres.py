"""PostgreSQL tables as a record store (psycopg 3): ``postgresql://[USER@]HOST:PORT/DB/SCHEMA/TABLE``.

Selector (docs/records.md): ``where: {column: value}``, equality on columns that lead a valid,
non-partial index (refused otherwise, naming the column), or ``whole_table: true``. The table
needs a single-column primary key of an integer, text, varchar or uuid type: the key is the
record's identifier.

Credentials follow libpq's conventions: the user from the URL (``postgresql://USER@HOST...``) or
``PGUSER``; the password from ``PGPASSWORD`` or the password file (``PGPASSFILE``,
``~/.pgpass``); TLS from ``PGSSLMODE``, ``PGSSLROOTCERT``, ... A password in the URL is refused.
Nothing here logs or raises with a password in it; a connection is made per operation.

Every identifier is composed with :mod:`psycopg.sql` and every value is a query parameter.
Purge deletes by primary-key ranges in short transactions: each ``DELETE ... WHERE pk BETWEEN lo
AND hi AND <selector> RETURNING pk`` must return only listed keys, or it is rolled back and the
purge stops there (``RecordPurgeResult.stopped`` says why; earlier batches stay deleted). A whole
table is dropped (``DROP TABLE``, no CASCADE) after checking, under an exclusive lock, that it
holds exactly the listed rows.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from sundown import errors, records

CAPABILITIES = frozenset(
    {
        records.RecordCapability.WHERE,
        records.RecordCapability.WHOLE,
        records.RecordCapability.BATCH_DELETE,
        records.RecordCapability.COMPACT,
    }
)
_INT_TYPES = {"smallint", "integer", "bigint"}
_TEXT_TYPES = {"text", "character varying", "uuid"}
_PAGE = 1000


def parse_url(url: str) -> records.Location:
    return records.POSTGRES_SHAPE.parse(url)


def _map_error(exc: Exception, what: str) -> errors.SundownError:
    """A psycopg error as Sundown's; the message is the server's (it never holds a password)."""
    if isinstance(exc, errors.SundownError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return errors.PermissionDeniedError(f"{what}: permission denied ({text})")
    if isinstance(
        exc, psycopg.errors.InvalidPassword | psycopg.errors.InvalidAuthorizationSpecification
    ):
        return errors.PermissionDeniedError(f"{what}: authentication refused ({text})")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
        return errors.NotFoundError(f"{what}: {text}")
    if isinstance(exc, psycopg.errors.DataError | psycopg.errors.UndefinedFunction):
        return errors.InputError(f"{what}: {text}")
    if isinstance(exc, psycopg.errors.DependentObjectsStillExist):
        return errors.ConflictError(f"{what}: other objects depend on the table ({text})")
    if isinstance(exc, psycopg.OperationalError):
        if "authentication" in text or "password" in text:
            return errors.PermissionDeniedError(f"{what}: authentication refused ({text})")
        return errors.TransientError(f"{what}: {text}")
    return errors.BackendError(f"{what}: {text}")


# settings that change a value's text output (timestamptz, date, interval, float, bytea)
_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, MDY'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
)


@dataclass(frozen=True)
class _Table:
    oid: int
    pk: str
    pk_type: str  # format_type of the primary key


class PostgresTable(records.ScopedRecords):
    """The rows of one table that a selector matches."""

    capabilities = CAPABILITIES
    noun = "row"

    def __init__(self, url: str, selector: Mapping[str, object] | None) -> None:
        super().__init__(
            parse_url(url),
            records.parse_selector(selector, whole_word="whole_table", where=True, where_of=url),
        )
        self.database, self.schema, self.table = self._loc.segments
        self._ident = sql.Identifier(self.schema, self.table)
        self._meta: _Table | None = None

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.table} in database {self.database}"

    # -- connection and table facts --------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
        params: dict[str, Any] = {
            "host": self._loc.host,
            "port": self._loc.port,
            "dbname": self.database,
            "application_name": "sundown",
            "autocommit": autocommit,
        }
        if self._loc.user:
            params["user"] = self._loc.user
        try:
            conn = psycopg.connect(**params)
        except psycopg.Error as exc:
            raise _map_error(exc, f"connect to {self._loc.host}:{self._loc.port}") from None
        try:
            with conn:
                for setting in _SESSION:  # one text output per value, whatever the server's
                    conn.execute(setting)
                if not autocommit:
                    conn.commit()
                yield conn
        except psycopg.Error as exc:
            raise _map_error(exc, self.where) from None

    def _table(self, conn: psycopg.Connection[Any]) -> _Table:
        if self._meta is not None:
            return self._meta
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            (self.schema, self.table),
        ).fetchone()
        if row is None:
            raise errors.NotFoundError(f"table {self.where} does not exist")
        oid = int(row[0])
        self._refuse_children(conn, oid)
        keys = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s AND i.indisprimary",
            (oid,),
        ).fetchall()
        if len(keys) != 1:
            why = "no primary key" if not keys else "a primary key of several columns"
            raise errors.InputError(
                f"table {self.where} has {why}: Sundown needs a single-column primary key to "
                "list and delete its rows exactly"
            )
        pk, pk_type = str(keys[0][0]), str(keys[0][1])
        if pk_type not in _INT_TYPES | _TEXT_TYPES:
            raise errors.InputError(
                f"table {self.where}: primary key {pk!r} is of type {pk_type}, not supported "
                f"(supported: {', '.join(sorted(_INT_TYPES | _TEXT_TYPES))})"
            )
        self._check_where(conn, oid)
        self._check_spelling(conn)
        self._meta = _Table(oid, pk, pk_type)
        return self._meta

    def _refuse_children(self, conn: psycopg.Connection[Any], oid: int) -> None:
        """A partitioned table or a table with inheritance children is refused: ``FROM table``
        reaches the children's rows and ``DROP TABLE`` drops every partition, which may be
        another system's own table (docs/decisions.md)."""
        row = conn.execute(
            "SELECT c.relkind = 'p', EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = c.oid) "
            "FROM pg_class c WHERE c.oid = %s",
            (oid,),
        ).fetchone()
        if row is not None and (row[0] or row[1]):
            what = "is partitioned" if row[0] else "has inheritance children"
            raise errors.InputError(
                f"table {self.where} {what}: its rows and its drop reach other tables; name "
                "each partition or child table as its own record location"
            )

    def _check_where(self, conn: psycopg.Connection[Any], oid: int) -> None:
        """Every selector column exists and leads a valid, non-partial, non-expression index."""
        for column, _ in self._selector.where:
            found = conn.execute(
                "SELECT attnum FROM pg_attribute WHERE attrelid = %s AND attname = %s "
                "AND attnum > 0 AND NOT attisdropped",
                (oid, column),
            ).fetchone()
            if found is None:
                raise errors.InputError(f"selector of {self.url}: table has no column {column!r}")
            indexed = conn.execute(
                "SELECT 1 FROM pg_index WHERE indrelid = %s AND indisvalid AND indpred IS NULL "
                "AND indexprs IS NULL AND indkey[0] = %s LIMIT 1",
                (oid, found[0]),
            ).fetchone()
            if indexed is None:
                raise errors.InputError(
                    f"selector of {self.url}: column {column!r} is not indexed (no valid index "
                    "starts with it): a selector may only use equality on indexed columns"
                )

    def _condition(self) -> sql.Composable:
        """The selector as SQL: ``"col" = %s AND ...`` with values as parameters (text, cast by
        the server to the column's type), or ``TRUE`` for a whole table."""
        if not self._selector.where:
            return sql.SQL("TRUE")
        # col = v uses the index (the server casts v); col::text = v keeps only the rows whose
        # own text is v exactly, so two values rendered apart select disjoint rows
        return sql.SQL(" AND ").join(
            sql.SQL('{c} = {p} AND {c}::text COLLATE "C" = {p}').format(
                c=sql.Identifier(col), p=sql.Placeholder()
            )
            for col, _ in self._selector.where
        )

    def _params(self) -> list[str]:
        out: list[str] = []
        for _, value in self._selector.where:
            out += [records.render_value(value)] * 2
        return out

    def _check_spelling(self, conn: psycopg.Connection[Any]) -> None:
        """Refuse a ``where`` value the server takes as equal to rows whose own text differs
        (``{a0ee...}`` for the uuid ``a0ee...``, ``20250101`` for a date): the selector would
        miss them, and the overlap check compares the text."""
        for col, value in self._selector.where:
            text = records.render_value(value)
            row = conn.execute(
                sql.SQL(
                    'SELECT {c}::text FROM {t} WHERE {c} = %s AND {c}::text COLLATE "C" <> %s '
                    "LIMIT 1"
                ).format(c=sql.Identifier(col), t=self._ident),
                (text, text),
            ).fetchone()
            if row is not None:
                raise errors.InputError(
                    f"selector of {self.where}: PostgreSQL writes the {col!r} value {text!r} "
                    f"as {str(row[0])!r}; write the selector value that way"
                )

    def _native(self, meta: _Table, ident: str) -> object:
        """A listed identifier as the primary key's Python value; refused when it cannot be one
        (a plan read back is untrusted)."""
        try:
            if meta.pk_type in _INT_TYPES:
                if ident.strip() != ident or not ident.lstrip("-").isdigit():
                    raise ValueError(ident)
                return int(ident)
            if meta.pk_type == "uuid":
                return uuid.UUID(ident)
        except ValueError:
            raise errors.InputError(
                f"purge of {self.where}: {ident!r} is not a {meta.pk_type} primary key"
            ) from None
        return ident

    # -- inventory ------------------------------------------------------------------------------

    def _scan(self, conn: psycopg.Connection[Any], meta: _Table) -> Iterator[records.RecordEntry]:
        query = sql.SQL(
            # ORDER BY t.pk: the key's own order (a bare name would sort the text output column)
            "SELECT t.{pk}::text, pg_column_size(t.*) FROM {table} AS t WHERE {cond} "
            "ORDER BY t.{pk}"
        ).format(pk=sql.Identifier(meta.pk), table=self._ident, cond=self._condition())
        with conn.cursor(name="sundown_inventory") as cur:
            cur.itersize = _PAGE
            cur.execute(query, self._params())
            for ident, size in cur:
                yield records.RecordEntry(str(ident), int(size or 0))

    def inventory(self) -> Iterator[records.RecordEntry]:
        with self._connect() as conn:
            meta = self._table(conn)
            yield from self._scan(conn, meta)

    # -- purge ----------------------------------------------------------------------------------

    def purge(
        self, entries: Sequence[records.RecordEntry], *, batch_size: int = 500
    ) -> records.RecordPurgeResult:
        listed = self.checked_input(entries, batch_size)
        result = records.RecordPurgeResult()
        with self._connect() as conn:
            if self._selector.whole and not self._exists(conn):
                result.absent.extend(e.id for e in listed)  # dropped by an earlier run
                return result
            meta = self._table(conn)
            natives = {e.id: self._native(meta, e.id) for e in listed}
            current = [e.id for e in self._scan(conn, meta)]  # in the server's key order
            conn.commit()
            self._precheck(conn, meta, natives, current, result)
            if self._selector.whole:
                self._drop(conn, meta, current, result)
                return result
            for start in range(0, len(current), batch_size):
                if not self._delete_range(conn, meta, current[start : start + batch_size], result):
                    break
        return result

    def _precheck(
        self,
        conn: psycopg.Connection[Any],
        meta: _Table,
        natives: dict[str, object],
        current: list[str],
        result: records.RecordPurgeResult,
    ) -> None:
        """Stop before deleting anything when the selector matches rows the list does not name,
        or a listed row now lies outside the selector. Listed rows that no longer exist are
        absent (already deleted)."""
        self.refuse_unlisted(current, natives)
        in_scope = set(current)
        missing = [natives[i] for i in natives if i not in in_scope]
        if missing:
            rows = conn.execute(
                sql.SQL("SELECT {pk}::text FROM {table} WHERE {pk} = ANY(%s)").format(
                    pk=sql.Identifier(meta.pk), table=self._ident
                ),
                (missing,),
            ).fetchall()
            conn.commit()
            self.refuse_outside([str(r[0]) for r in rows])
            result.absent.extend(sorted(i for i in natives if i not in in_scope))

    def _delete_range(
        self,
        conn: psycopg.Connection[Any],
        meta: _Table,
        batch: list[str],
        result: records.RecordPurgeResult,
    ) -> bool:
        """One batch in its own transaction; False when it was rolled back (result.stopped)."""
        lo, hi = self._native(meta, batch[0]), self._native(meta, batch[-1])
        query = sql.SQL(
            "DELETE FROM {table} WHERE {pk} >= %s AND {pk} <= %s AND {cond} RETURNING {pk}::text"
        ).format(table=self._ident, pk=sql.Identifier(meta.pk), cond=self._condition())
        wanted = set(batch)
        with conn.transaction():
            returned = [str(r[0]) for r in conn.execute(query, [lo, hi, *self._params()])]
            extra = sorted(set(returned) - wanted)
            if extra:
                result.stopped = (
                    f"the range {batch[0]!r}..{batch[-1]!r} held {len(extra)} row(s) in scope "
                    f"that the list does not name (e.g. {extra[:3]}), written during the purge: "
                    f"that batch was rolled back and the purge stopped after "
                    f"{len(result.deleted)} row(s)"
                )
                raise psycopg.Rollback()  # leaves the block, rolled back
        if result.stopped:
            return False
        deleted = set(returned)
        result.deleted.extend(i for i in batch if i in deleted)
        not_deleted = [i for i in batch if i not in deleted]
        if not_deleted:  # changed since the precheck: moved out of scope, or deleted by another
            still = {
                str(r[0])
                for r in conn.execute(
                    sql.SQL("SELECT {pk}::text FROM {table} WHERE {pk} = ANY(%s)").format(
                        pk=sql.Identifier(meta.pk), table=self._ident
                    ),
                    ([self._native(meta, i) for i in not_deleted],),
                )
            }
            conn.commit()
            for i in not_deleted:
                if i in still:
                    result.failed.append(
                        records.RecordFailure(i, "out_of_scope", "no longer matches the selector")
                    )
                else:
                    result.absent.append(i)
        result.batches.append(
            records.BatchResult(batch[0], batch[-1], len(batch), len(deleted), len(not_deleted))
        )
        return True

    def _drop(
        self,
        conn: psycopg.Connection[Any],
        meta: _Table,
        current: list[str],
        result: records.RecordPurgeResult,
    ) -> None:
        """DROP TABLE, after checking under an exclusive lock that it holds exactly the rows
        checked a moment ago (no CASCADE: a dependent view or foreign key stops it)."""
        with conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(self._ident))
            self._refuse_children(conn, meta.oid)
            rows = conn.execute(
                sql.SQL("SELECT {pk}::text FROM {table}").format(
                    pk=sql.Identifier(meta.pk), table=self._ident
                )
            ).fetchall()
            if sorted(str(r[0]) for r in rows) != sorted(current):
                raise errors.ConflictError(
                    f"purge of {self.where}: the table changed while it was being locked: "
                    "nothing dropped; make a new plan"
                )
            conn.execute(sql.SQL("DROP TABLE {}").format(self._ident))
        result.deleted.extend(current)
        result.dropped = True
        result.batches.append(
            records.BatchResult(current[0] if current else "", current[-1] if current else "",
                        len(current), len(current), 0)
        )  # fmt: skip
        self._meta = None

    # -- verify ---------------------------------------------------------------------------------

    def _exists(self, conn: psycopg.Connection[Any]) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                (self.schema, self.table),
            ).fetchone()
            is not None
        )

    def verify(self, entries: Sequence[records.RecordEntry]) -> records.RecordVerification:
        with self._connect() as conn:
            if not self._exists(conn):
                if self._selector.whole:
                    return records.RecordVerification(in_scope=None, gone=True)
                raise errors.NotFoundError(f"table {self.where} does not exist")
            self._meta = None
            meta = self._table(conn)
            count_q = sql.SQL("SELECT count(*) FROM {table} WHERE {cond}").format(
                table=self._ident, cond=self._condition()
            )
            row = conn.execute(count_q, self._params()).fetchone()
            in_scope = int(row[0]) if row else 0
            sample_q = sql.SQL(
                "SELECT t.{pk}::text FROM {table} AS t WHERE {cond} ORDER BY t.{pk} LIMIT 10"
            ).format(pk=sql.Identifier(meta.pk), table=self._ident, cond=self._condition())
            sample = tuple(str(r[0]) for r in conn.execute(sample_q, self._params()))
            present: list[str] = []
            ids = [self._native(meta, e.id) for e in entries]
            for start in range(0, len(ids), 10_000):
                present.extend(
                    str(r[0])
                    for r in conn.execute(
                        sql.SQL("SELECT {pk}::text FROM {table} WHERE {pk} = ANY(%s)").format(
                            pk=sql.Identifier(meta.pk), table=self._ident
                        ),
                        (ids[start : start + 10_000],),
                    )
                )
        return records.RecordVerification(in_scope, tuple(sorted(present)), False, sample)

    # -- what keeps deleted rows ------------------------------------------------------------------

    def findings(self) -> list[records.Finding]:
        out: list[records.Finding] = []
        with self._connect(autocommit=True) as conn:
            out.append(self._wal(conn))
            out.append(self._archive(conn))
            out.extend(self._replicas(conn))
            out.extend(self._slots(conn))
            if self._exists(conn):
                out.append(self._dead_tuples(conn))
        out.append(
            records.Finding(
                "backups",
                None,
                None,
                "base backups, dumps and file-system snapshots taken before the purge keep the "
                "rows; they are outside Sundown's reach",
                note="not visible to a database client",
            )
        )
        return out

    def _setting(self, conn: psycopg.Connection[Any], name: str) -> str | None:
        try:
            row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
        except psycopg.Error:
            return None
        return None if row is None or row[0] is None else str(row[0])

    def _wal(self, conn: psycopg.Connection[Any]) -> records.Finding:
        level = self._setting(conn, "wal_level")
        return records.Finding(
            "wal_level",
            level,
            True if level else None,
            "the write-ahead log written while the rows existed holds them (their inserts and "
            "updates) until its segments are recycled after later checkpoints",
            note=None if level else "wal_level could not be read",
        )

    def _archive(self, conn: psycopg.Connection[Any]) -> records.Finding:
        mode = self._setting(conn, "archive_mode")
        if mode is None:
            return records.Finding("archive_mode", None, None, "unknown whether WAL is archived",
                           note="archive_mode could not be read")  # fmt: skip
        if mode == "off":
            return records.Finding(
                "archive_mode", mode, False, "WAL is not archived: no point-in-time recovery copy"
            )
        target = self._setting(conn, "archive_library") or "archive_command"
        return records.Finding(
            "archive_mode",
            f"{mode} ({target})",
            True,
            "WAL is archived: the archive keeps the deleted rows and point-in-time recovery can "
            "restore them until the archive expires; it is outside Sundown's reach",
        )

    def _replicas(self, conn: psycopg.Connection[Any]) -> list[records.Finding]:
        try:
            rows = conn.execute(
                "SELECT coalesce(application_name, ''), coalesce(client_addr::text, 'local'), "
                "coalesce(state, ''), coalesce(sync_state, '') FROM pg_stat_replication"
            ).fetchall()
        except psycopg.Error as exc:
            return [records.Finding("pg_stat_replication", None, None,
                            "unknown whether streaming replicas exist",
                            note=str(exc).splitlines()[0])]  # fmt: skip
        if not rows:
            return [records.Finding("pg_stat_replication", "0 connected", False,
                            "no streaming replica was connected when this was read")]  # fmt: skip
        return [
            records.Finding(
                "replica",
                f"{name or '?'} at {addr} ({state}, {sync})",
                True,
                "a streaming replica replays the delete, but until it vacuums and recycles its "
                "own WAL it keeps the rows, and a lagging or stopped replica keeps them live",
            )
            for name, addr, state, sync in rows
        ]

    def _slots(self, conn: psycopg.Connection[Any]) -> list[records.Finding]:
        try:
            rows = conn.execute(
                "SELECT slot_name, slot_type FROM pg_replication_slots ORDER BY slot_name"
            ).fetchall()
        except psycopg.Error:
            return []
        return [
            records.Finding(
                "replication slot",
                f"{name} ({kind})",
                True,
                "a replication slot holds back WAL recycling, so the WAL holding the rows stays "
                "until the slot's consumer catches up or the slot is dropped",
            )
            for name, kind in rows
        ]

    def _dead_tuples(self, conn: psycopg.Connection[Any]) -> records.Finding:
        meta = self._table(conn)
        row = conn.execute(
            "SELECT n_dead_tup, last_vacuum, last_autovacuum FROM pg_stat_all_tables "
            "WHERE relid = %s",
            (meta.oid,),
        ).fetchone()
        dead = int(row[0]) if row and row[0] is not None else None
        vacuumed = row[1] or row[2] if row else None
        return records.Finding(
            "dead tuples",
            None if dead is None else f"{dead} (last vacuum {vacuumed or 'never'})",
            True,
            "deleted rows stay in the table's pages as dead tuples until VACUUM prunes them; even "
            "after VACUUM their bytes stay in the pages' free space until it is reused; VACUUM "
            "FULL rewrites the table into new files (the old files are unlinked, not "
            "overwritten)",
            note=None if dead is not None else "statistics not available",
        )

    # -- compaction ------------------------------------------------------------------------------

    def compact(self) -> list[records.Finding]:
        """VACUUM the table (plain: no exclusive lock) so dead tuples are pruned; for a dropped
        table, say that its files were unlinked."""
        with self._connect(autocommit=True) as conn:
            if not self._exists(conn):
                return [
                    records.Finding(
                        "DROP TABLE",
                        "dropped",
                        None,
                        "the table's files were unlinked at commit; their blocks stay on the "
                        "file system until overwritten",
                    )
                ]
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(self._ident))
            return [
                records.Finding(
                    "VACUUM",
                    "ran",
                    True,
                    "VACUUM pruned the dead tuples of the deleted rows, but their bytes stay in "
                    "the table's pages as free space until new rows overwrite them "
                    "(docs/records.md)",
                ),
                self._dead_tuples(conn),
            ]

    def close(self) -> None:
        """Nothing to release: a connection is made per operation."""


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> PostgresTable:
    return PostgresTable(url, selector)
