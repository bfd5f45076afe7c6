"""Check a request's facts against a policy's declarations and normalise them.

The engine must only ever see values of the declared type: durable_rules
compares mismatched types as strings (``"10" > 3`` is false) and chokes on
nulls. Every problem is reported at once, one field violation per bad fact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fairpath.errors import FieldViolation, InvalidFactsError
from fairpath.policy.conditions import Value
from fairpath.policy.model import NUMBER_RANGE, FactType, Policy, number_in_range

MAX_FACTS = 256
MAX_STRING = 1000
_MAX_NAME_SHOWN = 64


def _field(name: str) -> str:
    shown = name if len(name) <= _MAX_NAME_SHOWN else name[:_MAX_NAME_SHOWN] + "…"
    return f"facts.{shown}"


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "text" if isinstance(value, str) else type(value).__name__


def normalise_facts(policy: Policy, facts: Mapping[str, object]) -> dict[str, Value]:
    """Validated facts ready for the engine: unanswered ones (absent, null, UNKNOWN) removed.

    Raises:
        InvalidFactsError: with one violation per undeclared fact, wrong type or
            value outside the allowed set.
    """
    if len(facts) > MAX_FACTS:
        raise InvalidFactsError([FieldViolation("facts", f"at most {MAX_FACTS} facts, got {len(facts)}")])
    clean: dict[str, Value] = {}
    violations: list[FieldViolation] = []
    for name, value in facts.items():
        spec = policy.facts.get(name)
        if spec is None:
            violations.append(FieldViolation(_field(name), f"not a fact of {policy.key}"))
            continue
        if value is None:
            continue
        problem = ""
        if spec.type in (FactType.ANSWER, FactType.ENUM):
            if not isinstance(value, str) or value not in spec.values:
                shown = ", ".join(spec.values)
                problem = f"must be one of {shown}" + ("" if isinstance(value, str) else f", got {_kind(value)}")
            elif value != "UNKNOWN" or spec.type is FactType.ENUM:
                clean[name] = value
        elif spec.type is FactType.SET:
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value) and set(value) <= set(
                spec.values
            ) and len(set(value)) == len(value):
                chosen = set(value)
                clean[name] = tuple(code for code in spec.values if code in chosen)
            else:
                problem = f"must be a list of distinct codes from {', '.join(spec.values)}"
        elif spec.type is FactType.BOOL:
            if isinstance(value, bool):
                clean[name] = value
            else:
                problem = f"must be true or false, got {_kind(value)}"
        elif spec.type is FactType.NUMBER:
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                if number_in_range(float(value)):
                    clean[name] = float(value)
                else:
                    problem = f"must be {NUMBER_RANGE}"
            else:
                problem = f"must be a finite number, got {_kind(value)}"
        elif isinstance(value, str) and len(value) <= MAX_STRING:
            clean[name] = value
        else:
            problem = f"must be text of at most {MAX_STRING} characters, got {_kind(value)}"
        if problem:
            violations.append(FieldViolation(_field(name), problem))
    if violations:
        raise InvalidFactsError(violations)
    return clean
