"""`fairpath checkpoint-key`, `decisions checkpoint`, `decisions verify --checkpoint` and the periodic writer.

The commands run through `fairpath.cli.main` against a real server (SQLite store);
the periodic writer runs in a real `fairpath serve` process, alone and with workers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fairpath.app import build_server
from fairpath.audit import checkpoint, open_store
from fairpath.audit.checkpoint import CheckpointSigner, check_trail, read_signed
from fairpath.cli import main
from fairpath.config import Config
from fairpath.serving.evaluator import Evaluator
from fairpath_client import FairpathClient
from fairpath_client._decisions_cli import EXIT_CHAIN_BROKEN

from tests.integration.audit.conftest import GUIDE, SUBSTANCE
from tests.support.policy_dirs import copy_policies
from tests.support.servers import ServerProcess


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A key pair made by `fairpath checkpoint-key generate`: key.pem and key.pem.pub."""
    path = tmp_path / "key.pem"
    code, out, _ = _run(capsys, "checkpoint-key", "generate", str(path))
    assert code == 0, out
    return path


def _serve(evaluator: Evaluator, url: str, **settings: str) -> Iterator[str]:
    # The in-process server's access log would print into the captured command output.
    previous = structlog.get_config()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    running = build_server(Config(host="127.0.0.1", port=0, store=url, **settings), evaluator)
    running.start()
    target = f"127.0.0.1:{running.port}"
    with FairpathClient(target) as client:
        client.evaluate(GUIDE, SUBSTANCE)
        client.evaluate(GUIDE, SUBSTANCE)
    yield target
    running.stop(None).wait(5)
    if running.store is not None:
        running.store.close()
    structlog.configure(**previous)


@pytest.fixture
def target(evaluator: Evaluator, key: Path, tmp_path: Path) -> Iterator[str]:
    """A server signing with ``key`` over two recorded decisions, in ``tmp_path / "trail.sqlite3"``."""
    yield from _serve(evaluator, f"sqlite:///{tmp_path / 'trail.sqlite3'}", checkpoint_key=str(key))


def test_generate_writes_a_private_key_for_the_owner_only_and_never_overwrites(
    key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The private key is mode 0600, `public` re-derives KEY.pub, and a second generate refuses the file."""
    code, public, _ = _run(capsys, "checkpoint-key", "public", str(key))
    again, _, err = _run(capsys, "checkpoint-key", "generate", str(key))

    assert key.stat().st_mode & 0o777 == 0o600
    assert code == 0
    assert public == Path(f"{key}.pub").read_text()
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert (again, err) == (1, f"error: cannot write {key}: File exists\n")


def test_checkpoint_then_verify_from_the_command_line(
    target: str, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`decisions checkpoint --output` prints and appends the signed line; verify --checkpoint accepts it."""
    kept = tmp_path / "kept.jsonl"

    code, out, err = _run(capsys, "decisions", "checkpoint", "--target", target, "--output", str(kept))
    verified, report, _ = _run(
        capsys, "decisions", "verify", "--target", target, "--checkpoint", str(kept), "--public-key", f"{key}.pub"
    )

    assert code == 0
    assert out == kept.read_text()
    assert json.loads(out)["sequence"] == 2
    assert err.startswith("Checkpoint of record 2 (head ")
    assert verified == 0
    assert report == "Chain intact: 2 record(s) checked; the trail contains and extends 1 signed checkpoint(s).\n"


def test_verify_sends_a_long_checkpoint_file_in_calls_the_service_accepts(
    target: str, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of more checkpoints than one call may carry is verified over several calls, all counted."""
    kept = tmp_path / "kept.jsonl"
    _run(capsys, "decisions", "checkpoint", "--target", target, "--output", str(kept))
    head = checkpoint.parse(kept.read_text())
    signer = CheckpointSigner.load(str(key))
    many = tmp_path / "many.jsonl"
    many.write_text("".join(signer.sign(head.sequence, head.head).to_line() + "\n" for _ in range(1001)))

    code, out, err = _run(
        capsys, "decisions", "verify", "--target", target, "--checkpoint", str(many), "--public-key", f"{key}.pub"
    )

    assert (code, err) == (0, "")
    assert out == "Chain intact: 2 record(s) checked; the trail contains and extends 1001 signed checkpoint(s).\n"


def test_verify_exits_broken_for_a_checkpoint_the_trail_lost(
    target: str, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Record 2 deleted and the head rewound to 1 after a checkpoint of record 2: plain verify 0, anchored 4."""
    kept = tmp_path / "kept.jsonl"
    _run(capsys, "decisions", "checkpoint", "--target", target, "--output", str(kept))
    database = sqlite3.connect(tmp_path / "trail.sqlite3", isolation_level=None)
    for (trigger,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        database.execute(f"DROP TRIGGER {trigger}")
    (decision_id,) = database.execute("SELECT decision_id FROM decisions WHERE sequence = 2").fetchone()
    database.execute("DELETE FROM decision_sensitive_facts WHERE decision_id = ?", (decision_id,))
    database.execute("DELETE FROM decision_rules WHERE sequence = 2")
    database.execute("DELETE FROM decisions WHERE sequence = 2")
    database.execute("UPDATE chain_head SET sequence = 1, hash = (SELECT hash FROM decisions WHERE sequence = 1)")
    database.close()

    plain, _, _ = _run(capsys, "decisions", "verify", "--target", target)
    code, out, _ = _run(
        capsys, "decisions", "verify", "--target", target, "--checkpoint", str(kept), "--public-key", f"{key}.pub"
    )

    assert plain == 0
    assert code == EXIT_CHAIN_BROKEN
    assert out.startswith("Chain BROKEN at record 2: the trail ends at record 1 but the checkpoint of record 2")


def test_verify_refuses_unreadable_forged_and_empty_checkpoint_files(
    target: str, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with one line each: a missing file, a line altered after signing, no line, a private key."""
    kept = tmp_path / "kept.jsonl"
    _run(capsys, "decisions", "checkpoint", "--target", target, "--output", str(kept))
    forged = tmp_path / "forged.jsonl"
    forged.write_text(kept.read_text().replace('"sequence": 2', '"sequence": 1'))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")

    results = [
        _run(capsys, "decisions", "verify", "--target", target, "--checkpoint", str(path), "--public-key", public)
        for path, public in (
            (tmp_path / "missing.jsonl", f"{key}.pub"), (forged, f"{key}.pub"), (empty, f"{key}.pub"), (kept, str(key)),
        )
    ]

    assert [(code, err) for code, _, err in results] == [
        (2, f"error: cannot read {tmp_path / 'missing.jsonl'}: No such file or directory\n"),
        (2, "checkpoints[0]: has a signature that does not verify: it was altered after signing\n"),
        (2, "error: the checkpoint file(s) hold no checkpoint\n"),
        (2, f"error: {key} holds a private key: give its public key (the .pub file)\n"),
    ]


def test_a_server_without_a_key_signs_nothing_and_needs_a_public_key(
    evaluator: Evaluator, key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --checkpoint-key: `decisions checkpoint` fails (UNIMPLEMENTED), verify asks for --public-key."""
    signed = tmp_path / "signed.jsonl"
    with_key = _serve(evaluator, f"sqlite:///{tmp_path / 'a.sqlite3'}", checkpoint_key=str(key))
    _run(capsys, "decisions", "checkpoint", "--target", next(with_key), "--output", str(signed))
    next(with_key, None)
    keyless = _serve(evaluator, f"sqlite:///{tmp_path / 'b.sqlite3'}")
    keyless_target = next(keyless)

    code, _, err = _run(capsys, "decisions", "checkpoint", "--target", keyless_target)
    verify, _, verify_err = _run(capsys, "decisions", "verify", "--target", keyless_target, "--checkpoint", str(signed))
    next(keyless, None)

    assert code == 1
    assert "this server has no checkpoint key: start it with --checkpoint-key" in err
    assert (verify, verify_err) == (2, "public_key: is required: this server has no checkpoint key of its own\n")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_the_server_writes_signed_checkpoints_on_schedule_and_on_stop(key: Path, tmp_path: Path) -> None:
    """`serve --checkpoint-every` appends and logs a checkpoint per interval and a last one on stop; all verify."""
    url = f"sqlite:///{tmp_path / 'trail.sqlite3'}"
    kept = tmp_path / "periodic.jsonl"
    args = ("--store", url, "--checkpoint-key", str(key), "--checkpoint-every", "0.005", "--checkpoint-file", str(kept))
    policies = copy_policies(tmp_path / "policies", GUIDE)
    with ServerProcess(policies, *args, "--watch-seconds", "0", cwd=tmp_path) as server:
        server.wait_serving()
        server.wait_until(lambda: len(_lines(kept)) >= 1, "a first periodic checkpoint")
        with FairpathClient(server.target) as client:
            client.evaluate(GUIDE, SUBSTANCE)
        server.wait_until(lambda: any('"sequence": 1' in line for line in _lines(kept)), "a checkpoint of record 1")
        assert server.stop() == 0
        events = [json.loads(line) for line in server.lines if line.startswith("{")]

    lines = _lines(kept)
    logged = [event["checkpoint"] for event in events if event["event"] == "checkpoint"]
    last_checkpoint = max(i for i, event in enumerate(events) if event["event"] == "checkpoint")
    stopping = next(i for i, event in enumerate(events) if event["event"] == "stopping")
    store = open_store(url)
    try:
        report = check_trail(store, read_signed(lines, Path(f"{key}.pub").read_text(), None))
    finally:
        store.close()

    assert len(lines) >= 2
    assert logged == lines
    assert last_checkpoint > stopping
    assert json.loads(lines[-1])["sequence"] == 1
    assert (report.intact, report.records_checked) == (True, 1)


def test_with_workers_only_the_supervisor_writes_checkpoints(key: Path, tmp_path: Path) -> None:
    """`serve --workers 2`: one writer for the service (the supervisor's pid), not one per worker."""
    url = f"sqlite:///{tmp_path / 'trail.sqlite3'}"
    kept = tmp_path / "periodic.jsonl"
    args = ("--store", url, "--checkpoint-key", str(key), "--checkpoint-every", "0.005", "--checkpoint-file", str(kept))
    policies = copy_policies(tmp_path / "policies", GUIDE)
    with ServerProcess(policies, *args, "--workers", "2", "--watch-seconds", "0", cwd=tmp_path) as server:
        server.wait_serving()
        server.wait_until(lambda: len(_lines(kept)) >= 3, "three periodic checkpoints")
        assert server.stop() == 0
        writers = {event["pid"] for event in server.events("checkpoint")}
        supervisor = server.process.pid

    assert writers == {supervisor}
