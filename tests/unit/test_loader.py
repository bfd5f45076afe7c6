"""Policy files: the real guide loads, and every kind of mistake names the file, rule and line.

Each broken-policy test starts from :func:`minimal_policy`, changes one thing,
writes the YAML to ``tmp_path`` and checks the :class:`PolicyFileError`:
message, ``path``, ``rule_id`` and ``line`` (the line of the YAML mapping at
fault, found independently by searching the written text).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fairpath.errors import PolicyFileError
from fairpath.policy import conditions as cond
from fairpath.policy.loader import PROTECTED_FACTS, load_bytes, load_file
from fairpath.policy.model import FactType, Policy, Target

from tests.conftest import GUIDE, POLICIES
from tests.support.policy_builder import HEADER_LINES, line_of, minimal_policy, write_policy

GUIDE_FILE = POLICIES / GUIDE / "1.0.0.yaml"
TOP = HEADER_LINES + 1  # the line where the top-level mapping starts in a written policy

Mutation = Callable[[dict[str, Any]], object]

NAME_FORM = "must be lower-case words joined by '-'"
SEMVER = "must be semver MAJOR.MINOR.PATCH"
PROTECTED = "is a protected characteristic: those are never rule inputs"
CODES = "values must be distinct UPPER_CASE codes"
TYPES = "type must be one of answer, enum, bool, number, string, set"
TARGET_FORM = "must be 'go to RULE' or 'pathway CODE [(sub-reason)]', not"
UNKNOWN_HINT = "(UNKNOWN counts as unanswered: test 'is unanswered')"


def load_mutated(tmp_path: Path, mutate: Mutation) -> tuple[Path, Policy]:
    """Write the minimal policy after ``mutate`` changed it, and load it."""
    document = minimal_policy()
    mutate(document)
    path = write_policy(tmp_path / "policy.yaml", document)
    return path, load_file(path)


def broken(tmp_path: Path, mutate: Mutation) -> tuple[Path, PolicyFileError]:
    """Write the minimal policy after ``mutate`` broke it; return the path and the load error."""
    document = minimal_policy()
    mutate(document)
    path = write_policy(tmp_path / "policy.yaml", document)
    with pytest.raises(PolicyFileError) as caught:
        load_file(path)
    return path, caught.value


def rule(document: dict[str, Any], rule_id: str) -> dict[str, Any]:
    """Return the walk rule, advice or check with this id."""
    for section in ("rules", "advice", "checks"):
        for item in document.get(section) or []:
            if item["id"] == rule_id:
                return item
    raise KeyError(rule_id)


def set_when(rule_id: str, text: object) -> Mutation:
    """Return a mutation that replaces one rule's condition."""
    return lambda document: rule(document, rule_id).__setitem__("when", text)


def add_fact(**fact: Any) -> Mutation:
    """Return a mutation that appends one fact declaration."""
    return lambda document: document["facts"].append({**fact, "question": "Q?"})


# --- the real policy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide() -> Policy:
    """Load the real guide once for the module."""
    return load_file(GUIDE_FILE)


class TestGuideLoads:
    """The NHS just culture guide file in policies/ is a valid policy."""

    def test_identity(self, guide: Policy) -> None:
        """Name, version and status come from the file."""
        assert guide.name == GUIDE
        assert guide.version == "1.0.0"
        assert guide.key == f"{GUIDE}@1.0.0"
        assert guide.status == "active"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", guide.effective_from)

    def test_digest_and_path(self, guide: Policy) -> None:
        """The digest is the SHA-256 of the file bytes; the path is the file's."""
        assert guide.digest == hashlib.sha256(GUIDE_FILE.read_bytes()).hexdigest()
        assert guide.path == str(GUIDE_FILE)

    def test_walk_starts_at_the_first_rule(self, guide: Policy) -> None:
        """The first rule in the file is the start, and every rule is indexed by id."""
        assert guide.start is guide.rules[0]
        assert set(guide.rules_by_id) == {r.id for r in guide.rules}

    def test_lines_point_at_each_rule(self, guide: Policy) -> None:
        """Every walk rule, advice and check remembers the line of its ``- id:`` in the file."""
        lines = GUIDE_FILE.read_text(encoding="utf-8").splitlines()
        for item in (*guide.rules, *guide.advice, *guide.checks):
            assert item.line is not None
            assert re.fullmatch(rf"\s*- id: \"?{re.escape(item.id)}\"?\s*", lines[item.line - 1]), item.id

    def test_every_target_resolves(self, guide: Policy) -> None:
        """Each target names a later rule or a declared pathway."""
        order = [r.id for r in guide.rules]
        for index, walk_rule in enumerate(guide.rules):
            for target in (walk_rule.then, walk_rule.otherwise):
                assert bool(target.rule) != bool(target.pathway)
                if target.rule:
                    assert order.index(target.rule) > index
                else:
                    assert target.pathway in guide.pathways

    def test_sub_reason(self, guide: Policy) -> None:
        """``pathway CODE (sub)`` keeps the sub-reason."""
        assert guide.rules_by_id["2b"].then == Target(pathway="JCG_C_HEALTH_ISSUE", sub_reason="PHYSICAL")

    def test_walk_reads_only_declared_facts(self, guide: Policy) -> None:
        """Walk rules read declared facts only, never the outcome or a protected characteristic."""
        for walk_rule in guide.rules:
            assert set(walk_rule.reads) <= set(guide.facts)
        assert not set(guide.facts) & PROTECTED_FACTS

    def test_multi_line_condition_is_one_line(self, guide: Policy) -> None:
        """A folded (``>``) condition is stored with its whitespace collapsed."""
        for item in guide.advice:
            assert "\n" not in item.condition_text
            assert "  " not in item.condition_text
            assert cond.parse(item.condition_text) == item.condition

    def test_answer_facts_take_yes_no_unknown(self, guide: Policy) -> None:
        """An answer fact's values are YES, NO and UNKNOWN."""
        assert guide.facts["intent_to_harm"].type is FactType.ANSWER
        assert guide.facts["intent_to_harm"].values == ("YES", "NO", "UNKNOWN")


class TestMinimalPolicy:
    """The builder's minimal policy loads, so each broken variant breaks exactly one thing."""

    def test_loads(self, tmp_path: Path) -> None:
        """The unchanged minimal policy is valid, with defaults filled in."""
        path, policy = load_mutated(tmp_path, lambda d: None)
        assert policy.key == "mini-policy@1.2.3"
        assert policy.path == str(path)
        assert policy.rules_by_id["r1"].line == line_of(path, "- id: r1")
        assert policy.rules_by_id["r1"].question == "Was there intent to harm?"
        assert policy.advice[0].title == "HR_ADVICE"
        assert policy.checks[0].title == "c1"

    def test_status_defaults_to_active(self, tmp_path: Path) -> None:
        """A file without ``status`` is active."""
        _, policy = load_mutated(tmp_path, lambda d: d.pop("status"))
        assert policy.status == "active"

    def test_advice_and_checks_are_optional(self, tmp_path: Path) -> None:
        """A policy may have no advice and no checks."""
        _, policy = load_mutated(tmp_path, lambda d: (d.pop("advice"), d.pop("checks")))
        assert policy.advice == ()
        assert policy.checks == ()

    def test_load_bytes_names_its_source(self) -> None:
        """load_bytes uses ``<policy>`` in errors unless told a path."""
        with pytest.raises(PolicyFileError) as caught:
            load_bytes(b"- 1\n")
        assert caught.value.path == "<policy>"
        assert str(caught.value) == "<policy>: a policy file must be a mapping of keys"


# --- the file as a whole ------------------------------------------------------------------


class TestFileErrors:
    """Files that are not a YAML mapping of UTF-8 text."""

    def test_invalid_yaml_reports_the_line(self, tmp_path: Path) -> None:
        """A YAML syntax error names the line the parser stopped at."""
        path = tmp_path / "bad.yaml"
        path.write_text("policy: mini-policy\nversion: 1.0.0\nfacts:\n  - name: a\n   type: answer\n")
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        error = caught.value
        assert error.message.startswith("not valid YAML: expected <block end>")
        assert (error.path, error.rule_id, error.line) == (str(path), "", 5)
        assert str(error).startswith(f"{path}:5: not valid YAML")

    def test_unclosed_flow_list(self, tmp_path: Path) -> None:
        """An unclosed ``[`` is reported where the parser noticed it."""
        path = tmp_path / "bad.yaml"
        path.write_text("policy: mini-policy\nfacts: [a, b\nrules: []\n")
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        assert caught.value.message.startswith("not valid YAML")
        assert caught.value.line == 3

    def test_non_utf8(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are refused as such, without a line."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes("policy: caf\u00e9\n".encode("latin-1"))
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        error = caught.value
        assert (error.message, error.path, error.line) == ("not UTF-8 text", str(path), None)

    @pytest.mark.parametrize(
        "text", ["- policy: x\n", "just text\n", "42\n", "", "# only a comment\n", "null\n"]
    )
    def test_not_a_mapping(self, tmp_path: Path, text: str) -> None:
        """A document that is not a mapping (list, scalar, empty) is refused."""
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        assert caught.value.message == "a policy file must be a mapping of keys"
        assert (caught.value.path, caught.value.rule_id, caught.value.line) == (str(path), "", None)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a PolicyFileError naming it, not an OSError."""
        path = tmp_path / "absent.yaml"
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        assert caught.value.message == "cannot read: No such file or directory"
        assert caught.value.path == str(path)

    def test_python_tags_are_refused(self, tmp_path: Path) -> None:
        """The loader is safe: a python/object tag is a YAML error, never constructed."""
        path = tmp_path / "policy.yaml"
        path.write_text("policy: !!python/object/apply:os.system ['true']\n")
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        assert caught.value.message.startswith("not valid YAML")
        assert caught.value.line == 1


# --- top-level keys -----------------------------------------------------------------------


class TestTopLevel:
    """Errors in the policy's own keys point at the top-level mapping."""

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: d.update(owner="me"), "unknown key(s) owner"),
            (lambda d: d.update(zeta=1, alpha=2), "unknown key(s) alpha, zeta"),
            (lambda d: d.update(policy="Mini_Policy"), f"policy name 'Mini_Policy' {NAME_FORM}"),
            (lambda d: d.update(policy="m"), f"policy name 'm' {NAME_FORM}"),
            (lambda d: d.update(policy="-mini"), f"policy name '-mini' {NAME_FORM}"),
            (lambda d: d.pop("policy"), "missing 'policy'"),
            (lambda d: d.update(policy=["a"]), "'policy' must be text"),
            (lambda d: d.update(version="1.2"), f"version '1.2' {SEMVER}"),
            (lambda d: d.update(version="01.2.3"), f"version '01.2.3' {SEMVER}"),
            (lambda d: d.update(version="1.2.3-rc1"), f"version '1.2.3-rc1' {SEMVER}"),
            (lambda d: d.update(version="v1.2.3"), f"version 'v1.2.3' {SEMVER}"),
            (lambda d: d.update(version=1.2), f"version '1.2' {SEMVER}"),
            (lambda d: d.pop("version"), "missing 'version'"),
            (lambda d: d.update(status="published"), "status must be one of active, draft, retired"),
            (lambda d: d.update(status="Active"), "status must be one of active, draft, retired"),
            (lambda d: d.update(effective_from="1 March 2018"), "effective_from must be a date YYYY-MM-DD"),
            (lambda d: d.pop("title"), "missing 'title'"),
            (lambda d: d.update(title=True), "'title' must be text"),
            (lambda d: d.pop("facts"), "missing 'facts'"),
            (lambda d: d.pop("pathways"), "missing 'pathways'"),
            (lambda d: d.pop("rules"), "missing 'rules'"),
            (lambda d: d.update(facts={"name": "x"}), "'facts' must be a list of entries"),
            (lambda d: d.update(rules=["r1"]), "'rules' must be a list of entries"),
            (lambda d: d.update(advice="none"), "'advice' must be a list of entries"),
        ],
    )
    def test_error(self, tmp_path: Path, mutate: Mutation, message: str) -> None:
        """The message is exact and the line is that of the top-level mapping."""
        path, error = broken(tmp_path, mutate)
        assert error.message == message
        assert (error.path, error.rule_id, error.line) == (str(path), "", TOP)

    def test_effective_from_stays_text(self, tmp_path: Path) -> None:
        """An unquoted YAML date is kept as ISO text, not turned into a date object."""
        path = write_policy(tmp_path / "policy.yaml", minimal_policy())
        text = path.read_text()
        path.write_text(text.replace("effective_from: '2020-01-01'", "effective_from: 2020-01-01"))
        assert "effective_from: 2020-01-01\n" in path.read_text()
        assert load_file(path).effective_from == "2020-01-01"

    def test_no_rules(self, tmp_path: Path) -> None:
        """An empty rule list is refused (there would be no walk)."""
        path, error = broken(tmp_path, lambda d: d.update(rules=[]))
        assert error.message == "a policy needs at least one rule"
        assert (error.path, error.rule_id) == (str(path), "")


# --- facts ----------------------------------------------------------------------------------


class TestFactDeclarations:
    """Fact declarations: names, types, values; errors point at the fact's entry."""

    @pytest.mark.parametrize(
        ("fact", "message"),
        [
            ({"name": "Intent", "type": "answer"}, "fact name 'Intent' must be lower_snake_case"),
            ({"name": "has-dash", "type": "answer"}, "fact name 'has-dash' must be lower_snake_case"),
            ({"name": "1st", "type": "answer"}, "fact name '1st' must be lower_snake_case"),
            ({"name": "type", "type": "answer"}, "fact name 'type' is reserved"),
            ({"name": "id", "type": "answer"}, "fact name 'id' is reserved"),
            ({"name": "pathway", "type": "enum", "values": ["A"]}, "fact name 'pathway' is reserved"),
            ({"name": "status", "type": "answer"}, "fact name 'status' is reserved"),
            ({"name": "individual_directed", "type": "bool"}, "fact name 'individual_directed' is reserved"),
            ({"name": "answered", "type": "answer"}, "fact name 'answered' is reserved"),
            ({"name": "ethnicity", "type": "string"}, f"fact 'ethnicity' {PROTECTED}"),
            ({"name": "equality_group", "type": "enum", "values": ["A"]},
             f"fact 'equality_group' {PROTECTED}"),
            ({"name": "age", "type": "number"}, f"fact 'age' {PROTECTED}"),
            ({"name": "intent_to_harm", "type": "answer"}, "fact 'intent_to_harm' declared twice"),
            ({"name": "grade", "type": "integer"}, f"fact 'grade': {TYPES}"),
            ({"name": "grade"}, "missing 'type'"),
            ({"name": "grade", "type": "enum"}, "enum fact 'grade' needs a list of values"),
            ({"name": "grade", "type": "enum", "values": []}, "enum fact 'grade' needs a list of values"),
            ({"name": "grade", "type": "enum", "values": "A, B"}, "enum fact 'grade' needs a list of values"),
            ({"name": "grade", "type": "enum", "values": ["a"]}, f"enum fact 'grade': {CODES}"),
            ({"name": "grade", "type": "enum", "values": ["A-1"]}, f"enum fact 'grade': {CODES}"),
            ({"name": "grade", "type": "enum", "values": ["A", "A"]}, f"enum fact 'grade': {CODES}"),
            ({"name": "grade", "type": "enum", "values": [1]}, f"enum fact 'grade': {CODES}"),
            ({"name": "grade", "type": "answer", "values": ["A"]},
             "fact 'grade': only enum and set facts declare values"),
            ({"name": "grade", "type": "bool", "sensitive": "y"},
             "fact 'grade': sensitive must be true or false"),
        ],
    )
    def test_error(self, tmp_path: Path, fact: dict[str, Any], message: str) -> None:
        """The message is exact and the line is that of the offending fact entry."""
        path, error = broken(tmp_path, add_fact(**fact))
        assert error.message == message
        assert error.path == str(path)
        assert error.rule_id == ""
        # The added fact is the last "- name:" of its value in the facts section.
        lines = path.read_text().splitlines()
        starts = [n for n, text in enumerate(lines, start=1) if text == f"- name: {fact['name']}"]
        assert error.line == starts[-1]

    def test_missing_question(self, tmp_path: Path) -> None:
        """Every fact needs the question that asks for it."""
        path, error = broken(tmp_path, lambda d: d["facts"].append({"name": "grade", "type": "answer"}))
        assert error.message == "missing 'question'"
        assert error.line == line_of(path, "- name: grade")

    def test_every_protected_characteristic_is_refused(self, tmp_path: Path) -> None:
        """No protected characteristic can be declared as a fact, whatever its type."""
        for name in sorted(PROTECTED_FACTS):
            _, error = broken(tmp_path, add_fact(name=name, type="string"))
            assert error.message == f"fact {name!r} {PROTECTED}"

    def test_yaml_yes_no_as_enum_values_are_refused(self, tmp_path: Path) -> None:
        """Unquoted YES/NO are YAML booleans: refused as codes rather than silently renamed."""
        path = write_policy(tmp_path / "policy.yaml", minimal_policy())
        text = path.read_text().replace("  - LOW\n  - HIGH\n", "  - YES\n  - NO\n")
        path.write_text(text)
        with pytest.raises(PolicyFileError) as caught:
            load_file(path)
        assert caught.value.message == "enum fact 'severity': values must be distinct UPPER_CASE codes"

    def test_too_many_facts(self, tmp_path: Path) -> None:
        """More than 200 facts is refused (durable_rules caps the fields of a fact)."""
        def mutate(document: dict[str, Any]) -> None:
            document["facts"].extend({"name": f"f{i}", "type": "bool", "question": "?"} for i in range(200))

        path, error = broken(tmp_path, mutate)
        assert error.message == "at most 200 facts per policy"
        assert error.path == str(path)

    def test_declared_enum_values_are_kept_in_order(self, tmp_path: Path) -> None:
        """An enum keeps its codes as declared; a bool/number/string fact has none."""
        _, policy = load_mutated(tmp_path, lambda d: None)
        assert policy.facts["severity"].values == ("LOW", "HIGH")
        assert policy.facts["years"].values == ()

    def test_sensitive_flag(self, tmp_path: Path) -> None:
        """``sensitive: true`` is kept; the default is false."""
        _, policy = load_mutated(tmp_path, add_fact(name="health", type="answer", sensitive=True))
        assert policy.facts["health"].sensitive is True
        assert policy.facts["intent_to_harm"].sensitive is False


class TestPathways:
    """Pathway declarations."""

    @pytest.mark.parametrize(
        ("pathway", "message"),
        [
            ({"code": "act_now"}, "pathway code 'act_now' must be an UPPER_CASE code"),
            ({"code": "ACT"}, "pathway 'ACT' declared twice"),
            ({"code": "WAIT"}, "pathway 'WAIT': individual_directed must be true or false"),
            ({"code": "WAIT", "individual_directed": "x"},
             "pathway 'WAIT': individual_directed must be true or false"),
            ({"code": "WAIT", "individual_directed": False}, "missing 'title'"),
            ({"code": "WAIT", "individual_directed": False, "title": "Wait"}, "missing 'recommendation'"),
        ],
    )
    def test_error(self, tmp_path: Path, pathway: dict[str, Any], message: str) -> None:
        """The message is exact and the line is that of the pathway entry."""
        path, error = broken(tmp_path, lambda d: d["pathways"].append(pathway))
        assert error.message == message
        lines = path.read_text().splitlines()
        starts = [n for n, text in enumerate(lines, start=1) if text == f"- code: {pathway['code']}"]
        assert error.line == starts[-1]


# --- conditions -------------------------------------------------------------------------------


class TestConditions:
    """Conditions must parse and be well typed against the declarations."""

    @pytest.mark.parametrize(
        ("rule_id", "when", "problem"),
        [
            ("r2", "years >=", "expected a value (a CODE, a number, true/false or a quoted string), "
                               "found end of condition (column 9)"),
            ("r2", "undeclared is YES", "fact 'undeclared' is not declared"),
            ("r1", "intent_to_harm is MAYBE", "'MAYBE' is not one of intent_to_harm's values"),
            ("r1", "intent_to_harm is UNKNOWN",
             f"'UNKNOWN' is not one of intent_to_harm's values {UNKNOWN_HINT}"),
            ("r1", "intent_to_harm in [YES, UNKNOWN]",
             f"'UNKNOWN' is not one of intent_to_harm's values {UNKNOWN_HINT}"),
            ("r1", "intent_to_harm is true", "'true' is not a value 'intent_to_harm' can take"),
            ("r2", "severity is MEDIUM", "'MEDIUM' is not one of severity's values"),
            ("r2", "severity not in [LOW, MEDIUM]", "'MEDIUM' is not one of severity's values"),
            ("r2", "severity < 3", "'<' compares numbers, and 'severity' is not a number"),
            ("r2", "note >= 3", "'>=' compares numbers, and 'note' is not a number"),
            ("r2", "on_duty > 0", "'>' compares numbers, and 'on_duty' is not a number"),
            ("r2", "years is YES", "'YES' is not a value 'years' can take"),
            ("r2", "years is '3'", "'3' is not a value 'years' can take"),
            ("r2", "on_duty is YES", "'YES' is not a value 'on_duty' can take"),
            ("r2", "on_duty is 1", "'1' is not a value 'on_duty' can take"),
            ("r2", "note is 3", "'3' is not a value 'note' can take"),
            ("r2", "note = hello", "compare text with 'is' / 'is not' ('note')"),
            ("r2", "pathway is ACT", "'pathway' is the walk's outcome: only advice rules may read it"),
            ("r2", "status is answered", "'status' is the walk's outcome: only advice rules may read it"),
            ("c1", "pathway is ACT", "'pathway' is the walk's outcome: only advice rules may read it"),
            ("c1", "individual_directed is true", "'individual_directed' is the walk's outcome: "
                                                  "only advice rules may read it"),
            ("a1", "pathway is WAIT", "'WAIT' is not one of pathway's values"),
            ("a1", "individual_directed is YES", "'YES' is not a value 'individual_directed' can take"),
            ("a1", "status is DONE", "'DONE' is not one of status's values"),
            ("a1", "pathway < 2", "'<' compares numbers, and 'pathway' is not a number"),
        ],
    )
    def test_error(self, tmp_path: Path, rule_id: str, when: str, problem: str) -> None:
        """The message quotes the condition and the problem, with the rule id and its line."""
        path, error = broken(tmp_path, set_when(rule_id, when))
        assert error.message == f"condition {when!r}: {problem}"
        assert (error.path, error.rule_id) == (str(path), rule_id)
        assert error.line == line_of(path, f"- id: {rule_id}")
        assert f":{error.line} rule {rule_id}: condition" in str(error)

    @pytest.mark.parametrize(
        ("rule_id", "when"),
        [
            ("a1", "pathway in [ACT, LEARN]"),
            ("a1", "pathway is unanswered and status is NEEDS_INFORMATION"),
            ("a1", "individual_directed is true and years >= 2"),
            ("a1", "status is DECIDED"),
            ("c1", "years < 2.5 and on_duty is false"),
            ("r2", "severity is HIGH or severity is unanswered"),
            ("r2", "note is 'hello world' or note is not answered"),
            ("r2", "stage is OPEN"),
            ("c1", "intent_to_harm is answered"),
        ],
    )
    def test_allowed(self, tmp_path: Path, rule_id: str, when: str) -> None:
        """Well-typed conditions load, and advice may read the outcome."""
        _, policy = load_mutated(tmp_path, set_when(rule_id, when))
        found = {r.id: r for r in (*policy.rules, *policy.advice, *policy.checks)}[rule_id]
        assert found.condition == cond.parse(when)
        assert found.condition_text == when

    def test_declared_unknown_enum_code_is_a_value(self, tmp_path: Path) -> None:
        """An enum that declares UNKNOWN may test for it: for enums it is an answer, not a gap."""
        _, policy = load_mutated(tmp_path, set_when("r2", "stage is UNKNOWN"))
        assert policy.rules_by_id["r2"].condition == cond.Compare("stage", "is", "UNKNOWN")

    def test_undeclared_unknown_enum_code_is_refused(self, tmp_path: Path) -> None:
        """An enum without a declared UNKNOWN refuses it, with the 'is unanswered' hint."""
        _, error = broken(tmp_path, set_when("r2", "severity is UNKNOWN"))
        expected = (
            f"condition 'severity is UNKNOWN': 'UNKNOWN' is not one of severity's values {UNKNOWN_HINT}"
        )
        assert error.message == expected

    def test_missing_condition(self, tmp_path: Path) -> None:
        """A rule without ``when`` is refused with its id."""
        path, error = broken(tmp_path, lambda d: rule(d, "r2").pop("when"))
        assert error.message == "missing 'when'"
        assert (error.rule_id, error.line) == ("r2", line_of(path, "- id: r2"))

    def test_condition_whitespace_is_collapsed(self, tmp_path: Path) -> None:
        """A multi-line condition is stored as one line."""
        _, policy = load_mutated(tmp_path, set_when("c1", "years >= 2\n   and\ton_duty is true"))
        assert policy.checks[0].condition_text == "years >= 2 and on_duty is true"

    def test_syntax_error_column_counts_in_the_collapsed_text(self, tmp_path: Path) -> None:
        """The column reported refers to the condition as quoted in the message."""
        _, error = broken(tmp_path, set_when("r2", "years  >=  2  and"))
        assert error.message == (
            "condition 'years >= 2 and': expected a fact name, found end of condition (column 15)"
        )

    def test_numeric_when_is_text(self, tmp_path: Path) -> None:
        """A bare YAML number as a condition is read as text and fails to parse, not crashes."""
        _, error = broken(tmp_path, set_when("r2", 3))
        assert error.message.startswith("condition '3': expected a fact name, found '3'")


# --- walk rules ------------------------------------------------------------------------------


class TestWalkRules:
    """Targets, ids, questions and reachability of the walk."""

    @pytest.mark.parametrize(
        ("key", "target", "message"),
        [
            ("else", "go to r9", "else: there is no rule 'r9'"),
            ("then", "pathway WAIT", "then: pathway 'WAIT' is not declared"),
            ("then", "pathway WAIT (why)", "then: pathway 'WAIT' is not declared"),
            ("else", "goto r2", f"else {TARGET_FORM} 'goto r2'"),
            ("then", "ACT", f"then {TARGET_FORM} 'ACT'"),
            ("then", "pathway act", f"then {TARGET_FORM} 'pathway act'"),
            ("then", "pathway ACT (a (b))", f"then {TARGET_FORM} 'pathway ACT (a (b))'"),
            ("then", "pathway ACT ()", f"then {TARGET_FORM} 'pathway ACT ()'"),
            ("then", "go to", f"then {TARGET_FORM} 'go to'"),
            ("then", "go to r2 now", f"then {TARGET_FORM} 'go to r2 now'"),
        ],
    )
    def test_bad_target_on_first_rule(self, tmp_path: Path, key: str, target: str, message: str) -> None:
        """A bad ``then``/``else`` on r1 names r1 and its line."""
        path, error = broken(tmp_path, lambda d: rule(d, "r1").__setitem__(key, target))
        assert error.message == message
        assert (error.path, error.rule_id, error.line) == (str(path), "r1", line_of(path, "- id: r1"))

    def test_missing_target(self, tmp_path: Path) -> None:
        """A walk rule without ``else`` is refused."""
        path, error = broken(tmp_path, lambda d: rule(d, "r2").pop("else"))
        assert error.message == "missing 'else'"
        assert (error.rule_id, error.line) == ("r2", line_of(path, "- id: r2"))

    def test_target_pointing_backwards(self, tmp_path: Path) -> None:
        """A rule may not lead to an earlier rule (the walk must end)."""
        path, error = broken(tmp_path, lambda d: rule(d, "r2").__setitem__("else", "go to r1"))
        assert error.message == "else: 'go to r1' points back; rules may only lead forward"
        assert (error.rule_id, error.line) == ("r2", line_of(path, "- id: r2"))

    def test_target_pointing_at_itself(self, tmp_path: Path) -> None:
        """A rule may not lead to itself."""
        _, error = broken(tmp_path, lambda d: rule(d, "r2").__setitem__("then", "go to r2"))
        assert error.message == "then: 'go to r2' points back; rules may only lead forward"
        assert error.rule_id == "r2"

    def test_target_to_advice_is_not_a_rule(self, tmp_path: Path) -> None:
        """``go to`` can only name a walk rule, not an advice rule or check."""
        _, error = broken(tmp_path, lambda d: rule(d, "r2").__setitem__("then", "go to a1"))
        assert error.message == "then: there is no rule 'a1'"

    def test_sub_reason_is_kept(self, tmp_path: Path) -> None:
        """``pathway CODE (text)`` keeps the sub-reason; without it the sub-reason is empty."""
        _, policy = load_mutated(tmp_path, lambda d: None)
        assert policy.rules_by_id["r1"].then == Target(pathway="ACT", sub_reason="intent")
        assert policy.rules_by_id["r1"].otherwise == Target(rule="r2")
        assert policy.rules_by_id["r2"].then == Target(pathway="ACT")

    @pytest.mark.parametrize(
        ("section", "index", "new_id"),
        [("rules", 1, "r1"), ("advice", 0, "r1"), ("checks", 0, "r2"), ("checks", 0, "a1")],
    )
    def test_duplicate_id(self, tmp_path: Path, section: str, index: int, new_id: str) -> None:
        """Ids are unique across walk rules, advice and checks; the later entry is blamed."""
        path, error = broken(tmp_path, lambda d: d[section][index].__setitem__("id", new_id))
        expected_line = max(
            n for n, text in enumerate(path.read_text().splitlines(), start=1) if text == f"- id: {new_id}"
        )
        assert error.message == f"rule id {new_id!r} used twice"
        assert (error.path, error.rule_id, error.line) == (str(path), new_id, expected_line)

    @pytest.mark.parametrize("bad_id", ["r 1", "-r1", "r1!", "r" * 33, ""])
    def test_bad_rule_id(self, tmp_path: Path, bad_id: str) -> None:
        """A rule id must be a short token of letters, digits, '.', '_' or '-'."""
        path, error = broken(tmp_path, lambda d: rule(d, "c1").__setitem__("id", bad_id))
        assert error.message == f"rule id {bad_id!r} must be letters, digits, '.', '_' or '-'"
        assert error.line == line_of(path, "text: Severe but no intent.") - 1

    def test_missing_rule_id(self, tmp_path: Path) -> None:
        """A check without an id is refused at its entry."""
        path, error = broken(tmp_path, lambda d: rule(d, "c1").pop("id"))
        assert error.message == "missing 'id'"
        assert error.line == line_of(path, "- text: Severe but no intent.")

    def test_several_facts_need_a_question(self, tmp_path: Path) -> None:
        """A rule reading more than one fact must word its own question."""
        path, error = broken(tmp_path, set_when("r2", "years >= 2 and on_duty is true"))
        assert error.message == "a rule reading several facts needs its own 'question'"
        assert (error.rule_id, error.line) == ("r2", line_of(path, "- id: r2"))

    def test_own_question_is_used(self, tmp_path: Path) -> None:
        """With its own question a multi-fact rule loads and keeps it."""
        def mutate(document: dict[str, Any]) -> None:
            rule(document, "r2").update(when="years >= 2 and on_duty is true", question="Senior, on duty?")

        _, policy = load_mutated(tmp_path, mutate)
        assert policy.rules_by_id["r2"].question == "Senior, on duty?"

    def test_single_fact_rule_borrows_the_fact_question(self, tmp_path: Path) -> None:
        """A rule reading one fact (possibly twice) asks that fact's question."""
        _, policy = load_mutated(tmp_path, set_when("r2", "years >= 2 and years < 40"))
        assert policy.rules_by_id["r2"].question == "Years qualified?"

    def test_unreachable_rule(self, tmp_path: Path) -> None:
        """A rule no answer leads to is refused, with its id and line."""
        def mutate(document: dict[str, Any]) -> None:
            rule(document, "r1")["else"] = "pathway LEARN"

        path, error = broken(tmp_path, mutate)
        assert error.message == "no answer leads to this rule"
        assert (error.path, error.rule_id, error.line) == (str(path), "r2", line_of(path, "- id: r2"))

    def test_reached_only_through_a_later_rule_is_unreachable(self, tmp_path: Path) -> None:
        """Reachability follows the walk from the first rule, not any mention."""
        def mutate(document: dict[str, Any]) -> None:
            rule(document, "r1")["else"] = "go to r3"
            document["rules"].append(
                {"id": "r3", "title": "Duty", "when": "on_duty is true", "then": "pathway ACT",
                 "else": "pathway LEARN"}
            )

        _, error = broken(tmp_path, mutate)
        assert (error.message, error.rule_id) == ("no answer leads to this rule", "r2")


class TestAdvice:
    """Advice entries."""

    def test_bad_code(self, tmp_path: Path) -> None:
        """An advice code must be an UPPER_CASE code."""
        path, error = broken(tmp_path, lambda d: rule(d, "a1").__setitem__("code", "hr advice"))
        assert error.message == "advice code 'hr advice' must be an UPPER_CASE code"
        assert (error.rule_id, error.line) == ("a1", line_of(path, "- id: a1"))

    def test_missing_text(self, tmp_path: Path) -> None:
        """Advice without text is refused."""
        _, error = broken(tmp_path, lambda d: rule(d, "a1").pop("text"))
        assert (error.message, error.rule_id) == ("missing 'text'", "a1")

    def test_check_missing_text(self, tmp_path: Path) -> None:
        """A check without text is refused."""
        _, error = broken(tmp_path, lambda d: rule(d, "c1").pop("text"))
        assert (error.message, error.rule_id) == ("missing 'text'", "c1")


class TestErrorText:
    """str(PolicyFileError) reads ``path:line rule id: message``."""

    def test_full_location(self) -> None:
        """All parts present."""
        error = PolicyFileError("boom", path="p.yaml", rule_id="r1", line=7)
        assert str(error) == "p.yaml:7 rule r1: boom"

    def test_no_location(self) -> None:
        """Nothing known: the placeholder path."""
        assert str(PolicyFileError("boom")) == "<policy>: boom"
