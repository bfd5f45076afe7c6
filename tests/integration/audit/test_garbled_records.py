"""Records garbled in the database (not JSON, wrong shape, bad salt, no head): reported, never raised.

Someone with database access, the append-only triggers dropped, can leave any
column unreadable. ``verify`` must still answer "broken at record N" with a
reason, and the reading calls must fail with an error naming the record,
on SQLite and on PostgreSQL, in both record formats (a format-1 record's JSON
document, a format-2 record's ``Decision`` bytes and digest list).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fairpath.api.server import Running
from fairpath.audit import DecisionFilter, DecisionStore, NewOutcome
from fairpath.audit.codec import JSON_DOCUMENT, WIRE_RECORD, entry_digest
from fairpath.errors import CorruptRecordError
from fairpath.recording import DecisionRecorder
from fairpath.wire import entry_digest as wire_digest
from fairpath_client import FairpathClient, ServerError
from structlog.testing import capture_logs

from tests.integration.audit.conftest import GUIDE, SUBSTANCE, Raw, drop_append_only_triggers, rehash_decision


@pytest.fixture(params=[JSON_DOCUMENT, WIRE_RECORD], ids=["format1", "format2"])
def record_format(request: pytest.FixtureRequest) -> int:
    """Every test here runs on records of both formats, but those named for one format's columns."""
    return int(request.param)


@pytest.fixture(name="trail")
def _trail(recorder: DecisionRecorder, store: DecisionStore, raw: Raw, store_url: str) -> list[str]:
    """Decisions 1, 2 and 4 (equality group G1), outcome 3 of decision 1; triggers off."""
    ids = [recorder.evaluate(GUIDE, SUBSTANCE, equality_group="G1").decision_id for _ in range(2)]
    store.append_outcome(NewOutcome(ids[0], "OTHER", "reviewer"))
    ids.append(recorder.evaluate(GUIDE, SUBSTANCE, equality_group="G1").decision_id)
    drop_append_only_triggers(raw, store_url)
    return ids


def _rehash_newest(raw: Raw, column: str, value: object) -> None:
    """Set ``column`` of decision 4 (the newest record), then recompute its hash and the head's."""
    forged = rehash_decision(raw, 4, column, value)
    raw("UPDATE chain_head SET hash = ? WHERE id = 1", [forged])


def _document(raw: Raw) -> str:
    return str(raw("SELECT document FROM decisions WHERE sequence = 4", ())[0][0])


def _record(raw: Raw, sequence: int = 4) -> bytes:
    return bytes(raw("SELECT record FROM decisions WHERE sequence = ?", [sequence])[0][0])


def _first_digest(raw: Raw, record_format: int) -> str:
    """The digest of decision 4's first trace entry, in either format."""
    if record_format == JSON_DOCUMENT:
        return _document(raw).split('"trace":["', 1)[1][:32]
    return str(raw("SELECT trace FROM decisions WHERE sequence = 4", ())[0][0])[:32]


@pytest.mark.parametrize(
    ("record_format", "column", "garble"),
    [
        (JSON_DOCUMENT, "fired", "fired || 'x'"), (JSON_DOCUMENT, "document", "document || 'x'"),
        (JSON_DOCUMENT, "document", "'[[[' || document"), (WIRE_RECORD, "fired", "fired || 'x'"),
        (WIRE_RECORD, "trace", "'x' || trace"),
    ],
)
def test_an_unreadable_json_column_is_a_broken_link_not_a_crash(
    store: DecisionStore, trail: list[str], raw: Raw, column: str, garble: str
) -> None:
    """The reported case: `fired` (or `document`) made invalid JSON breaks record 1; verify never raises."""
    raw(f"UPDATE decisions SET {column} = {garble} WHERE sequence = 1", ())  # noqa: S608

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 1, 1)
    assert "hash does not match" in report.problem


@pytest.mark.parametrize("record_format", [WIRE_RECORD])
@pytest.mark.parametrize("garble", [b"\xff\xff", b"\x00", b"\x0a\x05ab"], ids=["truncated", "field-0", "short"])
def test_record_bytes_that_are_not_a_decision_are_a_broken_link_not_a_crash(
    store: DecisionStore, trail: list[str], raw: Raw, garble: bytes
) -> None:
    """A format-2 record's bytes garbled (not a ``Decision`` message) break record 1; verify never raises."""
    raw("UPDATE decisions SET record = ? WHERE sequence = 1", [_record(raw, 1) + garble])

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 1, 1)
    assert "hash does not match" in report.problem


@pytest.mark.parametrize(
    ("record_format", "column", "value", "problem"),
    [
        (JSON_DOCUMENT, "document", "not json", "record 4: its document cannot be read"),
        (JSON_DOCUMENT, "document", "[1, 2]", "record 4: its document cannot be read"),
        (JSON_DOCUMENT, "document", '{"trace": 7}', "record 4: its document cannot be read"),
        (JSON_DOCUMENT, "document", "[" * 100_000, "record 4: its document cannot be read"),
        (JSON_DOCUMENT, "fired", "not json", "its fired column cannot be read"),
        (WIRE_RECORD, "record", b"\xff\xff\xff", "record 4: its record cannot be read"),
        (WIRE_RECORD, "record", b"\x18\x07", "record 4: its record cannot be read"),  # status 7: no such status
        (WIRE_RECORD, "record", "text, not bytes", "record 4: its record cannot be read"),
        (WIRE_RECORD, "trace", "not-a-digest", "record 4: trace entry not-a-digest is missing"),
        (WIRE_RECORD, "fired", "not json", "its fired column cannot be read"),
    ],
)
def test_an_unreadable_column_rehashed_with_the_head_is_reported_by_name(
    store: DecisionStore, trail: list[str], raw: Raw, *, column: str, value: str, problem: str
) -> None:
    """A garbled column whose hash was recomputed (every hash checks out) is still a broken record 4."""
    _rehash_newest(raw, column, value)

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 4, 4)
    assert problem in report.problem


@pytest.mark.parametrize("record_format", [JSON_DOCUMENT])
def test_a_trace_entry_that_is_not_json_breaks_the_record_referring_to_it(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """An entry stored under its own digest but not JSON: the decision pointing at it is reported, not raised."""
    digest = entry_digest("not json")
    raw("INSERT INTO trace_entries (digest, entry) VALUES (?, 'not json')", [digest])
    document = _document(raw)
    first = document.split('"trace":["', 1)[1][:32]
    _rehash_newest(raw, "document", document.replace(first, digest, 1))

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 4)
    assert f"trace entry {digest} cannot be read" in report.problem


@pytest.mark.parametrize("record_format", [WIRE_RECORD])
def test_trace_entry_bytes_that_are_not_an_entry_break_the_record_referring_to_them(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Bytes stored under their own digest but not a ``TraceEntry``: the decision using them is reported."""
    body = b"\xff\xff"
    digest = wire_digest(body)
    raw("INSERT INTO trace_entries (digest, entry, body) VALUES (?, '', ?)", [digest, body])
    trace = str(raw("SELECT trace FROM decisions WHERE sequence = 4", ())[0][0])
    _rehash_newest(raw, "trace", digest + trace[32:])

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 4)
    assert f"trace entry {digest} cannot be read" in report.problem


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # PostgreSQL's bytea holds only bytes
@pytest.mark.parametrize("record_format", [WIRE_RECORD])
@pytest.mark.parametrize("body", ["'text, not bytes'", "-1", "9223372036854775807"], ids=["text", "negative", "huge"])
def test_a_trace_entry_body_that_is_not_bytes_is_reported_not_raised(
    store: DecisionStore, trail: list[str], raw: Raw, body: str
) -> None:
    """Text or a number put in an entry's bytes column (SQLite keeps any type): reported, never raised."""
    digest = _first_digest(raw, WIRE_RECORD)
    raw(f"UPDATE trace_entries SET body = {body} WHERE digest = ?", [digest])  # noqa: S608

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 1)
    assert f"trace entry {digest} cannot be read" in report.problem
    with pytest.raises(CorruptRecordError, match=r"^a trace entry of records"):
        store.get_decision(trail[0])


def test_a_salt_that_is_not_hex_breaks_its_record(store: DecisionStore, trail: list[str], raw: Raw) -> None:
    """A side row's salt is outside the hashed columns: garbled, it fails its commitment instead of raising."""
    raw("UPDATE decision_equality SET salt = 'not hex' WHERE decision_id = ?", [trail[1]])

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 2)
    assert report.problem == "the equality group of record 2 does not match the commitment in the record"


def test_a_missing_chain_head_is_reported_after_the_records_it_would_close(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """Without its head row every record is still checked, then the head is what breaks; chain_head() says so."""
    raw("DELETE FROM chain_head", ())

    report = store.verify_chain()

    assert (report.intact, report.records_checked, report.first_broken_sequence) == (False, 4, 5)
    assert report.problem == "the chain head cannot be read"
    with pytest.raises(CorruptRecordError, match="the chain head cannot be read"):
        store.chain_head()


def test_reading_a_garbled_record_is_a_store_error_naming_it(
    store: DecisionStore, trail: list[str], raw: Raw, record_format: int
) -> None:
    """show, list, summaries and replay's sensitive facts fail with a CorruptRecordError naming the record."""
    if record_format == JSON_DOCUMENT:
        raw("UPDATE decisions SET document = document || 'x' WHERE sequence = 2", ())
    else:
        raw("UPDATE decisions SET record = ? WHERE sequence = 2", [_record(raw, 2) + b"\xff"])
    raw("UPDATE decisions SET facts = facts || 'x' WHERE sequence = 2", ())
    raw("UPDATE decision_sensitive_facts SET facts = 'x' WHERE decision_id = ?", [trail[1]])

    error = "JSONDecodeError" if record_format == JSON_DOCUMENT else "DecodeError"
    with pytest.raises(CorruptRecordError, match=rf"^record 2 cannot be read \({error}\)"):
        store.get_decision(trail[1])
    with pytest.raises(CorruptRecordError, match=r"^record 2 cannot be read"):
        store.list_decisions(DecisionFilter(), limit=10)
    with pytest.raises(CorruptRecordError, match=r"^record 2 cannot be read"):
        list(store.iter_summaries(DecisionFilter()))
    with pytest.raises(CorruptRecordError, match=f"^the sensitive facts of decision {trail[1]} cannot be read"):
        store.sensitive_facts([trail[1]])
    assert store.get_decision(trail[0]).sequence == 1  # the other records still read


def test_reading_a_record_whose_trace_entry_was_deleted_is_a_corrupt_record(
    store: DecisionStore, trail: list[str], raw: Raw, record_format: int
) -> None:
    """A deleted trace entry makes every record using it unreadable: CorruptRecordError (DATA_LOSS), not INTERNAL."""
    digest = _first_digest(raw, record_format)
    raw("DELETE FROM trace_entries WHERE digest = ?", [digest])

    with pytest.raises(CorruptRecordError, match=f"trace entries missing from the store: {digest}"):
        store.get_decision(trail[2])
    assert store.verify_chain().first_broken_sequence == 1  # the first record using it


def test_a_garbled_record_reaches_the_client_as_data_loss_naming_it_and_verify_as_broken(
    served: Running, trail: list[str], raw: Raw, record_format: int
) -> None:
    """Over gRPC: show, list and export of the record fail as DATA_LOSS naming it, logged; verify says broken."""
    if record_format == JSON_DOCUMENT:
        raw("UPDATE decisions SET fired = fired || 'x', document = document || 'x' WHERE sequence = 1", ())
    else:
        raw("UPDATE decisions SET fired = fired || 'x', record = ? WHERE sequence = 1", [_record(raw, 1) + b"\xff"])
    failures: list[ServerError] = []
    with FairpathClient(f"127.0.0.1:{served.port}") as client, capture_logs() as logged:
        calls: list[Callable[[], object]] = [
            lambda: client.get_decision(trail[0]),  # show
            client.list_decisions,  # list
            lambda: list(client.export_decisions()),  # export
        ]
        for call in calls:
            with pytest.raises(ServerError) as raised:
                call()
            failures.append(raised.value)
        report = client.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 1)
    assert [(f.code, f.reason) for f in failures] == [("DATA_LOSS", "CORRUPT_RECORD")] * 3
    error = "JSONDecodeError" if record_format == JSON_DOCUMENT else "DecodeError"
    assert all(f.message.startswith(f"record 1 cannot be read ({error})") for f in failures)
    alarms = [e for e in logged if e["event"] == "corrupt_record"]
    assert [e["log_level"] for e in alarms] == ["error"] * 3
    assert not [e for e in logged if e["event"] == "internal_error"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_bytes_that_are_not_utf8_in_sqlite_are_a_broken_record_not_an_unavailable_store(
    store: DecisionStore, trail: list[str], raw: Raw
) -> None:
    """SQLite keeps any bytes in a TEXT column (PostgreSQL refuses them): verify reports record 2 broken.

    Decoding them used to raise "store unavailable", quoting the column's text (facts) in the message.
    """
    raw("UPDATE decisions SET facts = CAST(X'7BFF7D' AS TEXT) WHERE sequence = 2", ())

    report = store.verify_chain()

    assert (report.intact, report.first_broken_sequence) == (False, 2)
    assert "hash does not match" in report.problem
    with pytest.raises(CorruptRecordError, match=r"^record 2 cannot be read"):
        store.get_decision(trail[1])
