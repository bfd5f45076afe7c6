"""Check a request's facts against a policy's declarations and normalise them.

The engine must only ever see values of the declared type: durable_rules
compares mismatched types as strings (``"10" > 3`` is false) and chokes on
nulls. Every problem is reported at once, one field violation per bad fact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import cast

from fairpath.echo import prefix
from fairpath.errors import FieldViolation, InvalidFactsError
from fairpath.policy.conditions import Value
from fairpath.policy.model import NUMBER_RANGE, FactSpec, FactType, Policy, number_in_range
from fairpath.suggest import did_you_mean

MAX_FACTS = 256
MAX_STRING = 1000
#: Longest fact name (the loader allows 63 characters); a longer one cannot be a fact of any policy.
MAX_FACT_NAME = 64
#: Undeclared fact names per request for which the closest declared fact is suggested.
MAX_SUGGESTIONS = 10


def _field(name: str) -> str:
    """Return the violation field of fact ``name``, the name cut short if it is longer than any fact's."""
    return f"facts.{prefix(name, MAX_FACT_NAME)}"


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


class _Unanswered:
    """Returned by a reader for a value that counts as unanswered (an answer of UNKNOWN)."""


_UNANSWERED = _Unanswered()


def _read_code(spec: FactSpec, value: object) -> tuple[Value | _Unanswered, str]:
    if not isinstance(value, str) or value not in spec.values:
        got = "" if isinstance(value, str) else f", got {_kind(value)}"
        return _UNANSWERED, f"must be one of {', '.join(spec.values)}{got}{_code_hint(spec, value)}"
    if value == "UNKNOWN" and spec.type is FactType.ANSWER:
        return _UNANSWERED, ""
    return value, ""


def _code_hint(spec: FactSpec, value: object) -> str:
    """How to fix a wrong code: its upper-case form when that is declared, else the closest code."""
    if not isinstance(value, str):
        return ""
    if value.upper() in spec.values:
        kind = "answers" if spec.type is FactType.ANSWER else "codes"
        return f"; {kind} are upper case: {value.upper()}"
    suggestion = did_you_mean(value, spec.values)
    return f"; {suggestion}" if suggestion else ""


def _read_set(spec: FactSpec, value: object) -> tuple[Value | _Unanswered, str]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        chosen = set(value)
        if chosen <= set(spec.values) and len(chosen) == len(value):
            return tuple(code for code in spec.values if code in chosen), ""
    return _UNANSWERED, f"must be a list of distinct codes from {', '.join(spec.values)}"


def _read_bool(spec: FactSpec, value: object) -> tuple[Value | _Unanswered, str]:
    if isinstance(value, bool):
        return value, ""
    return _UNANSWERED, f"must be true or false, got {_kind(value)}"


def _read_number(spec: FactSpec, value: object) -> tuple[Value | _Unanswered, str]:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return _UNANSWERED, f"must be a finite number, got {_kind(value)}"
    if not number_in_range(float(value)):
        return _UNANSWERED, f"must be {NUMBER_RANGE}"
    return float(value), ""


def _read_string(spec: FactSpec, value: object) -> tuple[Value | _Unanswered, str]:
    if isinstance(value, str) and len(value) <= MAX_STRING:
        return value, ""
    return _UNANSWERED, f"must be text of at most {MAX_STRING} characters, got {_kind(value)}"


_READERS = {
    FactType.ANSWER: _read_code,
    FactType.ENUM: _read_code,
    FactType.SET: _read_set,
    FactType.BOOL: _read_bool,
    FactType.NUMBER: _read_number,
    FactType.STRING: _read_string,
}


_Reader = Callable[[FactSpec, object], tuple[Value | _Unanswered, str]]


class FactReader:
    """Checks and normalises request facts for one policy version.

    Built once per served version (:class:`fairpath.serving.state.ServedVersion`) and dropped
    with it: each fact's spec and reader are looked up here, not per fact per request.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        # Each fact's spec, reader and the codes a request value may simply be kept as (the
        # fast path for answers and enums, which are most facts); None where the reader must
        # look at the value.
        self._plan: dict[str, tuple[FactSpec, _Reader, frozenset[str] | None]] = {}
        for name, spec in policy.facts.items():
            keep = None
            if spec.type is FactType.ENUM:
                keep = frozenset(spec.values)
            elif spec.type is FactType.ANSWER:
                keep = frozenset(spec.values) - {"UNKNOWN"}
            self._plan[name] = (spec, _READERS[spec.type], keep)
        self._order = {name: index for index, name in enumerate(policy.facts)}
        # Every (fact, code) pair a request may carry that is kept as sent: a request made of
        # these alone (the usual one: answers and enums) is checked by one set operation in C.
        self._kept = frozenset((name, code) for name, (_, _, keep) in self._plan.items() for code in keep or ())

    def read(self, facts: Mapping[str, object]) -> dict[str, Value]:
        """Validated facts ready for the engine: unanswered ones (absent, null, UNKNOWN) removed.

        Raises:
            InvalidFactsError: with one violation per undeclared fact, wrong type or
                value outside the allowed set: undeclared facts first, by name, then the others
                in the order the policy declares them, whatever the order they came in (a
                protobuf ``Struct`` does not keep one).

        """
        if len(facts) > MAX_FACTS:
            raise InvalidFactsError([FieldViolation("facts", f"at most {MAX_FACTS} facts, got {len(facts)}")])
        try:
            if self._kept.issuperset(facts.items()):
                return cast("dict[str, Value]", dict(facts))  # each value equals a declared code
        except TypeError:
            pass  # an unhashable value (a list for a set fact, an object): read fact by fact
        clean: dict[str, Value] = {}
        undeclared: list[str] = []
        violations: list[tuple[int, FieldViolation]] = []
        plan = self._plan
        for name, value in facts.items():
            found = plan.get(name)
            if found is None:
                undeclared.append(name)
                continue
            if value is None:
                continue
            spec, reader, keep = found
            if keep is not None and value.__class__ is str and value in keep:
                clean[name] = value  # a str, checked just above
                continue
            reading, problem = reader(spec, value)
            if problem:
                violations.append((self._order[name], FieldViolation(_field(name), problem)))
            elif not isinstance(reading, _Unanswered):
                clean[name] = reading
        if undeclared or violations:
            raise InvalidFactsError([*self._undeclared(sorted(undeclared)), *(v for _, v in sorted(violations))])
        return clean

    def _undeclared(self, names: list[str]) -> list[FieldViolation]:
        key = self._policy.key
        found = []
        for index, name in enumerate(names):
            # Only the first few undeclared names are compared: a request of 256 of them must not cost more.
            hint = did_you_mean(name, self._policy.facts) if index < MAX_SUGGESTIONS else ""
            found.append(FieldViolation(_field(name), f"not a fact of {key}{'; ' + hint if hint else ''}"))
        return found


def normalise_facts(policy: Policy, facts: Mapping[str, object]) -> dict[str, Value]:
    """One-off :meth:`FactReader.read` for ``policy`` (serving keeps a reader per version).

    Raises:
        InvalidFactsError: as :meth:`FactReader.read`.

    """
    return FactReader(policy).read(facts)
