"""Versioned schema migrations, applied in order when a store is opened.

The ``schema_migrations`` table lists the steps applied (version, name,
time). Opening a store runs, in ONE transaction that no other process can run
beside, every step whose version is not listed yet, in version order; a
database already up to date is left alone, so opening is idempotent and two
servers starting together migrate once. A database whose schema is newer than
this fairpath knows is refused rather than written with an old layout.

Steps are append-only like the trail: never edit a released step, add the
next number. Each step's statements are written once with two placeholders
for the type names SQLite and PostgreSQL spell differently.

Schema (version 1), one hash chain over ``decisions`` and ``outcomes``:

* ``chain_head``: one row, the last sequence and hash (the append lock in PostgreSQL);
* ``decisions``: one row per decision, the indexed columns plus the JSON
  document, facts and the chain link;
* ``decision_rules``: (rule_id, sequence) per FIRED rule, for the rule filter;
* ``trace_entries``: each distinct trace entry once, under its digest
  (:mod:`fairpath.audit.codec`);
* ``outcomes``: what people finally did, each its own chained record;
* ``decision_equality`` and ``decision_sensitive_facts``: kept apart from the
  record (see :mod:`fairpath.audit.chain` on their commitments);
* triggers refusing UPDATE and DELETE of chained rows: the API appends only,
  and anyone who drops the triggers to edit a row still breaks the chain.

Version 2 scopes request ids to their caller: a ``request_digest`` column
(:mod:`fairpath.audit.requests`; "" in older records, whose repeats are refused)
and a unique ``(caller, request_id)`` index instead of one over ``request_id``.

Version 3 guards the chain head and the tables themselves: ``chain_head``
only moves forward (a trigger refuses an update that does not raise its
sequence, and any delete), and in PostgreSQL every chained table and
``chain_head`` refuses ``TRUNCATE`` (SQLite has no TRUNCATE; its unqualified
DELETE fires the DELETE triggers). So a database role holding only INSERT,
SELECT and UPDATE on ``chain_head`` (what the service needs) cannot empty or
rewind the trail; only the tables' owner, by dropping triggers, can.

Version 4 gives every filter an index that yields its matches in sequence
order (the order pages and streams read in): ``(policy, sequence)``,
``(version, sequence)``, ``(status, sequence)``, and on PostgreSQL the
subject references and the evaluation time with the sequence as their last
key (SQLite's indexes end with the rowid, which is the sequence, already);
and ``decision_rules (sequence, rule_id)`` for verify, which reads the rule
rows of a range of sequences. See :class:`fairpath.audit.queries.Selection`.

Version 5 keeps new decisions in record format 2 (:mod:`fairpath.audit.codec`): a ``format``
column (1 for every record before), the ``record`` and ``trace`` columns of format 2, and
``trace_entries.body`` for its entries' bytes. Nothing already written changes: records of format 1
stay as they are, read and verified as before.

Migrations need the owner's privileges. A store whose schema is already
current is opened without any (a read-only version check comes first), so the
service can run as a role that may not change the schema, with
``fairpath store migrate`` run as the owner on upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fairpath.audit.chain import GENESIS
from fairpath.audit.sessions import Session
from fairpath.errors import StoreError, StoreUnavailableError

SQLITE = "sqlite"
POSTGRES = "postgresql"

_TYPES = {
    # The sequence is assigned by fairpath, never by the database; SQLite's INTEGER PRIMARY KEY is its rowid.
    # WITHOUT ROWID keeps small-keyed tables in one b-tree (half the pages written per insert).
    SQLITE: {"seq_pk": "INTEGER PRIMARY KEY", "int": "INTEGER", "without_rowid": " WITHOUT ROWID", "bytes": "BLOB"},
    POSTGRES: {"seq_pk": "BIGINT PRIMARY KEY", "int": "BIGINT", "without_rowid": "", "bytes": "BYTEA"},
}


@dataclass(frozen=True)
class Migration:
    """One numbered schema step: its statements per dialect."""

    version: int
    name: str
    common: tuple[str, ...]
    sqlite: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()

    def statements(self, dialect: str) -> tuple[str, ...]:
        """Return the statements to run on ``dialect``, type names filled in."""
        extra = self.sqlite if dialect == SQLITE else self.postgresql
        return tuple(sql.format(**_TYPES[dialect]) for sql in (*self.common, *extra))


_CHAINED = ("decisions", "outcomes", "decision_rules", "trace_entries")

TRAIL = Migration(
    1,
    "decision trail",
    common=(
        """CREATE TABLE chain_head (
            id {int} PRIMARY KEY CHECK (id = 1),
            sequence {int} NOT NULL,
            hash TEXT NOT NULL
        )""",
        f"INSERT INTO chain_head (id, sequence, hash) VALUES (1, 0, '{GENESIS}')",
        """CREATE TABLE decisions (
            sequence {seq_pk},
            decision_id TEXT NOT NULL UNIQUE,
            request_id TEXT NOT NULL,
            caller TEXT NOT NULL,
            evaluated_us {int} NOT NULL,
            policy TEXT NOT NULL,
            version TEXT NOT NULL,
            digest TEXT NOT NULL,
            status TEXT NOT NULL,
            pathway TEXT NOT NULL,
            individual_directed {int} NOT NULL,
            incident_ref TEXT NOT NULL,
            staff_ref TEXT NOT NULL,
            action_ref TEXT NOT NULL,
            duration_us {int} NOT NULL,
            fired TEXT NOT NULL,
            masked_facts TEXT NOT NULL,
            facts TEXT NOT NULL,
            document TEXT NOT NULL,
            equality_commitment TEXT NOT NULL,
            sensitive_commitment TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        # A repeated request id returns the first decision; the index is the last line of defence.
        "CREATE UNIQUE INDEX decisions_request_id ON decisions (request_id) WHERE request_id <> ''",
        "CREATE INDEX decisions_evaluated ON decisions (evaluated_us)",
        "CREATE INDEX decisions_policy ON decisions (policy, version, sequence)",
        "CREATE INDEX decisions_pathway ON decisions (pathway, sequence)",
        "CREATE INDEX decisions_incident ON decisions (incident_ref) WHERE incident_ref <> ''",
        "CREATE INDEX decisions_staff ON decisions (staff_ref) WHERE staff_ref <> ''",
        "CREATE INDEX decisions_action ON decisions (action_ref) WHERE action_ref <> ''",
        """CREATE TABLE decision_rules (
            rule_id TEXT NOT NULL,
            sequence {int} NOT NULL REFERENCES decisions (sequence),
            PRIMARY KEY (rule_id, sequence)
        ){without_rowid}""",
        """CREATE TABLE trace_entries (
            digest TEXT PRIMARY KEY,
            entry TEXT NOT NULL
        )""",
        """CREATE TABLE outcomes (
            sequence {seq_pk},
            decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
            action_taken TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            reason TEXT NOT NULL,
            recorded_us {int} NOT NULL,
            departs {int} NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX outcomes_decision ON outcomes (decision_id, sequence)",
        """CREATE TABLE decision_equality (
            decision_id TEXT PRIMARY KEY REFERENCES decisions (decision_id),
            equality_group TEXT NOT NULL,
            salt TEXT NOT NULL
        )""",
        """CREATE TABLE decision_sensitive_facts (
            decision_id TEXT PRIMARY KEY REFERENCES decisions (decision_id),
            facts TEXT NOT NULL,
            salt TEXT NOT NULL
        )""",
    ),
    sqlite=tuple(
        f"""CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} ON {table}
            BEGIN SELECT RAISE(ABORT, 'the decision trail is append-only'); END"""
        for table in _CHAINED
        for action in ("UPDATE", "DELETE")
    ),
    postgresql=(
        """CREATE FUNCTION fairpath_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the decision trail is append-only'; END $$""",
        *(
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION fairpath_append_only()"""
            for table in _CHAINED
        ),
    ),
)

REQUESTS_PER_CALLER = Migration(
    2,
    "request ids per caller",
    common=(
        "ALTER TABLE decisions ADD COLUMN request_digest TEXT NOT NULL DEFAULT ''",
        "DROP INDEX decisions_request_id",
        # A repeated request id returns the first decision *of that caller*; the index is the last line of defence.
        "CREATE UNIQUE INDEX decisions_caller_request_id ON decisions (caller, request_id) WHERE request_id <> ''",
    ),
)

_HEAD_MOVES_FORWARD = "the chain head only moves forward"

GUARDS = Migration(
    3,
    "trail guards",
    common=(),
    sqlite=(
        f"""CREATE TRIGGER chain_head_forward_only BEFORE UPDATE ON chain_head
            WHEN NEW.sequence <= OLD.sequence OR NEW.id <> OLD.id
            BEGIN SELECT RAISE(ABORT, '{_HEAD_MOVES_FORWARD}'); END""",
        """CREATE TRIGGER chain_head_append_only_delete BEFORE DELETE ON chain_head
            BEGIN SELECT RAISE(ABORT, 'the decision trail is append-only'); END""",
    ),
    postgresql=(
        f"""CREATE FUNCTION fairpath_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.sequence <= OLD.sequence OR NEW.id <> OLD.id THEN
                    RAISE EXCEPTION '{_HEAD_MOVES_FORWARD}';
                END IF;
                RETURN NEW;
            END $$""",
        """CREATE TRIGGER chain_head_forward_only BEFORE UPDATE ON chain_head
            FOR EACH ROW EXECUTE FUNCTION fairpath_forward_only()""",
        """CREATE TRIGGER chain_head_append_only BEFORE DELETE ON chain_head
            FOR EACH ROW EXECUTE FUNCTION fairpath_append_only()""",
        *(
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION fairpath_append_only()"""
            for table in (*_CHAINED, "chain_head")
        ),
    ),
)

# PostgreSQL's b-tree entries for one key are in heap order, not sequence order: these indexes carry the
# sequence explicitly. SQLite's already do (every index ends with the rowid, which is the sequence).
_BY_SEQUENCE = ("incident_ref", "staff_ref", "action_ref")

TRAIL_INDEXES = Migration(
    4,
    "trail indexes in sequence order",
    common=(
        "CREATE INDEX decisions_policy_sequence ON decisions (policy, sequence)",
        "CREATE INDEX decisions_version_sequence ON decisions (version, sequence)",
        "CREATE INDEX decisions_status_sequence ON decisions (status, sequence)",
        # Verify reads the rule rows of a range of sequences; the primary key starts with the rule.
        "CREATE INDEX decision_rules_sequence ON decision_rules (sequence, rule_id)",
    ),
    postgresql=(
        *(f"DROP INDEX decisions_{column.removesuffix('_ref')}" for column in _BY_SEQUENCE),
        *(
            f"CREATE INDEX decisions_{column.removesuffix('_ref')} ON decisions ({column}, sequence)"
            f" WHERE {column} <> ''"
            for column in _BY_SEQUENCE
        ),
        # Index-only MIN/MAX(sequence) of a time window (queries.window_bounds).
        "DROP INDEX decisions_evaluated",
        "CREATE INDEX decisions_evaluated ON decisions (evaluated_us, sequence)",
    ),
)

ONE_ENCODING = Migration(
    5,
    "records in the decision's own encoding",
    common=(
        # Adding a column with a constant default rewrites no row on either database.
        "ALTER TABLE decisions ADD COLUMN format {int} NOT NULL DEFAULT 1",
        "ALTER TABLE decisions ADD COLUMN record {bytes}",
        "ALTER TABLE decisions ADD COLUMN trace TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE trace_entries ADD COLUMN body {bytes}",
    ),
)

#: Every step, in version order.
MIGRATIONS: tuple[Migration, ...] = (TRAIL, REQUESTS_PER_CALLER, GUARDS, TRAIL_INDEXES, ONE_ENCODING)

# Whether schema_migrations exists yet, asked without writing anything (a read-only role may ask).
_HAS_MIGRATIONS_TABLE = {
    SQLITE: "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    POSTGRES: "SELECT COUNT(*) FROM (SELECT to_regclass('schema_migrations') AS t) found WHERE t IS NOT NULL",
}


def migrate(session: Session, dialect: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the steps the database lacks, in order, in one transaction; return the schema version.

    Raises:
        StoreError: The database's schema is newer than ``migrations`` know, or a step could not
            be applied (e.g. the role lacks the owner's privileges: the message says what to run).
        StoreUnavailableError: The database cannot be reached or written.

    """
    return apply_migrations(session, dialect, migrations)[0]


def applied_versions(session: Session, dialect: str) -> set[int]:
    """Return the versions recorded in ``schema_migrations`` (none for a new database), writing nothing."""
    if not int(session.query(_HAS_MIGRATIONS_TABLE[dialect])[0][0]):
        return set()
    return {int(row[0]) for row in session.query("SELECT version FROM schema_migrations")}


def apply_migrations(
    session: Session, dialect: str, migrations: Sequence[Migration] = MIGRATIONS
) -> tuple[int, list[Migration]]:
    """Like :func:`migrate`; also return the steps this call applied, in order (none when current).

    A database already at the latest version is only read: no transaction, lock or DDL, so a
    role without the right to change the schema opens it fine.
    """
    latest = max((m.version for m in migrations), default=0)
    applied = applied_versions(session, dialect)
    _refuse_newer(applied, latest)
    if {m.version for m in migrations} <= applied:
        return max(applied, default=0), []
    done: list[Migration] = []
    session.begin_migration()
    try:
        try:
            session.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            # Read again under the lock: another process may have migrated meanwhile.
            applied = {int(row[0]) for row in session.query("SELECT version FROM schema_migrations")}
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in applied or max(applied, default=0) > latest:
                    continue
                for sql in migration.statements(dialect):
                    session.query(sql)
                session.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, datetime.now(UTC).isoformat()),
                )
                done.append(migration)
        except StoreUnavailableError:
            raise
        except StoreError as error:
            if "3F000" in str(error):  # PostgreSQL: no schema selected: search_path names none that exists
                advice = ("the schema the URL's search_path names does not exist: create it first "
                          "(CREATE SCHEMA …, as the database's owner), then run `fairpath store migrate` again")
            else:
                advice = ("run `fairpath store migrate --store URL` as the database's owner, then start the "
                          "service again")
            raise StoreError(
                f"the decision store's schema is at version {max(applied, default=0)} and this fairpath "
                f"needs version {latest}, but migrating failed ({error}): {advice}"
            ) from None
        _refuse_newer(applied, latest)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return max(applied | {m.version for m in migrations}), done


def _refuse_newer(applied: set[int], latest: int) -> None:
    if applied and max(applied) > latest:
        raise StoreError(
            f"the decision store's schema is version {max(applied)}, newer than this fairpath "
            f"knows ({latest}): upgrade fairpath before using this store"
        )
