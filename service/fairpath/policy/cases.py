"""Run the test cases stored beside a policy version, and measure their coverage.

A policy version ``policies/<name>/<version>.yaml`` keeps its cases in
``<version>.tests.yaml``::

    policy: nhs-just-culture-guide
    version: 1.0.0
    cases:
      - name: deliberate harm exits at A
        facts: {is_patient_safety_incident: "YES", ...}
        expect:
          status: DECIDED                    # or NEEDS_INFORMATION
          pathway: JCG_A_DELIBERATE_HARM     # "" when NEEDS_INFORMATION
          sub_reason: ""
          fired: [G1, G2, 1a]                # walk rules whose condition held, in order
          missing: []                        # unanswered facts named (NEEDS_INFORMATION)
          advice: [WIDER_INVESTIGATION_REQUIRED, ...]   # exact set of advice codes
          warnings: []                       # exact set of check ids
          advice_rules_include: [advice-x]   # optional: rules that must have produced advice

The same runner serves ``fairpath policy test``, ``ValidatePolicy``, the
reload gate (a version serves only once its own cases pass) and the test suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fairpath.decisions import Decision, RuleKind, RuleResult
from fairpath.engine.compiler import compile_policy
from fairpath.errors import FairpathError, PolicyFileError
from fairpath.policy.model import Policy
from fairpath.policy.registry import TESTS_SUFFIX

_EXPECT_KEYS = {"status", "pathway", "sub_reason", "fired", "missing", "advice", "warnings", "advice_rules_include"}

Evaluate = Callable[[Mapping[str, object]], Decision]


@dataclass(frozen=True)
class CaseResult:
    """One case: passed, or the differences found."""

    name: str
    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class CoverageItem:
    """How often one rule outcome, advice, check or pathway was exercised."""

    item: str  # "3a:FIRED", "advice-x:FIRED", "pathway:CODE"
    kind: str  # rule | advice | check | pathway
    hits: int


@dataclass(frozen=True)
class CasesReport:
    """The results of a policy version's cases, with coverage."""

    policy: str
    cases: tuple[CaseResult, ...]
    coverage: tuple[CoverageItem, ...]

    @property
    def passed(self) -> int:
        """Cases that passed."""
        return sum(case.passed for case in self.cases)

    @property
    def failed(self) -> int:
        """Cases that failed."""
        return len(self.cases) - self.passed

    @property
    def uncovered(self) -> tuple[CoverageItem, ...]:
        """Rule outcomes, advice, checks and pathways no case exercised."""
        return tuple(item for item in self.coverage if item.hits == 0)

    @property
    def ok(self) -> bool:
        """Every case passed and everything was exercised."""
        return bool(self.cases) and self.failed == 0 and not self.uncovered


def cases_file(policy_path: str | Path) -> Path:
    """Where the cases of a policy file live."""
    path = Path(policy_path)
    return path.with_name(path.name.removesuffix(".yaml") + TESTS_SUFFIX)


def load_cases(text: str | bytes, policy: Policy, path: str = "<tests>") -> list[dict[str, Any]]:
    """Parse and check a tests file for ``policy``; raises :class:`PolicyFileError`."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyFileError(f"tests are not valid YAML: {error}", path=path) from error
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise PolicyFileError("a tests file is a mapping with a list of 'cases'", path=path)
    if (document.get("policy"), str(document.get("version"))) != (policy.name, policy.version):
        raise PolicyFileError(f"tests are for {document.get('policy')}@{document.get('version')}, "
                              f"not {policy.key}", path=path)
    cases: list[dict[str, Any]] = document["cases"]
    for index, case in enumerate(cases):
        where = f"case {index + 1}"
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            raise PolicyFileError(f"{where}: needs a 'name'", path=path)
        if not isinstance(case.get("facts", {}), dict) or not isinstance(case.get("expect"), dict):
            raise PolicyFileError(f"{where} ({case['name']}): needs 'facts' and 'expect' mappings", path=path)
        unknown = set(case["expect"]) - _EXPECT_KEYS
        if unknown:
            raise PolicyFileError(f"{where} ({case['name']}): unknown expect key(s) {sorted(unknown)}", path=path)
    return cases


def check_case(case: Mapping[str, Any], decision: Decision) -> tuple[str, ...]:
    """The differences between a case's expectation and ``decision`` (empty when it passes)."""
    expect = case["expect"]
    failures = []

    def compare(what: str, got: object, want: object) -> None:
        if got != want:
            failures.append(f"{what}: expected {want!r}, got {got!r}")

    compare("status", decision.status.value, expect.get("status", "DECIDED"))
    compare("pathway", decision.pathway.code if decision.pathway else "", expect.get("pathway") or "")
    compare("sub_reason", decision.pathway.sub_reason if decision.pathway else "", str(expect.get("sub_reason") or ""))
    fired = [t.rule_id for t in decision.trace if t.kind is RuleKind.QUESTION and t.result is RuleResult.FIRED]
    compare("fired", fired, [str(rule) for rule in expect.get("fired") or []])
    compare("missing", [m.fact for m in decision.missing_facts], list(expect.get("missing") or []))
    compare("advice", sorted({a.code for a in decision.advice}), sorted(set(expect.get("advice") or [])))
    compare("warnings", sorted({w.code for w in decision.warnings}), sorted(set(expect.get("warnings") or [])))
    absent = set(expect.get("advice_rules_include") or []) - {a.rule_id for a in decision.advice}
    if absent:
        failures.append(f"advice rules not fired: {sorted(absent)}")
    return tuple(failures)


def coverage_items(policy: Policy) -> list[tuple[str, str]]:
    """Everything a policy's cases must exercise: (item, kind).

    A rule must be seen unanswered only where the walk can stop there: not when
    every fact it needs was already needed by an earlier step on every path.
    """
    stops = {terminal.unanswered_rule for terminal in compile_policy(policy).terminals}
    items = [
        (f"{rule.id}:{result}", "rule")
        for rule in policy.rules
        for result in ("FIRED", "NOT_FIRED", "UNANSWERED")
        if result != "UNANSWERED" or rule.id in stops
    ]
    items += [(f"{rule.id}:FIRED", "advice") for rule in policy.advice]
    items += [(f"{rule.id}:FIRED", "check") for rule in policy.checks]
    items += [(f"pathway:{code}", "pathway") for code in policy.pathways]
    return items


def run_cases(policy: Policy, cases: list[dict[str, Any]], evaluate: Evaluate) -> CasesReport:
    """Evaluate every case with ``evaluate`` and compare; count coverage."""
    hits = dict.fromkeys((item for item, _ in coverage_items(policy)), 0)
    results = []
    for case in cases:
        try:
            decision = evaluate(case.get("facts") or {})
        except FairpathError as error:
            results.append(CaseResult(case["name"], False, (f"evaluation failed: {error}",)))
            continue
        failures = check_case(case, decision)
        results.append(CaseResult(case["name"], not failures, failures))
        for entry in decision.trace:
            key = f"{entry.rule_id}:{entry.result.value}"
            if key in hits:
                hits[key] += 1
        if decision.pathway and f"pathway:{decision.pathway.code}" in hits:
            hits[f"pathway:{decision.pathway.code}"] += 1
    coverage = tuple(CoverageItem(item, kind, hits[item]) for item, kind in coverage_items(policy))
    return CasesReport(policy.key, tuple(results), coverage)
