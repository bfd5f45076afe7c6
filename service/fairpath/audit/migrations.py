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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fairpath.audit.chain import GENESIS
from fairpath.audit.sessions import Session
from fairpath.errors import StoreError

SQLITE = "sqlite"
POSTGRES = "postgresql"

_TYPES = {
    # The sequence is assigned by fairpath, never by the database; SQLite's INTEGER PRIMARY KEY is its rowid.
    # WITHOUT ROWID keeps small-keyed tables in one b-tree (half the pages written per insert).
    SQLITE: {"seq_pk": "INTEGER PRIMARY KEY", "int": "INTEGER", "without_rowid": " WITHOUT ROWID"},
    POSTGRES: {"seq_pk": "BIGINT PRIMARY KEY", "int": "BIGINT", "without_rowid": ""},
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

#: Every step, in version order.
MIGRATIONS: tuple[Migration, ...] = (TRAIL,)


def migrate(session: Session, dialect: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the steps the database lacks, in order, in one transaction; return the schema version.

    Raises:
        StoreError: The database's schema is newer than ``migrations`` know.
        StoreUnavailableError: The database cannot be reached or written.

    """
    latest = max((m.version for m in migrations), default=0)
    session.begin_migration()
    try:
        session.query(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied = {int(row[0]) for row in session.query("SELECT version FROM schema_migrations")}
        if applied and max(applied) > latest:
            raise StoreError(
                f"the decision store's schema is version {max(applied)}, newer than this fairpath "
                f"knows ({latest}): upgrade fairpath before using this store"
            )
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in applied:
                continue
            for sql in migration.statements(dialect):
                session.query(sql)
            session.query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return max(applied | {m.version for m in migrations})
