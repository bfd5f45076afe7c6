"""The evaluate and policies commands: facts files, output, and exit codes, with a fake client."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fairpath.v1 import decision_pb2
from fairpath_client import (
    Decision,
    FieldViolation,
    InvalidFactsError,
    PolicyNotFoundError,
    PolicySummary,
    ServerError,
    ServiceUnavailableError,
    Subject,
    cli,
)


class FakeClient:
    """Stands in for FairpathClient: records calls, answers or raises what the test set."""

    instances: ClassVar[list[FakeClient]] = []
    answer: ClassVar[Any] = None

    def __init__(self, target: str, *, timeout: float, tls: Any = None, token: str | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.tls = tls
        self.token = token
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.closed = False
        FakeClient.instances.append(self)

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True

    def _respond(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, args, kwargs))
        if isinstance(FakeClient.answer, Exception):
            raise FakeClient.answer
        return FakeClient.answer

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        return self._respond("evaluate", *args, **kwargs)

    def list_policies(self) -> Any:
        return self._respond("list_policies")


@pytest.fixture(name="fake")
def _fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.instances = []
    FakeClient.answer = None
    monkeypatch.setattr(cli, "FairpathClient", FakeClient)
    monkeypatch.delenv(cli.TARGET_ENV, raising=False)
    return FakeClient


def decision(status: decision_pb2.DecisionStatus.ValueType = decision_pb2.DECIDED) -> Decision:
    decided = status == decision_pb2.DECIDED
    pathway = decision_pb2.Pathway(code="JCG_D", title="Substitution") if decided else None
    return Decision.from_proto(
        decision_pb2.Decision(
            decision_id="dec-1",
            status=status,
            pathway=pathway,
            missing_facts=[decision_pb2.MissingFact(fact="intent", question="Intent?", rule_id="1a")]
            if pathway is None
            else [],
        )
    )


def facts_file(tmp_path: Path, text: str, name: str = "facts.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_decided_prints_rendered_decision_and_exits_0(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DECIDED answer is printed as text and the exit code is 0."""
    fake.answer = decision()

    code = cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, 'intent: "NO"\n')])

    out = capsys.readouterr()
    assert code == cli.EXIT_OK == 0
    assert out.out.startswith("DECIDED  JCG_D  Substitution")
    assert out.err == ""


def test_needs_information_also_exits_0(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NEEDS_INFORMATION is a successful answer: exit 0, missing questions printed."""
    fake.answer = decision(decision_pb2.NEEDS_INFORMATION)

    code = cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, "{}\n")])

    assert code == 0
    assert "intent: Intent?" in capsys.readouterr().out


def test_json_flag_prints_the_decision_as_json(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints Decision.to_dict() as JSON."""
    fake.answer = decision()

    cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, "{}"), "--json"])

    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "DECIDED"
    assert printed["pathway"]["code"] == "JCG_D"


def test_arguments_reach_the_client(fake: type[FakeClient], tmp_path: Path) -> None:
    """Policy, version, YAML facts (booleans kept), refs, request id, target and timeout are passed on."""
    fake.answer = decision()
    path = facts_file(tmp_path, 'intent: "NO"\nagency: yes\nhours: 13\n')

    cli.main(
        [
            "evaluate",
            "--policy", "p", "--version", "2.0.0", "--facts", path,
            "--staff-ref", "S-7", "--incident-ref", "INC-1",
            "--request-id", "req-1", "--target", "svc:1234", "--timeout", "1.5",
        ]
    )  # fmt: skip

    [client] = fake.instances
    [(_, args, kwargs)] = client.calls
    assert (client.target, client.timeout, client.closed) == ("svc:1234", 1.5, True)
    assert args == ("p", {"intent": "NO", "agency": True, "hours": 13})
    assert kwargs["version"] == "2.0.0"
    assert kwargs["subject"] == Subject(incident_ref="INC-1", staff_ref="S-7")
    assert kwargs["request_id"] == "req-1"


def test_target_comes_from_env_then_default(
    fake: type[FakeClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --target, FAIRPATH_TARGET is used, else 127.0.0.1:50051; no refs means no subject."""
    fake.answer = decision()
    path = facts_file(tmp_path, "{}")

    cli.main(["evaluate", "--policy", "p", "--facts", path])
    monkeypatch.setenv(cli.TARGET_ENV, "env-host:9")
    cli.main(["evaluate", "--policy", "p", "--facts", path])

    assert [c.target for c in fake.instances] == ["127.0.0.1:50051", "env-host:9"]
    assert fake.instances[0].timeout == 5.0
    assert fake.instances[0].calls[0][2]["subject"] is None


def test_json_facts_file_is_read_as_json(fake: type[FakeClient], tmp_path: Path) -> None:
    """A .json facts file is parsed as JSON."""
    fake.answer = decision()

    cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, '{"a": "YES"}', "f.json")])

    assert fake.instances[0].calls[0][1][1] == {"a": "YES"}


def test_facts_from_stdin(fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """--facts - reads the mapping from stdin."""
    fake.answer = decision()
    monkeypatch.setattr("sys.stdin", io.StringIO('{"a": "NO"}'))

    cli.main(["evaluate", "--policy", "p", "--facts", "-"])

    assert fake.instances[0].calls[0][1][1] == {"a": "NO"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\n", "cannot parse facts file"),
        ("- a\n- b\n", "must hold a mapping"),
        (None, "cannot read facts file"),
    ],
)
def test_unreadable_facts_file_exits_2_without_calling(
    fake: type[FakeClient],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    message: str,
) -> None:
    """Bad YAML, a non-mapping or a missing file exit 2 with one error line and no call."""
    path = facts_file(tmp_path, text) if text is not None else str(tmp_path / "missing.yaml")

    code = cli.main(["evaluate", "--policy", "p", "--facts", path])

    err = capsys.readouterr().err
    assert code == cli.EXIT_INVALID_FACTS == 2
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1
    assert fake.instances == []


def test_invalid_facts_print_one_violation_per_line_and_exit_2(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each violation is printed as "field: description" on stderr; exit code 2."""
    fake.answer = InvalidFactsError(
        "INVALID_ARGUMENT",
        "2 invalid fact(s)",
        violations=[
            FieldViolation("facts.intent", "must be YES, NO or UNKNOWN"),
            FieldViolation("facts.colour", "is not declared"),
        ],
    )

    code = cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, 'intent: "MAYBE"\n')])

    out = capsys.readouterr()
    assert code == 2
    assert out.err.splitlines() == [
        "facts.intent: must be YES, NO or UNKNOWN",
        "facts.colour: is not declared",
    ]
    assert out.out == ""


def test_rejected_yaml_boolean_gets_a_quoting_hint(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When a rejected fact was an unquoted YAML yes/no, a hint to quote it follows the violations."""
    fake.answer = InvalidFactsError(
        "INVALID_ARGUMENT", "bad", violations=[FieldViolation("facts.intent", "must be YES, NO or UNKNOWN")]
    )

    cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, "intent: no\n")])

    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "facts.intent: must be YES, NO or UNKNOWN"
    assert lines[1].startswith("hint: YAML reads unquoted yes/no as booleans")


def test_policy_not_found_exits_3(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown policy exits 3 with the service's message on stderr."""
    fake.answer = PolicyNotFoundError("NOT_FOUND", "policy 'p' is not loaded")

    code = cli.main(["evaluate", "--policy", "p", "--facts", facts_file(tmp_path, "{}")])

    assert code == cli.EXIT_POLICY_NOT_FOUND == 3
    assert capsys.readouterr().err == "error: NOT_FOUND: policy 'p' is not loaded\n"


@pytest.mark.parametrize("command", ["evaluate", "policies"])
def test_unreachable_service_exits_1_with_a_hint(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """UNAVAILABLE exits 1, names the target, and prints no traceback."""
    fake.answer = ServiceUnavailableError("UNAVAILABLE", "connection refused")
    argv = [command, "--target", "nowhere:1"]
    if command == "evaluate":
        argv += ["--policy", "p", "--facts", facts_file(tmp_path, "{}")]

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR == 1
    assert err.splitlines() == [
        "error: UNAVAILABLE: connection refused",
        "hint: is fairpath serving at nowhere:1? Set --target or $FAIRPATH_TARGET.",
    ]
    assert "Traceback" not in err


def test_server_error_exits_1_with_request_id(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """Other failures exit 1 with one line quoting the request id."""
    fake.answer = ServerError("INTERNAL", "engine failed", request_id="req-9")

    assert cli.main(["policies"]) == 1
    assert capsys.readouterr().err == "error: INTERNAL: engine failed (request id req-9)\n"


def test_policies_prints_a_table_or_json(fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    """The policies command prints the table, or a JSON list with --json; exit 0."""
    fake.answer = [
        PolicySummary(name="p", version="1.0.0", title="P", digest="a" * 64, status="active", current=True)
    ]

    assert cli.main(["policies"]) == 0
    table = capsys.readouterr().out
    assert cli.main(["policies", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)

    assert table.splitlines()[1].split() == ["p", "1.0.0", "active", "-", "yes", "a" * 12, "P"]
    assert listed == [fake.answer[0].to_dict()]


def test_bad_timeout_is_a_usage_error() -> None:
    """--timeout must be a positive finite number; argparse exits 2."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["policies", "--timeout", "0"])

    assert caught.value.code == 2


def test_add_commands_plugs_into_another_parser(fake: type[FakeClient]) -> None:
    """A host CLI can register the commands and dispatch through args.func, getting the exit code."""
    fake.answer = []
    parser = argparse.ArgumentParser(prog="fairpath")
    subparsers = parser.add_subparsers(dest="command", required=True)
    subparsers.add_parser("serve")
    cli.add_commands(subparsers)

    args = parser.parse_args(["policies", "--target", "x:1"])

    assert args.func(args) == 0
    assert fake.instances[0].target == "x:1"
