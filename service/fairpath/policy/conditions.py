"""The condition language of policy files: parsing, meaning and explanation.

A condition is one line an HR or clinical-governance author can read aloud::

    intent_to_harm is YES
    professional_group in [DOCTOR, DENTIST] and exclusion_under_consideration is YES
    harm_severity in [MODERATE, SEVERE, FATAL] or prolonged_psychological_harm is YES
    investigation_stage is not CONCLUDED or investigation_stage is unanswered
    parties_affected has PATIENT            (set facts: has, lacks, has any [..])
    not (years_qualified >= 2)
    always

Meaning, in one sentence per construct:

* ``fact is V`` / ``fact is not V`` / ``fact in [..]`` / ``fact not in [..]``,
  ``fact < n`` (``<= > >= = !=``) and, for set facts, ``fact has V`` /
  ``fact lacks V`` / ``fact has any [..]`` are **false when the fact is unanswered**,
  whichever way round they are written: nothing is concluded from a missing answer.
* ``fact is answered`` / ``fact is unanswered`` test whether a value was given.
* ``not`` applies to the comparisons inside it (it is pushed down with De
  Morgan's laws), so ``not (x is YES)`` means ``x is not YES`` and is false when
  ``x`` is unanswered.
* ``and`` binds tighter than ``or``; parentheses group.

The parser is a small recursive-descent parser over a fixed token set: no
``eval``, no attribute access, no calls. Conditions are compiled to
durable_rules patterns by :mod:`fairpath.engine.compiler`; :func:`holds` is the
same meaning in Python, used to explain why a rule did *not* fire (durable_rules
has no hook for that) and proven to agree with the engine by property tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

Value: TypeAlias = str | bool | float | tuple[str, ...]  # a tuple is the value of a set fact

KEYWORDS = frozenset(
    {"and", "or", "not", "is", "in", "has", "lacks", "any", "answered", "unanswered", "always", "true", "false"}
)
SET_OPS = ("has", "lacks")
ORDER_OPS = ("<", "<=", ">", ">=")
MAX_DEPTH = 32  # nested parentheses and `not`s in one condition
# Comparisons plus the values of every `[..]` list in one condition. The shipped policies use at most 9;
# far more could never compile anyway (durable_rules takes 15 `$and`/`$or` groups per rule), and
# counting while parsing refuses a hostile one before anything is built from it.
MAX_TERMS = 64
_NEGATED = {
    "is": "is not", "is not": "is", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "=": "!=", "!=": "=",
    "has": "lacks", "lacks": "has",
}


class ConditionSyntaxError(ValueError):
    """A condition does not parse; ``column`` is 1-based within the condition text."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} (column {column})")


# --- the tree -----------------------------------------------------------------


@dataclass(frozen=True)
class Always:
    """The condition that always holds."""


@dataclass(frozen=True)
class Compare:
    """``fact <op> value``: ``is``, ``is not``, ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``has``, ``lacks``."""

    fact: str
    op: str
    value: Value


@dataclass(frozen=True)
class Member:
    """``fact in [values]`` or, negated, ``fact not in [values]``."""

    fact: str
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Answered:
    """``fact is answered`` or, negated, ``fact is unanswered``."""

    fact: str
    negated: bool = False


@dataclass(frozen=True)
class Not:
    """Negation; removed by :func:`to_nnf` before compiling or evaluating."""

    item: Condition


@dataclass(frozen=True)
class All:
    """Conjunction."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """Disjunction."""

    items: tuple[Condition, ...]


Condition: TypeAlias = Always | Compare | Member | Answered | Not | All | AnyOf
Atom: TypeAlias = Compare | Member | Answered


# --- parsing ------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?)
      | (?P<str>"[^"\\]*"|'[^'\\]*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><=|>=|!=|<|>|=)
      | (?P<punct>[()\[\],])
    )""",
    re.VERBOSE,
)
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True)
class _Token:
    kind: str  # num | str | name | op | punct | end
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        # Found by search, never by slicing the rest of the text: linear however long the text.
        start = _NON_SPACE.search(text, pos)
        if start is None:
            break
        pos = start.start()
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise ConditionSyntaxError(f"unexpected character {text[pos]!r}", pos + 1)
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.terms = 0

    def term(self) -> None:
        # Counted while parsing, so an absurd condition is refused before its tree is built.
        self.terms += 1
        if self.terms > MAX_TERMS:
            self.fail(f"a condition may hold at most {MAX_TERMS} comparisons and listed values")

    def nested(self, parse: Callable[[], Condition]) -> Condition:
        # Bounded, so a hostile file meets a syntax error rather than Python's recursion limit.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"conditions may nest at most {MAX_DEPTH} levels")
        try:
            return parse()
        finally:
            self.depth -= 1

    @property
    def token(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.token.text == text and self.token.kind in ("name", "op", "punct"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str, what: str) -> None:
        if not self.accept(text):
            self.fail(f"expected {what}")

    def fail(self, message: str) -> None:
        token = self.token
        found = "end of condition" if token.kind == "end" else repr(token.text)
        raise ConditionSyntaxError(f"{message}, found {found}", token.column)

    def parse(self) -> Condition:
        if self.token.kind == "end":
            self.fail("expected a condition")
        condition = self.disjunction()
        if self.token.kind != "end":
            self.fail("expected 'and', 'or' or the end of the condition")
        return condition

    def disjunction(self) -> Condition:
        items = [self.conjunction()]
        while self.accept("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def conjunction(self) -> Condition:
        items = [self.unary()]
        while self.accept("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else All(tuple(items))

    def unary(self) -> Condition:
        if self.accept("not"):
            return Not(self.nested(self.unary))
        if self.accept("("):
            inner = self.nested(self.disjunction)
            self.expect(")", "')'")
            return inner
        if self.token.text == "always" and self.token.kind == "name":
            self.term()
            self.take()
            return Always()
        return self.comparison()

    def comparison(self) -> Condition:
        token = self.token
        if token.kind != "name" or token.text in KEYWORDS:
            self.fail("expected a fact name")
        self.term()
        fact = self.take().text
        if self.accept("is"):
            negated = self.accept("not")
            if self.accept("answered"):
                return Answered(fact, negated=negated)
            if self.accept("unanswered"):
                return Answered(fact, negated=not negated)
            return Compare(fact, "is not" if negated else "is", self.value())
        if self.accept("not"):
            self.expect("in", "'in' after 'not'")
            return Member(fact, self.value_list(), negated=True)
        if self.accept("in"):
            return Member(fact, self.value_list())
        if self.accept("has"):
            if self.accept("any"):
                items = tuple(Compare(fact, "has", value) for value in self.value_list())
                return items[0] if len(items) == 1 else AnyOf(items)
            return Compare(fact, "has", self.value())
        if self.accept("lacks"):
            return Compare(fact, "lacks", self.value())
        if self.token.kind == "op":
            op = self.take().text
            return Compare(fact, op, self.value())
        self.fail(f"expected 'is', 'in', 'not in', 'has', 'lacks' or a comparison after {fact!r}")
        raise AssertionError("unreachable")  # pragma: no cover - fail() always raises

    def value_list(self) -> tuple[Value, ...]:
        self.expect("[", "'['")
        values = [self.value()]
        while self.accept(","):
            self.term()  # the comparison counted the first value
            values.append(self.value())
        self.expect("]", "']'")
        return tuple(values)

    def value(self) -> Value:
        token = self.token
        if token.kind == "num":
            self.take()
            return float(token.text)
        if token.kind == "str":
            self.take()
            return token.text[1:-1]
        if token.kind == "name" and token.text in ("true", "false"):
            self.take()
            return token.text == "true"
        if token.kind == "name" and token.text not in KEYWORDS:
            self.take()
            return token.text
        self.fail("expected a value (a CODE, a number, true/false or a quoted string)")
        raise AssertionError("unreachable")  # pragma: no cover


def parse(text: str) -> Condition:
    """Parse a condition; raises :class:`ConditionSyntaxError` with a column."""
    if not isinstance(text, str):
        raise ConditionSyntaxError("a condition must be text", 1)
    return _Parser(text).parse()


# --- meaning ------------------------------------------------------------------


def to_nnf(condition: Condition, negate: bool = False) -> Condition:
    """Push every ``not`` down to the comparisons (negation normal form)."""
    if isinstance(condition, Not):
        return to_nnf(condition.item, not negate)
    if isinstance(condition, All | AnyOf):
        items = tuple(to_nnf(item, negate) for item in condition.items)
        flip = negate
        return (AnyOf(items) if flip else All(items)) if isinstance(condition, All) else (
            All(items) if flip else AnyOf(items)
        )
    if not negate:
        return condition
    if isinstance(condition, Always):
        return AnyOf(())  # the empty disjunction: never holds
    if isinstance(condition, Compare):
        return Compare(condition.fact, _NEGATED[condition.op], condition.value)
    if isinstance(condition, Member):
        return Member(condition.fact, condition.values, negated=not condition.negated)
    return Answered(condition.fact, negated=not condition.negated)


def holds(condition: Condition, facts: Mapping[str, Value]) -> bool:
    """Whether ``condition`` holds for ``facts`` (absent keys are unanswered).

    ``facts`` must already be normalised (numbers as float, answers without UNKNOWN).
    """
    return _holds(to_nnf(condition), facts)


def _holds(condition: Condition, facts: Mapping[str, Value]) -> bool:
    if isinstance(condition, Always):
        return True
    if isinstance(condition, All):
        return all(_holds(item, facts) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(_holds(item, facts) for item in condition.items)
    if isinstance(condition, Answered):
        return (condition.fact in facts) != condition.negated
    if isinstance(condition, Not):  # pragma: no cover - removed by to_nnf
        raise TypeError("holds() needs a condition in negation normal form")
    if condition.fact not in facts:
        return False
    value = facts[condition.fact]
    if isinstance(condition, Member):
        # Same type-strict equality as ``is``: ``True in (1.0,)`` is true in Python.
        found = any(_compare(value, "is", literal) for literal in condition.values)
        return found != condition.negated
    return _compare(value, condition.op, condition.value)


def _compare(value: Value, op: str, literal: Value) -> bool:
    if op in SET_OPS:
        return isinstance(value, tuple) and (literal in value) == (op == "has")
    if isinstance(value, tuple):
        return False
    if op in ("is", "="):
        return value == literal and type(value) is type(literal)
    if op in ("is not", "!="):
        return not (value == literal and type(value) is type(literal))
    if not isinstance(value, float) or not isinstance(literal, float):
        return False
    return {"<": value < literal, "<=": value <= literal, ">": value > literal, ">=": value >= literal}[op]


def atoms(condition: Condition) -> Iterator[Atom]:
    """Every comparison in the condition, left to right."""
    if isinstance(condition, All | AnyOf):
        for item in condition.items:
            yield from atoms(item)
    elif isinstance(condition, Not):
        yield from atoms(condition.item)
    elif not isinstance(condition, Always):
        yield condition


def facts_read(condition: Condition) -> tuple[str, ...]:
    """The fact names the condition reads, in order of first appearance."""
    return tuple(dict.fromkeys(atom.fact for atom in atoms(condition)))


def required_facts(condition: Condition) -> tuple[str, ...]:
    """Facts that must be answered before a walk step can decide (``is answered`` tests excluded)."""
    return tuple(dict.fromkeys(a.fact for a in atoms(condition) if not isinstance(a, Answered)))


def implied_facts(condition: Condition) -> frozenset[str]:
    """Facts that are necessarily answered whenever the NNF ``condition`` holds."""
    if isinstance(condition, All):
        found: frozenset[str] = frozenset()
        for item in condition.items:
            found |= implied_facts(item)
        return found
    if isinstance(condition, AnyOf):
        if not condition.items:
            return frozenset()
        common = implied_facts(condition.items[0])
        for item in condition.items[1:]:
            common &= implied_facts(item)
        return common
    if isinstance(condition, Answered):
        return frozenset() if condition.negated else frozenset({condition.fact})
    if isinstance(condition, Compare | Member):
        return frozenset({condition.fact})
    return frozenset()


def specialise(
    condition: Condition, known: Mapping[str, Value], decided: frozenset[str] | None = None
) -> Condition | bool:
    """Partially evaluate a NNF condition over the names whose values are settled.

    ``decided`` names the settled names (default: the keys of ``known``); a
    settled name missing from ``known`` is unanswered. Comparisons on settled
    names become constants. Returns ``True``/``False`` when that decides the
    whole condition, otherwise the simplified residual over the other names.
    """
    settled = frozenset(known) if decided is None else decided
    return _specialise(condition, known, settled)


def _specialise(condition: Condition, known: Mapping[str, Value], settled: frozenset[str]) -> Condition | bool:
    if isinstance(condition, Always):
        return True
    if isinstance(condition, All | AnyOf):
        is_all = isinstance(condition, All)
        residual: list[Condition] = []
        for item in condition.items:
            value = _specialise(item, known, settled)
            if value is True or value is False:
                if value is not is_all:  # False in an All, True in an AnyOf: decided
                    return value
                continue
            residual.append(value)
        if not residual:
            return is_all
        return residual[0] if len(residual) == 1 else (All(tuple(residual)) if is_all else AnyOf(tuple(residual)))
    if isinstance(condition, Not):  # pragma: no cover - removed by to_nnf
        raise TypeError("specialise() needs a condition in negation normal form")
    if condition.fact in settled:
        return _holds(condition, known)
    return condition


# --- text ---------------------------------------------------------------------


def format_value(value: object) -> str:
    """A value as an author would write it in a condition."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # Positional, never exponent form (1e-07 does not parse back); exact, as repr is.
        return format(Decimal(repr(value)), "f")
    return str(value)


def to_text(condition: Condition) -> str:
    """Render a condition back into the language (used for compiler output and tests)."""
    if isinstance(condition, Always):
        return "always"
    if isinstance(condition, Compare):
        return f"{condition.fact} {condition.op} {_literal(condition.value)}"
    if isinstance(condition, Member):
        values = ", ".join(_literal(v) for v in condition.values)
        return f"{condition.fact} {'not in' if condition.negated else 'in'} [{values}]"
    if isinstance(condition, Answered):
        return f"{condition.fact} is {'unanswered' if condition.negated else 'answered'}"
    if isinstance(condition, Not):
        return f"not ({to_text(condition.item)})"
    joiner = " and " if isinstance(condition, All) else " or "
    if not condition.items:
        return "always" if isinstance(condition, All) else "not (always)"
    return joiner.join(_group(item) for item in condition.items)


def _group(condition: Condition) -> str:
    text = to_text(condition)
    return f"({text})" if isinstance(condition, All | AnyOf) and len(condition.items) > 1 else text


def _literal(value: Value) -> str:
    if isinstance(value, str) and (not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) or value in KEYWORDS):
        return f"'{value}'" if '"' in value else f'"{value}"'
    return format_value(value)


def describe_facts(names: Sequence[str], facts: Mapping[str, Value]) -> str:
    """``a = YES, b unanswered`` for the reason text of a trace entry."""
    parts = [f"{n} = {format_value(facts[n])}" if n in facts else f"{n} unanswered" for n in names]
    return ", ".join(parts) if parts else "no facts read"
