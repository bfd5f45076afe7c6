"""Request ids are the caller's own, and a repeat is answered only when it is the same request.

On both SQLite and PostgreSQL: through the recorder, and through a real server with two token callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from fairpath.api.auth import hash_token
from fairpath.audit import DecisionFilter, DecisionStore, NewDecision, open_store
from fairpath.audit.codec import JSON_DOCUMENT
from fairpath.audit.migrations import MIGRATIONS, POSTGRES, SQLITE, migrate
from fairpath.audit.postgres import PostgresSession
from fairpath.audit.sessions import Session
from fairpath.audit.sql import SqlStore
from fairpath.audit.sqlite import SqliteSession, path_of
from fairpath.decisions import Status, Subject
from fairpath.errors import RequestIdReusedError
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient
from fairpath_client import RequestIdReusedError as ClientRequestIdReusedError

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, Raw, copy_format_1_trail, raw_for
from tests.support.servers import serving

# Two staff members, whose cases two different systems send under the same request id.
SUBJECT_A = Subject("INC-A", "S-A", "ACT-A")
SUBJECT_B = Subject("INC-B", "S-B", "ACT-B")


def test_another_callers_request_id_gets_its_own_decision(recorder: DecisionRecorder, store: DecisionStore) -> None:
    """Caller B reusing caller A's request id gets a decision on B's own facts, never A's decision."""
    a = recorder.evaluate(GUIDE, SUBSTANCE, subject=SUBJECT_A, request_id="case-42", caller="token:a")
    b = recorder.evaluate(GUIDE, INCOMPLETE, subject=SUBJECT_B, request_id="case-42", caller="token:b")

    assert b.decision_id != a.decision_id
    assert (b.status, b.subject.staff_ref, b.caller) == (Status.NEEDS_INFORMATION, "S-B", "token:b")
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 2
    found_a = store.find_by_request_id("case-42", caller="token:a")
    found_b = store.find_by_request_id("case-42", caller="token:b")
    assert found_a is not None
    assert found_a.decision.decision_id == a.decision_id
    assert found_b is not None
    assert found_b.decision.decision_id == b.decision_id


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"facts": INCOMPLETE}, id="facts"),
        pytest.param({"facts": {**SUBSTANCE, "professional_group": "PARAMEDIC"}}, id="a-clear-fact"),
        pytest.param({"facts": {**SUBSTANCE, "intent_to_harm": "YES"}}, id="a-masked-fact"),
        pytest.param({"subject": Subject("INC-A", "S-OTHER", "ACT-A")}, id="subject"),
        pytest.param({"equality_group": "G2"}, id="equality-group"),
        pytest.param({"version": "1.0.0"}, id="pinned-version"),
    ],
)
def test_a_request_id_reused_for_a_different_request_is_refused(
    recorder: DecisionRecorder, store: DecisionStore, change: dict[str, object]
) -> None:
    """Same caller, same id, anything else different (even only a masked value): refused, nothing appended."""
    first: dict[str, object] = {
        "facts": SUBSTANCE, "subject": SUBJECT_A, "equality_group": "G1", "version": "",
    }
    recorder.evaluate(GUIDE, request_id="case-42", caller="token:a", **first)  # type: ignore[arg-type]

    with pytest.raises(RequestIdReusedError) as refused:
        recorder.evaluate(GUIDE, request_id="case-42", caller="token:a", **{**first, **change})  # type: ignore[arg-type]

    assert "case-42" in str(refused.value)
    assert "S-A" not in str(refused.value)
    assert "JCG" not in str(refused.value)
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 1
    assert store.verify_chain().intact


def test_a_reused_id_in_one_batch_refuses_only_that_item(store: DecisionStore, evaluator: Evaluator) -> None:
    """Appends grouped in one transaction: the reuse is refused, the repeat and the others are recorded."""
    batch = [
        NewDecision(evaluator.evaluate(GUIDE, facts, request_id=request_id), facts, (), 1)
        for facts, request_id in ((SUBSTANCE, "x"), (INCOMPLETE, "x"), (SUBSTANCE, "x"), (INCOMPLETE, "y"))
    ]

    results = store.append_decisions(batch)

    assert isinstance(results[1], RequestIdReusedError)
    first, repeat, other = results[0], results[2], results[3]
    assert not isinstance(first, Exception)
    assert not isinstance(repeat, Exception)
    assert not isinstance(other, Exception)
    assert repeat.decision.decision_id == first.decision.decision_id
    assert [s.sequence for s in store.list_decisions(DecisionFilter(), limit=10)] == [1, 2]


def test_a_repeat_whose_masked_values_were_purged_is_refused(
    recorder: DecisionRecorder, store: DecisionStore, raw: Raw
) -> None:
    """Once the true values are purged the repeat cannot be confirmed as the same request: refused."""
    first = recorder.evaluate(GUIDE, SUBSTANCE, request_id="purged", caller="token:a")
    raw("DELETE FROM decision_sensitive_facts WHERE decision_id = ?", [first.decision_id])

    with pytest.raises(RequestIdReusedError):
        recorder.evaluate(GUIDE, SUBSTANCE, request_id="purged", caller="token:a")


def test_records_from_before_request_digests_read_verify_and_refuse_repeats(
    store_url: str, raw: Raw, tmp_path: Path, pg_schema: Callable[[], str], evaluator: Evaluator
) -> None:
    """A version-1 trail migrates in place: its records still read and verify; their ids are not reusable."""
    dialect = SQLITE if store_url.startswith("sqlite") else POSTGRES
    source_url = f"sqlite:///{tmp_path / 'source.sqlite3'}" if dialect == SQLITE else pg_schema()
    source = open_store(source_url)
    assert isinstance(source, SqlStore)
    source.record_format = JSON_DOCUMENT  # what fairpath wrote before schema version 5
    try:
        recorded = DecisionRecorder(evaluator, source).evaluate(GUIDE, SUBSTANCE, request_id="old", caller="t:a")
    finally:
        source.close()
    session: Session = SqliteSession(path_of(store_url)) if dialect == SQLITE else PostgresSession(store_url)
    try:
        migrate(session, dialect, MIGRATIONS[:1])
    finally:
        session.close()
    copy_format_1_trail(raw_for(source_url), raw, request_digests=False)

    store = open_store(store_url)
    try:
        assert store.verify_chain().intact
        assert store.get_decision(recorded.decision_id).decision.pathway == recorded.pathway
        assert raw("SELECT request_digest FROM decisions", ()) == [("",)]
        with pytest.raises(RequestIdReusedError):
            DecisionRecorder(evaluator, store).evaluate(GUIDE, SUBSTANCE, request_id="old", caller="t:a")
    finally:
        store.close()


# --- through a real server, two callers identified by bearer tokens -----------------------------

TOKENS = {"ward-system": "t0k-ward-5a1e", "hr-system": "t0k-hr-90b2"}


@pytest.fixture(name="two_callers")
def _two_callers(
    store_url: str, evaluator: Evaluator, tmp_path: Path
) -> Iterator[tuple[FairpathClient, FairpathClient, DecisionStore]]:
    """Serve with an auth config giving two systems the evaluator role; yield a client for each."""
    auth = tmp_path / "auth.yaml"
    auth.write_text(yaml.safe_dump({
        "tokens": {name: {"sha256": hash_token(token), "roles": ["evaluator"]} for name, token in TOKENS.items()}
    }))
    with serving(evaluator, auth_config=str(auth), store=store_url) as running:
        target = f"127.0.0.1:{running.port}"
        with (
            FairpathClient(target, timeout=30, token=TOKENS["ward-system"]) as a,
            FairpathClient(target, timeout=30, token=TOKENS["hr-system"]) as b,
        ):
            assert running.store is not None
            yield a, b, running.store


def test_two_callers_sharing_a_request_id_each_get_their_own_decision(
    two_callers: tuple[FairpathClient, FairpathClient, DecisionStore],
) -> None:
    """B sending A's request id with other facts gets B's decision, never A's pathway or subject."""
    a, b, store = two_callers
    for_a = a.evaluate(GUIDE, SUBSTANCE, subject={"staff_ref": "S-A"}, request_id="case-42")
    for_b = b.evaluate(GUIDE, INCOMPLETE, subject={"staff_ref": "S-B"}, request_id="case-42")

    assert for_b.decision_id != for_a.decision_id
    assert for_b.subject is not None
    assert for_b.subject.staff_ref == "S-B"
    assert for_b.pathway is None
    assert for_a.pathway is not None
    assert for_a.pathway.code == "JCG_B_SUBSTANCE_ABUSE"
    callers = {s.decision.caller for s in store.list_decisions(DecisionFilter(), limit=10)}
    assert callers == {"token:ward-system", "token:hr-system"}


def test_a_caller_reusing_its_request_id_for_other_facts_gets_already_exists(
    two_callers: tuple[FairpathClient, FairpathClient, DecisionStore],
) -> None:
    """ALREADY_EXISTS, reason REQUEST_ID_REUSED, typed in the client; a true retry still gets the first."""
    a, _, store = two_callers
    first = a.evaluate(GUIDE, SUBSTANCE, subject={"staff_ref": "S-A"}, request_id="case-7")

    with pytest.raises(ClientRequestIdReusedError) as refused:
        a.evaluate(GUIDE, INCOMPLETE, subject={"staff_ref": "S-A"}, request_id="case-7")
    retry = a.evaluate(GUIDE, SUBSTANCE, subject={"staff_ref": "S-A"}, request_id="case-7")

    assert (refused.value.code, refused.value.reason) == ("ALREADY_EXISTS", "REQUEST_ID_REUSED")
    assert refused.value.metadata["request_id"] == "case-7"
    assert "JCG" not in refused.value.message
    assert "S-A" not in refused.value.message
    assert retry.decision_id == first.decision_id
    assert len(store.list_decisions(DecisionFilter(), limit=10)) == 1
