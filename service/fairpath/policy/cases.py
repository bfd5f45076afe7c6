"""The test cases stored beside a policy version: where they live, their format, their results.

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

Cases are part of the policy format: they gate what is served. They are run by
:mod:`fairpath.serving.gate`, the one runner behind the reload gate (a version serves only once its
own cases pass), ``fairpath policy test``, ``ValidatePolicy`` and the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fairpath.errors import PolicyFileError
from fairpath.policy.model import Policy
from fairpath.policy.registry import TESTS_SUFFIX

_EXPECT_KEYS = {"status", "pathway", "sub_reason", "fired", "missing", "advice", "warnings", "advice_rules_include"}


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
