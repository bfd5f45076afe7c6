"""Signed checkpoints against a database administrator, on SQLite and PostgreSQL, through a real server.

Plain verification cannot see a trail whose tail was cut off with the chain head
moved back, or whose records were rewritten with every later hash recomputed:
the chain is consistent again. A checkpoint signed before the rewrite, kept off
the database, can.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fairpath.api.server import Running
from fairpath.app import build_server
from fairpath.audit import DecisionStore, chain
from fairpath.audit.checkpoint import CheckpointSigner, public_pem, read_signed
from fairpath.audit.checkpoint_writer import CheckpointWriter
from fairpath.config import Config
from fairpath.recording import DecisionRecorder
from fairpath.serving.evaluator import Evaluator
from fairpath_client import ChainReport, FairpathClient, InvalidRequestError, SignedCheckpoint
from structlog.testing import capture_logs

from tests.integration.audit.conftest import GUIDE, INCOMPLETE, SUBSTANCE, Raw


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


@pytest.fixture
def key_file(signer: CheckpointSigner, tmp_path: Path) -> Path:
    path = tmp_path / "checkpoint.pem"
    path.write_bytes(signer.private_pem())
    return path


@pytest.fixture
def public_key(signer: CheckpointSigner) -> str:
    return public_pem(signer.public_key).decode("ascii")


@pytest.fixture
def client(evaluator: Evaluator, store: DecisionStore, key_file: Path) -> Iterator[FairpathClient]:
    """A client of a real server that records into ``store`` and signs checkpoints with ``key_file``."""
    running: Running = build_server(
        Config(host="127.0.0.1", port=0, checkpoint_key=str(key_file)), evaluator, store=store
    )
    running.start()
    with FairpathClient(f"127.0.0.1:{running.port}") as opened:
        yield opened
    running.stop(None).wait(5)


@pytest.fixture(name="anchored")
def _anchored(client: FairpathClient) -> SignedCheckpoint:
    """Records 1-4 (decision, decision, outcome, decision), a checkpoint of record 4, then records 5 and 6."""
    first = client.evaluate(GUIDE, SUBSTANCE).decision_id
    client.evaluate(GUIDE, INCOMPLETE)
    client.record_outcome(first, "JCG_B_SUBSTANCE_ABUSE", "reviewer")
    client.evaluate(GUIDE, SUBSTANCE)
    signed = client.create_checkpoint()
    client.evaluate(GUIDE, SUBSTANCE)
    client.evaluate(GUIDE, INCOMPLETE)
    return signed


@pytest.fixture
def dba(raw: Raw, store_url: str) -> Raw:
    """Raw SQL with every trigger guarding the trail switched off, as the database's owner can."""
    if store_url.startswith("sqlite"):
        for (name,) in raw("SELECT name FROM sqlite_master WHERE type = 'trigger'", ()):
            raw(f"DROP TRIGGER {name}", ())
    else:
        tables = raw(
            "SELECT DISTINCT event_object_table FROM information_schema.triggers"
            " WHERE trigger_schema = current_schema()", (),
        )
        for (table,) in tables:
            raw(f"ALTER TABLE {table} DISABLE TRIGGER USER", ())
    return raw


def _truncate(raw: Raw, keep: int) -> None:
    """Delete every record after ``keep`` and move the chain head back onto record ``keep``."""
    for (decision_id,) in raw("SELECT decision_id FROM decisions WHERE sequence > ?", [keep]):
        raw("DELETE FROM decision_equality WHERE decision_id = ?", [decision_id])
        raw("DELETE FROM decision_sensitive_facts WHERE decision_id = ?", [decision_id])
    raw("DELETE FROM decision_rules WHERE sequence > ?", [keep])
    raw("DELETE FROM outcomes WHERE sequence > ?", [keep])
    raw("DELETE FROM decisions WHERE sequence > ?", [keep])
    (digest,) = raw(
        "SELECT hash FROM decisions WHERE sequence = ? UNION ALL SELECT hash FROM outcomes WHERE sequence = ?",
        [keep, keep],
    )[0]
    raw("UPDATE chain_head SET sequence = ?, hash = ? WHERE id = 1", [keep, digest])


def _rewrite(raw: Raw, sequence: int) -> None:
    """Change the facts recorded for decision ``sequence``, then recompute its hash, every later link and the head."""
    raw("UPDATE decisions SET facts = REPLACE(facts, '\"YES\"', '\"NO\"') WHERE sequence = ?", [sequence])
    (previous,) = raw(
        "SELECT previous_hash FROM decisions WHERE sequence = ?", [sequence]
    )[0]
    (last,) = raw("SELECT sequence FROM chain_head", ())[0]
    for at in range(sequence, last + 1):
        layouts = raw("SELECT format FROM decisions WHERE sequence = ?", [at])
        layout = int(layouts[0][0]) if layouts else chain.LINK_FORMAT
        for table, kind, columns in (
            ("decisions", chain.DECISION, chain.DECISION_LINKS[layout]),
            ("outcomes", chain.OUTCOME, chain.OUTCOME_COLUMNS),
        ):
            rows = raw(f"SELECT {', '.join(columns)} FROM {table} WHERE sequence = ?", [at])  # noqa: S608
            if rows:
                digest = chain.link_hash(at, previous, kind, rows[0], layout)
                raw(f"UPDATE {table} SET previous_hash = ?, hash = ? WHERE sequence = ?", [previous, digest, at])  # noqa: S608
                previous = digest
    raw("UPDATE chain_head SET hash = ? WHERE id = 1", [previous])


def test_the_trail_contains_and_extends_an_earlier_checkpoint(
    client: FairpathClient, anchored: SignedCheckpoint, public_key: str, signer: CheckpointSigner
) -> None:
    """A checkpoint of record 4, verified after two more records, checks out with the verifier's public key."""
    report = client.verify_chain(checkpoints=[anchored.line], public_key=public_key)

    assert (anchored.sequence, anchored.key_id) == (4, signer.key_id)
    assert report == ChainReport(
        intact=True, records_checked=6, first_broken_sequence=0, problem="", checkpoints_verified=1
    )


def test_a_cut_off_tail_with_a_rewound_head_fails_only_against_the_checkpoint(
    client: FairpathClient, anchored: SignedCheckpoint, public_key: str, dba: Raw
) -> None:
    """Deleting records 4-6 and moving the head back to 3 fools plain verify, not the checkpoint of record 4."""
    _truncate(dba, keep=3)

    plain = client.verify_chain()
    anchored_report = client.verify_chain(checkpoints=[anchored.line], public_key=public_key)

    assert (plain.intact, plain.records_checked) == (True, 3)
    assert (anchored_report.intact, anchored_report.first_broken_sequence) == (False, 4)
    assert anchored_report.checkpoints_verified == 0
    assert anchored_report.problem.startswith("the trail ends at record 3 but the checkpoint of record 4 signed at")
    assert anchored_report.problem.endswith("records were removed after it was signed")


@pytest.mark.parametrize("rewritten", [2, 4])
def test_a_rewritten_and_rehashed_trail_fails_against_the_checkpoint(
    client: FairpathClient, anchored: SignedCheckpoint, public_key: str, dba: Raw, rewritten: int
) -> None:
    """Rewriting record 2 or 4 (the checkpoint's own) and recomputing the chain is caught at record 4."""
    _rewrite(dba, rewritten)

    plain = client.verify_chain()
    anchored_report = client.verify_chain(checkpoints=[anchored.line], public_key=public_key)

    assert (plain.intact, plain.records_checked) == (True, 6)
    assert (anchored_report.intact, anchored_report.first_broken_sequence) == (False, 4)
    assert "record 4 does not have the hash in the checkpoint of record 4" in anchored_report.problem
    assert "rewritten after the checkpoint was signed" in anchored_report.problem


def test_a_cut_after_the_last_checkpoint_is_not_caught_by_it(
    client: FairpathClient, anchored: SignedCheckpoint, public_key: str, dba: Raw
) -> None:
    """What a checkpoint proves stops at its record: records 5-6 removed later pass (hence frequent checkpoints)."""
    _truncate(dba, keep=4)

    report = client.verify_chain(checkpoints=[anchored.line], public_key=public_key)

    assert (report.intact, report.records_checked, report.checkpoints_verified) == (True, 4, 1)


def test_a_checkpoint_of_an_empty_trail_verifies_and_later_ones_are_checked_together(
    client: FairpathClient, public_key: str
) -> None:
    """Record 0 (the genesis) can be checkpointed; several checkpoints verify in one call."""
    empty = client.create_checkpoint()
    client.evaluate(GUIDE, SUBSTANCE)
    one = client.create_checkpoint()

    report = client.verify_chain(checkpoints=[empty.line, one.line], public_key=public_key)

    assert (empty.sequence, empty.head_hash, one.sequence) == (0, chain.GENESIS, 1)
    assert (report.intact, report.checkpoints_verified) == (True, 2)


def test_forged_or_foreign_checkpoints_are_bad_requests(
    client: FairpathClient, anchored: SignedCheckpoint, public_key: str
) -> None:
    """A line edited after signing, or signed by another key, is INVALID_ARGUMENT naming the line."""
    forged = anchored.line.replace('"sequence": 4', '"sequence": 3')
    foreign = CheckpointSigner.generate().sign(anchored.sequence, anchored.head_hash).to_line()

    with pytest.raises(InvalidRequestError) as refused:
        client.verify_chain(checkpoints=[anchored.line, forged, foreign], public_key=public_key)

    violations = refused.value.violations
    assert [v.field for v in violations] == ["checkpoints[1]", "checkpoints[2]"]
    assert violations[0].description == "has a signature that does not verify: it was altered after signing"
    assert "not by the public key given" in violations[1].description


def test_without_a_public_key_the_servers_own_key_verifies(
    client: FairpathClient, anchored: SignedCheckpoint
) -> None:
    """An operator with the service's configuration may leave the public key out."""
    report = client.verify_chain(checkpoints=[anchored.line])

    assert (report.intact, report.checkpoints_verified) == (True, 1)


def test_the_writer_raises_the_alarm_when_its_previous_checkpoint_is_contradicted(
    store: DecisionStore, recorder: DecisionRecorder, signer: CheckpointSigner, dba: Raw, tmp_path: Path
) -> None:
    """A cut tail is logged as checkpoint_contradicted at every attempt, and the rewound trail is never signed.

    Signing it would anchor the cut: verify given only the newer checkpoints would call the trail
    intact. The trail growing past the checkpoint again (with other records) does not end the alarm.
    """
    kept = tmp_path / "periodic.jsonl"
    writer = CheckpointWriter(store, signer, 3600, str(kept))
    for _ in range(3):
        recorder.evaluate(GUIDE, SUBSTANCE)

    with capture_logs() as before:
        assert writer.write()
        recorder.evaluate(GUIDE, SUBSTANCE)
        assert writer.write()
    _truncate(dba, keep=2)
    with capture_logs() as after:
        written = [writer.write(), writer.write()]
        for _ in range(3):
            recorder.evaluate(GUIDE, SUBSTANCE)
        written.append(writer.write())
        writer.stop()  # the last checkpoint, on stop, is refused too

    assert [(e["event"], e["sequence"]) for e in before] == [("checkpoint", 3), ("checkpoint", 4)]
    assert written == [False, False, False]
    assert [json.loads(line)["sequence"] for line in kept.read_text().splitlines()] == [3, 4]
    assert [(e["event"], e["log_level"], e["sequence"]) for e in after] == [("checkpoint_contradicted", "error", 4)] * 4
    assert after[0]["problem"].startswith("the trail ends at record 2 but the checkpoint of record 4")
    assert after[2]["problem"].startswith("record 4 does not have the hash in the checkpoint")
    assert json.loads(after[0]["checkpoint"])["sequence"] == 4
    assert writer.contradicted == after[3]["problem"]


def test_the_writer_signs_again_once_the_trail_holds_its_checkpoint_again(
    store: DecisionStore, recorder: DecisionRecorder, signer: CheckpointSigner, dba: Raw
) -> None:
    """A record's hash changed under the last checkpoint stops signing; the trail restored, signing resumes."""
    writer = CheckpointWriter(store, signer, 3600)
    recorder.evaluate(GUIDE, SUBSTANCE)
    assert writer.write()
    (original,) = dba("SELECT hash FROM decisions WHERE sequence = 1", ())[0]
    dba("UPDATE decisions SET hash = ? WHERE sequence = 1", ["0" * 64])

    with capture_logs() as logged:
        refused = writer.write()
        dba("UPDATE decisions SET hash = ? WHERE sequence = 1", [original])  # restored from a backup
        resumed = writer.write()

    assert (refused, resumed, writer.contradicted) == (False, True, "")
    assert [e["event"] for e in logged] == ["checkpoint_contradicted", "checkpoint"]


def test_the_writer_logs_the_checkpoint_even_when_its_file_cannot_be_written(
    store: DecisionStore, signer: CheckpointSigner, tmp_path: Path
) -> None:
    """An unwritable --checkpoint-file is an error line, not a crash; the signed line is still in the log."""
    writer = CheckpointWriter(store, signer, 3600, str(tmp_path / "missing-folder" / "periodic.jsonl"))

    with capture_logs() as logged:
        written = writer.write()

    assert not written
    assert [e["event"] for e in logged] == ["checkpoint", "checkpoint_file_failed"]
    assert read_signed([logged[0]["checkpoint"]], public_pem(signer.public_key).decode(), None)[0].sequence == 0
