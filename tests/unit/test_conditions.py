"""The condition language: parsing, errors, meaning, NNF, partial evaluation, text and durable patterns.

Unit tier: pure functions only, no engine. The property tests generate
well-typed conditions over four facts (one per value type) and check every
function against an independent three-valued (Kleene) reading of the
documented meaning: a comparison on an unanswered fact is *unknown*, ``not``
of unknown is unknown, and a condition holds only when it is definitely true.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fairpath.engine.compiler import complement, pattern
from fairpath.policy import conditions as cond
from fairpath.policy.conditions import (
    All,
    Always,
    Answered,
    AnyOf,
    Compare,
    ConditionSyntaxError,
    Member,
    Not,
    parse,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

A = Compare("a", "is", "YES")
B = Compare("b", "is", "YES")
C = Compare("c", "is", "YES")


def holds_text(text: str, facts: Mapping[str, cond.Value]) -> bool:
    """Parse ``text`` and evaluate it over ``facts``."""
    return cond.holds(parse(text), facts)


# --- parsing --------------------------------------------------------------------------


class TestParseComparisons:
    """Each comparison construct parses to its node."""

    @pytest.mark.parametrize(
        ("text", "tree"),
        [
            ("x is YES", Compare("x", "is", "YES")),
            ("x is not YES", Compare("x", "is not", "YES")),
            ("x = 3", Compare("x", "=", 3.0)),
            ("x != 3", Compare("x", "!=", 3.0)),
            ("x < 3", Compare("x", "<", 3.0)),
            ("x <= 3", Compare("x", "<=", 3.0)),
            ("x > 3", Compare("x", ">", 3.0)),
            ("x >= 3", Compare("x", ">=", 3.0)),
            ("x>=3", Compare("x", ">=", 3.0)),
            ("x in [A]", Member("x", ("A",))),
            ("x in [A, B,C]", Member("x", ("A", "B", "C"))),
            ("x not in [A, B]", Member("x", ("A", "B"), negated=True)),
            ("x is answered", Answered("x")),
            ("x is unanswered", Answered("x", negated=True)),
            ("x is not answered", Answered("x", negated=True)),
            ("x is not unanswered", Answered("x")),
            ("always", Always()),
        ],
    )
    def test_construct(self, text: str, tree: cond.Condition) -> None:
        """The construct parses to exactly this tree."""
        assert parse(text) == tree

    def test_surrounding_and_inner_whitespace_is_ignored(self) -> None:
        """Spaces, tabs and newlines between tokens do not matter."""
        assert parse("  x\tis\n  YES  ") == Compare("x", "is", "YES")


class TestParseValues:
    """Literal values keep their type: text, float or bool."""

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("x is 3", 3.0),
            ("x is -2", -2.0),
            ("x is 2.5", 2.5),
            ("x is -0.25", -0.25),
            ("x is true", True),
            ("x is false", False),
            ("x is YES", "YES"),
            ("x is True", "True"),
            ('x is "two words"', "two words"),
            ("x is 'single quoted'", "single quoted"),
            ('x is "and"', "and"),
            ('x is "12"', "12"),
            ('x is ""', ""),
            ("x is 'say \"hi\"'", 'say "hi"'),
        ],
    )
    def test_value(self, text: str, value: cond.Value) -> None:
        """The literal is parsed to this value, of this exact type."""
        parsed = parse(text)
        assert isinstance(parsed, Compare)
        assert parsed.value == value
        assert type(parsed.value) is type(value)

    def test_numbers_are_floats(self) -> None:
        """An integer literal becomes a float, like the normalised facts it is compared with."""
        parsed = parse("x in [1, 2.5, -3]")
        assert isinstance(parsed, Member)
        assert parsed.values == (1.0, 2.5, -3.0)
        assert all(type(v) is float for v in parsed.values)

    def test_mixed_list(self) -> None:
        """A value list may mix codes, numbers, bools and quoted text."""
        assert parse("x in [A, 1, true, 'b c']") == Member("x", ("A", 1.0, True, "b c"))


class TestParsePrecedence:
    """``not`` binds tightest, then ``and``, then ``or``; parentheses group."""

    def test_and_binds_tighter_than_or(self) -> None:
        """``a or b and c`` is ``a or (b and c)``."""
        assert parse("a is YES or b is YES and c is YES") == AnyOf((A, All((B, C))))

    def test_and_binds_tighter_than_or_on_the_left(self) -> None:
        """``a and b or c`` is ``(a and b) or c``."""
        assert parse("a is YES and b is YES or c is YES") == AnyOf((All((A, B)), C))

    def test_parentheses_override_precedence(self) -> None:
        """``(a or b) and c`` groups the disjunction."""
        assert parse("(a is YES or b is YES) and c is YES") == All((AnyOf((A, B)), C))

    def test_chains_are_flat(self) -> None:
        """A chain of one operator is one node, not a nested pair."""
        assert parse("a is YES and b is YES and c is YES") == All((A, B, C))
        assert parse("a is YES or b is YES or c is YES") == AnyOf((A, B, C))

    def test_redundant_parentheses(self) -> None:
        """Parentheses around a single comparison add no node."""
        assert parse("((a is YES))") == A

    def test_not_applies_to_the_next_operand_only(self) -> None:
        """``not a and b`` is ``(not a) and b``."""
        assert parse("not a is YES and b is YES") == All((Not(A), B))

    def test_not_of_a_group(self) -> None:
        """``not (a or b)`` negates the whole group."""
        assert parse("not (a is YES or b is YES)") == Not(AnyOf((A, B)))

    def test_double_not(self) -> None:
        """``not not a`` nests two negations."""
        assert parse("not not a is YES") == Not(Not(A))

    def test_not_without_space_before_parenthesis(self) -> None:
        """``not(...)`` tokenises like ``not (...)``."""
        assert parse("not(a is YES)") == Not(A)

    def test_always_combines(self) -> None:
        """``always`` is an operand like any comparison."""
        assert parse("always and a is YES") == All((Always(), A))

    def test_keyword_prefix_is_a_name(self) -> None:
        """A fact name that merely starts with a keyword (``order``, ``island``) is a name."""
        assert parse("order is YES or island is NO") == AnyOf(
            (Compare("order", "is", "YES"), Compare("island", "is", "NO"))
        )


class TestParseErrors:
    """Malformed conditions raise ConditionSyntaxError naming the 1-based column."""

    @pytest.mark.parametrize(
        ("text", "message", "column"),
        [
            ("", "expected a condition, found end of condition", 1),
            ("   ", "expected a condition, found end of condition", 4),
            ("x is YES and", "expected a fact name, found end of condition", 13),
            ("x is YES or", "expected a fact name, found end of condition", 12),
            ("x is YES and or y is NO", "expected a fact name, found 'or'", 14),
            ("not", "expected a fact name, found end of condition", 4),
            ("(x is YES", "expected ')', found end of condition", 10),
            ("((x is YES)", "expected ')', found end of condition", 12),
            ("x is YES)", "expected 'and', 'or' or the end of the condition, found ')'", 9),
            ("x in [A, B", "expected ']', found end of condition", 11),
            ("x in A, B]", "expected '[', found 'A'", 6),
            ("x in []", "expected a value", 7),
            ("x in [A,]", "expected a value", 9),
            ("x in [A B]", "expected ']', found 'B'", 9),
            ("x is YES $", "unexpected character '$'", 10),
            ("x is YES;", "unexpected character ';'", 9),
            ("x is YES && y is NO", "unexpected character '&'", 10),
            ("x == 3", "expected a value", 4),
            ('x is "unterminated', "unexpected character '\"'", 6),
            ("x is 'a\\'b'", "unexpected character \"'\"", 6),
            ("x is é", "unexpected character 'é'", 6),
            ("and is YES", "expected a fact name, found 'and'", 1),
            ("is is YES", "expected a fact name, found 'is'", 1),
            ("true is YES", "expected a fact name, found 'true'", 1),
            ("answered is YES", "expected a fact name, found 'answered'", 1),
            ("x is YES and in is NO", "expected a fact name, found 'in'", 14),
            ("not is YES", "expected a fact name, found 'is'", 5),
            ("3 is YES", "expected a fact name, found '3'", 1),
            ("'x' is YES", "expected a fact name, found \"'x'\"", 1),
            ("always is YES", "expected 'and', 'or' or the end of the condition, found 'is'", 8),
            ("x", "expected 'is', 'in', 'not in', 'has', 'lacks' or a comparison after 'x', found end of condition", 2),
            ("x YES", "expected 'is', 'in', 'not in', 'has', 'lacks' or a comparison after 'x', found 'YES'", 3),
            ("x is", "expected a value", 5),
            ("x is not", "expected a value", 9),
            ("x <", "expected a value", 4),
            ("x is and", "expected a value (a CODE, a number, true/false or a quoted string), found 'and'",
             6),
            ("x is always", "found 'always'", 6),
            ("x not YES", "expected 'in' after 'not', found 'YES'", 7),
            ("x is not in [A]", "expected a value", 10),
            ("x is YES y is NO", "expected 'and', 'or' or the end of the condition, found 'y'", 10),
            ("x is YES NO", "found 'NO'", 10),
            ("x is 1.", "unexpected character '.'", 7),
            ("x is 1e5", "found 'e5'", 7),
        ],
    )
    def test_error_and_column(self, text: str, message: str, column: int) -> None:
        """The error says what was expected and found, at the column of the offending token."""
        with pytest.raises(ConditionSyntaxError) as caught:
            parse(text)
        assert message in caught.value.message
        assert caught.value.column == column
        assert str(caught.value) == f"{caught.value.message} (column {column})"

    @pytest.mark.parametrize("value", [None, 3, b"x is YES", ["x is YES"], {"x": "YES"}])
    def test_non_text_input(self, value: Any) -> None:
        """Only str is a condition; anything else is a syntax error at column 1, not a crash."""
        with pytest.raises(ConditionSyntaxError) as caught:
            parse(value)
        assert caught.value.message == "a condition must be text"
        assert caught.value.column == 1

    def test_error_is_a_value_error(self) -> None:
        """Callers that catch ValueError also catch syntax errors."""
        assert issubclass(ConditionSyntaxError, ValueError)


class TestNoEval:
    """The parser is a fixed grammar: Python expressions never run."""

    @pytest.mark.parametrize(
        ("text", "column"),
        [
            ("__import__('os')", 11),
            ("__import__('os').system('true')", 17),
            ("x is YES or __import__('os')", 23),
            ("x is os.system", 8),
            ("x is YES.__class__", 9),
            ("x is (lambda: 1)", 13),
            ("x is [1][0]", 6),
            ("x is f'{1}'", 7),
            ("x in [__import__('os')]", 17),
            ("exec('1') is YES", 5),
        ],
    )
    def test_python_is_a_syntax_error(self, text: str, column: int) -> None:
        """A Python expression is refused with a column, like any other malformed text."""
        with pytest.raises(ConditionSyntaxError) as caught:
            parse(text)
        assert caught.value.column == column

    def test_dunder_names_are_just_fact_names(self) -> None:
        """A dunder name in fact position is a plain string, never looked up."""
        assert parse("__class__ is __globals__") == Compare("__class__", "is", "__globals__")


# --- meaning --------------------------------------------------------------------------


class TestUnansweredFacts:
    """Nothing is concluded from a missing answer: comparisons on it are false both ways."""

    @pytest.mark.parametrize(
        ("positive", "negative"),
        [
            ("x is YES", "x is not YES"),
            ("x = 3", "x != 3"),
            ("x < 3", "x >= 3"),
            ("x > 3", "x <= 3"),
            ("x in [A, B]", "x not in [A, B]"),
            ("x is YES", "not (x is YES)"),
            ("x in [A]", "not (x in [A])"),
            ("x < 3", "not (x < 3)"),
        ],
    )
    def test_both_ways_false(self, positive: str, negative: str) -> None:
        """Both the comparison and its negation are false when the fact is absent."""
        assert not holds_text(positive, {})
        assert not holds_text(negative, {})

    def test_other_facts_do_not_count(self) -> None:
        """Answering a different fact does not answer this one."""
        assert not holds_text("x is not YES", {"y": "YES"})

    def test_answered_and_unanswered(self) -> None:
        """``is answered`` / ``is unanswered`` test presence only."""
        assert holds_text("x is unanswered", {})
        assert not holds_text("x is answered", {})
        assert holds_text("x is answered", {"x": "NO"})
        assert not holds_text("x is unanswered", {"x": "NO"})

    def test_not_answered_is_unanswered(self) -> None:
        """``not (x is answered)`` holds exactly when x is absent."""
        assert holds_text("not (x is answered)", {})
        assert not holds_text("not (x is answered)", {"x": False})

    def test_false_and_zero_are_answers(self) -> None:
        """A falsy value (false, 0, empty text) is an answer, not a gap."""
        assert holds_text("x is answered", {"x": False})
        assert holds_text("x is answered", {"x": 0.0})
        assert holds_text("x is answered", {"x": ""})
        assert holds_text("x is not true", {"x": False})

    def test_guarded_negation(self) -> None:
        """The idiom ``x is not V or x is unanswered`` covers the gap explicitly."""
        text = "x is not CONCLUDED or x is unanswered"
        assert holds_text(text, {})
        assert holds_text(text, {"x": "OPEN"})
        assert not holds_text(text, {"x": "CONCLUDED"})


class TestComparisonMeaning:
    """Answered facts compare with the documented, type-strict operators."""

    @pytest.mark.parametrize(
        ("text", "facts", "expected"),
        [
            ("x is YES", {"x": "YES"}, True),
            ("x is YES", {"x": "NO"}, False),
            ("x is not YES", {"x": "NO"}, True),
            ("x is not YES", {"x": "YES"}, False),
            ("x = 3", {"x": 3.0}, True),
            ("x != 3", {"x": 3.0}, False),
            ("x < 3", {"x": 2.5}, True),
            ("x < 3", {"x": 3.0}, False),
            ("x <= 3", {"x": 3.0}, True),
            ("x > 3", {"x": 3.0}, False),
            ("x >= 3", {"x": 3.0}, True),
            ("x > -1", {"x": -0.5}, True),
            ("x in [A, B]", {"x": "B"}, True),
            ("x in [A, B]", {"x": "C"}, False),
            ("x not in [A, B]", {"x": "C"}, True),
            ("x not in [A, B]", {"x": "A"}, False),
            ("x is true", {"x": True}, True),
            ("x is false", {"x": True}, False),
            ('x is "two words"', {"x": "two words"}, True),
            ("always", {}, True),
            ("not always", {}, False),
        ],
    )
    def test_operator(self, text: str, facts: dict[str, cond.Value], expected: bool) -> None:
        """The comparison holds exactly as documented."""
        assert holds_text(text, facts) is expected

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("x is 1", True),
            ("x is true", 1.0),
            ("x is 0", False),
            ('x is "1"', 1.0),
            ("x = 1", "1"),
        ],
    )
    def test_is_does_not_coerce_types(self, text: str, value: cond.Value) -> None:
        """A value of another type never equals the literal (true is not 1, "1" is not 1)."""
        assert not holds_text(text, {"x": value})
        negated = text.replace(" is ", " is not ").replace(" = ", " != ")
        assert holds_text(negated, {"x": value})

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("x in [1]", True),
            ("x in [true]", 1.0),
            ("x in [0, 2]", False),
            ('x in ["1"]', 1.0),
        ],
    )
    def test_in_does_not_coerce_types(self, text: str, value: cond.Value) -> None:
        """``in`` is the same type-strict equality as ``is``: true is not in [1]."""
        assert not holds_text(text, {"x": value})
        assert holds_text(text.replace(" in ", " not in "), {"x": value})

    @pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
    def test_order_on_non_numbers_is_false(self, op: str) -> None:
        """Ordering text or bools against a number never holds (no string comparison)."""
        assert not holds_text(f"x {op} 3", {"x": "10"})
        assert not holds_text(f"x {op} 3", {"x": True})


# --- negation normal form ---------------------------------------------------------------


class TestNegationNormalForm:
    """to_nnf pushes ``not`` down to the comparisons with De Morgan's laws."""

    @pytest.mark.parametrize(
        ("text", "nnf"),
        [
            ("not (a is YES and b is NO)", "a is not YES or b is not NO"),
            ("not (a is YES or b is NO)", "a is not YES and b is not NO"),
            ("not not a is YES", "a is YES"),
            ("not (a is YES and (b is NO or c is YES))", "a is not YES or (b is not NO and c is not YES)"),
            ("not (x < 3)", "x >= 3"),
            ("not (x >= 3)", "x < 3"),
            ("not (x > 3)", "x <= 3"),
            ("not (x <= 3)", "x > 3"),
            ("not (x = 3)", "x != 3"),
            ("not (x != 3)", "x = 3"),
            ("not (x is not A)", "x is A"),
            ("not (x in [A, B])", "x not in [A, B]"),
            ("not (x not in [A, B])", "x in [A, B]"),
            ("not (x is answered)", "x is unanswered"),
            ("not (x is unanswered)", "x is answered"),
            ("a is YES and not b is YES", "a is YES and b is not YES"),
        ],
    )
    def test_push_down(self, text: str, nnf: str) -> None:
        """The negation lands on the comparisons, with each operator flipped."""
        assert cond.to_nnf(parse(text)) == parse(nnf)

    def test_not_always_is_the_empty_disjunction(self) -> None:
        """``not always`` becomes the empty ``or``, which never holds."""
        assert cond.to_nnf(Not(Always())) == AnyOf(())
        assert cond.to_nnf(Not(Not(Always()))) == Always()

    def test_empty_connectives_swap(self) -> None:
        """Negating the empty ``and`` (true) gives the empty ``or`` (false), and back."""
        assert cond.to_nnf(Not(All(()))) == AnyOf(())
        assert cond.to_nnf(Not(AnyOf(()))) == All(())
        assert cond.holds(All(()), {})
        assert not cond.holds(AnyOf(()), {})

    def test_nnf_without_not_is_unchanged(self) -> None:
        """A condition with no ``not`` is already in NNF and comes back equal."""
        condition = parse("a is YES and (b in [X, Y] or c is unanswered)")
        assert cond.to_nnf(condition) == condition

    def test_negate_flag(self) -> None:
        """``to_nnf(c, negate=True)`` is the NNF of ``not c``."""
        condition = parse("a is YES or x < 2")
        assert cond.to_nnf(condition, negate=True) == cond.to_nnf(Not(condition))


# --- facts a condition reads ------------------------------------------------------------


class TestFactsRead:
    """atoms, facts_read, required_facts and implied_facts."""

    def test_atoms_left_to_right_through_not(self) -> None:
        """Atoms yields every comparison in order, looking inside ``not``."""
        condition = parse("a is YES and not (b in [X] or c is answered) or always")
        assert list(cond.atoms(condition)) == [A, Member("b", ("X",)), Answered("c")]

    def test_facts_read_dedupes_in_order(self) -> None:
        """facts_read lists each fact once, at its first appearance, answered tests included."""
        assert cond.facts_read(parse("b is YES and a is answered or b is NO")) == ("b", "a")

    def test_always_reads_nothing(self) -> None:
        """``always`` reads no facts."""
        assert cond.facts_read(Always()) == ()
        assert cond.required_facts(Always()) == ()

    def test_required_facts_order_ignores_presence_tests(self) -> None:
        """The order is that of the first comparison on each fact, not of the first presence test."""
        assert cond.required_facts(parse("b is answered and a is YES and b is NO")) == ("a", "b")

    def test_required_facts_exclude_answered_tests(self) -> None:
        """A fact only tested for presence is not required to decide."""
        condition = parse("x is unanswered or (y is YES and z is answered and y < 3)")
        assert cond.required_facts(condition) == ("y",)

    @pytest.mark.parametrize(
        ("text", "implied"),
        [
            ("a is YES", {"a"}),
            ("a is not YES", {"a"}),
            ("a not in [X]", {"a"}),
            ("a is answered", {"a"}),
            ("a is unanswered", set()),
            ("always", set()),
            ("a is YES and b is NO", {"a", "b"}),
            ("a is YES or b is NO", set()),
            ("a is YES or a is NO", {"a"}),
            ("(a is YES and b is NO) or (b is YES and c is NO)", {"b"}),
            ("a is YES and (b is NO or c is NO)", {"a"}),
        ],
    )
    def test_implied_facts(self, text: str, implied: set[str]) -> None:
        """implied_facts are the facts every way of holding needs answered."""
        assert cond.implied_facts(parse(text)) == frozenset(implied)

    def test_implied_facts_of_empty_or(self) -> None:
        """The empty ``or`` (never holds) implies nothing rather than crashing."""
        assert cond.implied_facts(AnyOf(())) == frozenset()


# --- partial evaluation -----------------------------------------------------------------


class TestSpecialise:
    """specialise decides what the settled names decide and keeps the rest."""

    def test_decided_true(self) -> None:
        """A condition decided by the known values becomes True."""
        assert cond.specialise(parse("pathway is ACT or x is YES"), {"pathway": "ACT"}) is True

    def test_decided_false(self) -> None:
        """A condition decided by the known values becomes False."""
        assert cond.specialise(parse("pathway is ACT and x is YES"), {"pathway": "LEARN"}) is False

    def test_residual(self) -> None:
        """Comparisons on unsettled names remain; settled ones that do not decide drop out."""
        condition = parse("pathway is ACT and (x is YES or y is NO)")
        assert cond.specialise(condition, {"pathway": "ACT"}) == AnyOf(
            (Compare("x", "is", "YES"), Compare("y", "is", "NO"))
        )

    def test_single_residual_is_unwrapped(self) -> None:
        """A connective left with one operand becomes that operand."""
        residual = cond.specialise(parse("pathway is ACT and x is YES"), {"pathway": "ACT"})
        assert residual == Compare("x", "is", "YES")

    def test_settled_but_missing_is_unanswered(self) -> None:
        """A decided name absent from ``known`` is unanswered, not unknown."""
        condition = parse("pathway is not ACT and x is YES")
        assert cond.specialise(condition, {}, frozenset({"pathway"})) is False
        assert cond.specialise(parse("pathway is unanswered"), {}, frozenset({"pathway"})) is True

    def test_default_settles_only_known_keys(self) -> None:
        """Without ``decided``, a name missing from ``known`` stays in the residual."""
        condition = parse("pathway is unanswered")
        assert cond.specialise(condition, {}) == condition

    def test_nothing_settled_keeps_the_condition(self) -> None:
        """With nothing settled only ``always`` and empty connectives are constants."""
        assert cond.specialise(Always(), {}, frozenset()) is True
        assert cond.specialise(AnyOf(()), {}, frozenset()) is False
        assert cond.specialise(All(()), {}, frozenset()) is True
        assert cond.specialise(parse("x is YES"), {}, frozenset()) == Compare("x", "is", "YES")

    def test_always_drops_out_of_an_and(self) -> None:
        """``always and x`` specialises to ``x``."""
        assert cond.specialise(parse("always and x is YES"), {}, frozenset()) == Compare("x", "is", "YES")

    def test_not_is_refused(self) -> None:
        """A condition still containing ``not`` is a programming error, named as such, never half-evaluated."""
        with pytest.raises(TypeError, match=r"^specialise\(\) needs a condition in negation normal form$"):
            cond.specialise(Not(A), {"a": "YES"})


# --- text -------------------------------------------------------------------------------


class TestToText:
    """to_text writes conditions back as an author would."""

    @pytest.mark.parametrize(
        "text",
        [
            "x is YES",
            "x is not YES",
            "x < 3",
            "x >= -2.5",
            "x = 0.1",
            "x in [A, B]",
            "x not in [A, B]",
            "x is answered",
            "x is unanswered",
            "always",
            "x is true",
            "x is false",
            "a is YES and b is YES",
            "a is YES or (b is YES and c is YES)",
            "(a is YES or b is YES) and c is YES",
            "not (a is YES)",
            'x is "two words"',
            'x is "and"',
            'x is "12"',
            'x is ""',
            "x is 'say \"hi\"'",
        ],
    )
    def test_canonical_text_is_reproduced(self, text: str) -> None:
        """Canonical text renders back to itself."""
        assert cond.to_text(parse(text)) == text

    def test_quotes_only_when_needed(self) -> None:
        """A quoted literal that reads as a plain code is written without quotes."""
        assert cond.to_text(parse('x is "YES"')) == "x is YES"

    def test_integers_lose_the_decimal_point(self) -> None:
        """A whole number is written without ``.0``."""
        assert cond.to_text(parse("x > 3.0")) == "x > 3"

    @pytest.mark.parametrize(
        "literal", ["0.0000001", "0.00001234", "123456789012345.5", "100000000000000000000"]
    )
    def test_extreme_numbers_render_as_parseable_decimals(self, literal: str) -> None:
        """Very small or very large numbers are written positionally, never in exponent form."""
        condition = parse(f"x < {literal}")
        assert cond.to_text(condition) == f"x < {literal}"
        assert parse(cond.to_text(condition)) == condition

    def test_empty_connectives(self) -> None:
        """The empty ``and`` is ``always`` and the empty ``or`` is ``not (always)``."""
        assert cond.to_text(All(())) == "always"
        assert cond.to_text(AnyOf(())) == "not (always)"

    def test_nested_same_connective_is_grouped(self) -> None:
        """A nested ``and`` inside ``and`` keeps its parentheses so the tree survives."""
        condition = All((All((A, B)), C))
        assert cond.to_text(condition) == "(a is YES and b is YES) and c is YES"
        assert parse(cond.to_text(condition)) == condition

    def test_a_one_item_connective_is_not_bracketed(self) -> None:
        """A one-item ``or`` inside an ``and`` (``has any [X]`` after NNF) reads as its item, unbracketed."""
        assert cond.to_text(All((AnyOf((A,)), B))) == "a is YES and b is YES"

    def test_lower_case_and_mixed_case_codes_are_written_bare(self) -> None:
        """Only text that would not read as one name (or is a keyword) is quoted, whatever its case."""
        assert cond.to_text(parse("x is night_shift")) == "x is night_shift"
        assert cond.to_text(parse('x is "Ward_7"')) == "x is Ward_7"

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (True, "true"), (False, "false"), (3.0, "3"), (-0.5, "-0.5"), (1e-7, "0.0000001"), ("YES", "YES"),
            (("PATIENT", "FAMILY"), "[PATIENT, FAMILY]"), ((), "[]"),
        ],
    )
    def test_format_value(self, value: cond.Value, text: str) -> None:
        """format_value writes a value the way a condition would."""
        assert cond.format_value(value) == text

    def test_describe_facts(self) -> None:
        """describe_facts lists each name with its value, or as unanswered."""
        assert cond.describe_facts(("a", "b", "n"), {"a": "YES", "n": 2.0}) == "a = YES, b unanswered, n = 2"
        assert cond.describe_facts((), {}) == "no facts read"


# --- durable_rules patterns ---------------------------------------------------------------


class TestPattern:
    """pattern translates NNF conditions to durable_rules expressions (ANDed)."""

    @pytest.mark.parametrize(
        ("text", "expressions"),
        [
            ("always", []),
            ("x is YES", [{"x": "YES"}]),
            ("x = 3", [{"x": 3.0}]),
            ("x is not YES", [{"$neq": {"x": "YES"}}]),
            ("x != 3", [{"$neq": {"x": 3.0}}]),
            ("x < 3", [{"$lt": {"x": 3.0}}]),
            ("x <= 3", [{"$lte": {"x": 3.0}}]),
            ("x > 3", [{"$gt": {"x": 3.0}}]),
            ("x >= 3", [{"$gte": {"x": 3.0}}]),
            ("x is true", [{"x": True}]),
            ("x is answered", [{"$ex": {"x": 1}}]),
            ("x is unanswered", [{"$nex": {"x": 1}}]),
            ("x in [A]", [{"x": "A"}]),
            ("x in [A, B]", [{"$or": [{"x": "A"}, {"x": "B"}]}]),
            ("x not in [A, B]", [{"$neq": {"x": "A"}}, {"$neq": {"x": "B"}}]),
            ("a is YES and b is NO", [{"a": "YES"}, {"b": "NO"}]),
            ("a is YES and (b is NO and c is YES)", [{"a": "YES"}, {"b": "NO"}, {"c": "YES"}]),
            (
                "a is answered or b is answered",
                [{"$or": [{"$ex": {"a": 1}}, {"$and": [{"$nex": {"a": 1}}, {"$ex": {"b": 1}}]}]}],
            ),
        ],
    )
    def test_expressions(self, text: str, expressions: list[dict[str, Any]]) -> None:
        """The condition compiles to exactly these expressions."""
        assert pattern(parse(text)) == expressions

    def test_or_alternatives_are_made_exclusive(self) -> None:
        """Each ``or`` alternative after the first also requires every earlier one to fail (gaps included)."""
        not_a = {"$or": [{"$nex": {"a": 1}}, {"$and": [{"$ex": {"a": 1}}, {"$neq": {"a": "YES"}}]}]}
        expected = [{"$or": [{"a": "YES"}, {"$and": [not_a, {"b": "NO"}]}]}]
        assert pattern(parse("a is YES or b is NO")) == expected

    def test_single_branch_or_is_unwrapped(self) -> None:
        """An ``or`` of one branch is that branch, without ``$or``."""
        assert pattern(AnyOf((All((A, B)),))) == [{"$and": [{"a": "YES"}, {"b": "YES"}]}]

    def test_empty_alternative_matches_any_case(self) -> None:
        """An alternative with no expressions (``always``) becomes a test every case fact passes."""
        assert pattern(AnyOf((Always(),))) == [{"$ex": {"type": 1}}]

    def test_not_is_refused(self) -> None:
        """A condition still containing ``not`` is a programming error, not a silent mistranslation."""
        with pytest.raises(TypeError, match="negation normal form"):
            pattern(parse("not (x is YES)"))


class TestComplement:
    """complement is the exact negation of holds, unanswered facts included."""

    def test_comparison(self) -> None:
        """The complement of a comparison is its negation, or the fact unanswered."""
        assert complement(A) == AnyOf((Answered("a", negated=True), Compare("a", "is not", "YES")))

    def test_membership(self) -> None:
        """The complement of ``in`` is ``not in``, or the fact unanswered."""
        assert complement(parse("x in [P, Q]")) == AnyOf(
            (Answered("x", negated=True), Member("x", ("P", "Q"), negated=True))
        )

    def test_answered(self) -> None:
        """The complement of an answered test is the opposite test (no extra gap)."""
        assert complement(Answered("x")) == Answered("x", negated=True)
        assert complement(Answered("x", negated=True)) == Answered("x")

    def test_connectives_and_constants(self) -> None:
        """De Morgan on connectives; ``always`` becomes the empty ``or``."""
        assert complement(Always()) == AnyOf(())
        assert complement(All((Answered("a"), Answered("b")))) == AnyOf(
            (Answered("a", negated=True), Answered("b", negated=True))
        )
        assert complement(AnyOf(())) == All(())

    def test_not_is_refused(self) -> None:
        """Complement needs NNF: a ``not`` is a programming error."""
        with pytest.raises(TypeError, match="negation normal form"):
            complement(Not(A))

    def test_unanswered_fact_is_in_the_complement(self) -> None:
        """Where plain negation is false on a gap, the complement holds."""
        assert not cond.holds(cond.to_nnf(Not(A)), {})
        assert cond.holds(complement(A), {})


# --- properties ---------------------------------------------------------------------------

# One fact per value type, with literals that include the awkward cases: text
# needing quotes, keywords as text, tiny and huge numbers, negative numbers.
CODES = ("YES", "NO", "MAYBE")
TEXTS = ("YES", "two words", "and", "12", "", 'say "hi"', "it's")
NUMBERS = (-2.5, 0.0, 1.0, 3.0, 0.1, 1e-7, 1e20)
FACT_VALUES: dict[str, tuple[cond.Value, ...]] = {
    "code": CODES,
    "text": TEXTS,
    "num": NUMBERS,
    "flag": (True, False),
}
EQUALITY_OPS = ("is", "is not", "=", "!=")
ORDER_OPS = ("<", "<=", ">", ">=")


@st.composite
def atoms_(draw: st.DrawFn) -> cond.Condition:
    """Draw a well-typed comparison, membership or answered test on one of the facts.

    The kind is drawn first and evenly, so number ordering (only on ``num``) is as
    common as the other kinds rather than a rare corner.
    """
    kind = draw(st.sampled_from(("order", "equality", "member", "answered")))
    fact = "num" if kind == "order" else draw(st.sampled_from(sorted(FACT_VALUES)))
    values = FACT_VALUES[fact]
    if kind == "answered":
        return Answered(fact, negated=draw(st.booleans()))
    if kind == "member":
        chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
        return Member(fact, tuple(chosen), negated=draw(st.booleans()))
    ops = ORDER_OPS if kind == "order" else EQUALITY_OPS
    return Compare(fact, draw(st.sampled_from(ops)), draw(st.sampled_from(values)))


conditions_ = st.recursive(
    st.one_of(atoms_(), st.just(Always())),
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=1, max_size=3).map(lambda items: All(tuple(items))),
        st.lists(children, min_size=1, max_size=3).map(lambda items: AnyOf(tuple(items))),
        st.lists(children, max_size=0).map(lambda items: All(tuple(items))),
        st.lists(children, max_size=0).map(lambda items: AnyOf(tuple(items))),
    ),
    max_leaves=10,
)


@st.composite
def fact_maps(draw: st.DrawFn) -> dict[str, cond.Value]:
    """Normalised facts: each fact absent or one of its values (numbers also off the literal grid)."""
    facts: dict[str, cond.Value] = {}
    for fact, values in FACT_VALUES.items():
        pool: st.SearchStrategy[cond.Value] = st.sampled_from(values)
        if fact == "num":
            pool = st.one_of(pool, st.floats(min_value=-1e21, max_value=1e21, allow_nan=False))
        value = draw(st.one_of(st.none(), pool))
        if value is not None:
            facts[fact] = value
    return facts


ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
DURABLE_ORDER = {"$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge}


def same(value: cond.Value, literal: Any) -> bool:
    """Report type-strict equality: true is not 1, "1" is not 1."""
    return type(value) is type(literal) and value == literal


def kleene(condition: cond.Condition, facts: Mapping[str, cond.Value]) -> bool | None:
    """Evaluate the documented meaning in three-valued logic: None when a comparison's fact is unanswered."""
    if isinstance(condition, Always):
        return True
    if isinstance(condition, Not):
        inner = kleene(condition.item, facts)
        return None if inner is None else not inner
    if isinstance(condition, All | AnyOf):
        results = [kleene(item, facts) for item in condition.items]
        decisive = isinstance(condition, AnyOf)  # True decides an or, False decides an and
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    if isinstance(condition, Answered):
        return (condition.fact in facts) != condition.negated
    return kleene_atom(condition, facts[condition.fact]) if condition.fact in facts else None


def kleene_atom(condition: Compare | Member, value: cond.Value) -> bool:
    """Evaluate a comparison on an answered fact."""
    if isinstance(condition, Member):
        return any(same(value, v) for v in condition.values) != condition.negated
    if condition.op in ("is", "="):
        return same(value, condition.value)
    if condition.op in ("is not", "!="):
        return not same(value, condition.value)
    assert isinstance(value, float)
    assert isinstance(condition.value, float)
    return bool(ORDER[condition.op](value, condition.value))


def matches(expression: Mapping[str, Any], case: Mapping[str, Any]) -> bool:
    """Read a durable_rules expression as the compiler relies on it: comparing an absent field fails."""
    ((key, operand),) = expression.items()
    if key in ("$and", "$or"):
        results = [matches(item, case) for item in operand]
        return all(results) if key == "$and" else any(results)
    ((field, literal),) = operand.items() if key.startswith("$") else ((key, operand),)
    if key in ("$ex", "$nex"):
        return (field in case) == (key == "$ex")
    if field not in case:
        return False
    if key in DURABLE_ORDER:
        return bool(DURABLE_ORDER[key](case[field], literal))
    return same(case[field], literal) == (key != "$neq")


def or_nodes(expression: Any) -> Iterator[list[Mapping[str, Any]]]:
    """Yield the alternatives of every ``$or`` anywhere in a pattern."""
    if isinstance(expression, list):
        for item in expression:
            yield from or_nodes(item)
    elif isinstance(expression, dict):
        for key, operand in expression.items():
            if key == "$or":
                yield operand
            yield from or_nodes(operand)


def distinct_members(condition: cond.Condition) -> bool:
    """Report whether every ``in`` list names each value once."""
    return all(len(set(a.values)) == len(a.values) for a in cond.atoms(condition) if isinstance(a, Member))


def has_not(condition: cond.Condition) -> bool:
    """Whether any ``not`` remains in the tree."""
    if isinstance(condition, Not):
        return True
    if isinstance(condition, All | AnyOf):
        return any(has_not(item) for item in condition.items)
    return False


class TestProperties:
    """The meaning is consistent across every function that handles conditions."""

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_holds_is_the_three_valued_meaning(
        self, condition: cond.Condition, facts: dict[str, Any]
    ) -> None:
        """A condition holds exactly when it is definitely true with gaps as unknown."""
        assert cond.holds(condition, facts) is (kleene(condition, facts) is True)

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_nnf_keeps_the_meaning(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """to_nnf removes every ``not`` and keeps the three-valued meaning; a second pass changes nothing."""
        nnf = cond.to_nnf(condition)
        assert not has_not(nnf)
        # holds() itself goes through to_nnf, so judge the NNF with the independent reading too.
        assert (kleene(nnf, facts) is True) is (kleene(condition, facts) is True)
        assert cond.holds(nnf, facts) == cond.holds(condition, facts)
        assert cond.to_nnf(nnf) == nnf

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_text_round_trips(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """parse(to_text(c)) is a condition with the same meaning."""
        reparsed = parse(cond.to_text(condition))
        assert cond.holds(reparsed, facts) == cond.holds(condition, facts)
        assert cond.to_text(reparsed) == cond.to_text(parse(cond.to_text(reparsed)))

    @given(conditions_, fact_maps(), st.sets(st.sampled_from(sorted(FACT_VALUES))))
    @settings(max_examples=400)
    def test_specialise_agrees_with_holds(
        self, condition: cond.Condition, facts: dict[str, Any], decided: set[str]
    ) -> None:
        """Settling some facts then supplying the rest gives the same answer as holds."""
        nnf = cond.to_nnf(condition)
        known = {name: value for name, value in facts.items() if name in decided}
        residual = cond.specialise(nnf, known, frozenset(decided))
        expected = cond.holds(condition, facts)
        if isinstance(residual, bool):
            assert residual is expected
        else:
            assert cond.holds(residual, facts) is expected
            assert not set(cond.facts_read(residual)) & decided

    @given(conditions_, fact_maps(), st.sets(st.sampled_from(sorted(FACT_VALUES))))
    @settings(max_examples=200)
    def test_specialise_defaults_to_the_known_keys(
        self, condition: cond.Condition, facts: dict[str, Any], names: set[str]
    ) -> None:
        """Without ``decided``, exactly the keys of ``known`` are settled."""
        nnf = cond.to_nnf(condition)
        known = {name: value for name, value in facts.items() if name in names}
        assert cond.specialise(nnf, known) == cond.specialise(nnf, known, frozenset(known))

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_complement_is_exact(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """complement(c) holds exactly when c does not, unanswered facts included."""
        nnf = cond.to_nnf(condition)
        comp = complement(nnf)
        assert not has_not(comp)
        assert cond.holds(comp, facts) is (not cond.holds(condition, facts))

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_implied_facts_are_present(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """Whenever the NNF condition holds, every implied fact is answered."""
        nnf = cond.to_nnf(condition)
        if cond.holds(nnf, facts):
            assert cond.implied_facts(nnf) <= facts.keys()

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_pattern_agrees_with_holds(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """The durable_rules pattern of the NNF condition matches the case exactly when it holds."""
        case = {**facts, "type": "case"}
        expressions = pattern(cond.to_nnf(condition))
        assert all(matches(e, case) for e in expressions) is cond.holds(condition, facts)

    @given(conditions_, fact_maps())
    @settings(max_examples=400)
    def test_or_alternatives_are_exclusive(self, condition: cond.Condition, facts: dict[str, Any]) -> None:
        """At most one alternative of each ``$or`` matches, so a matching rule fires once."""
        assume(distinct_members(condition))
        case = {**facts, "type": "case"}
        for alternatives in or_nodes(pattern(cond.to_nnf(condition))):
            assert sum(matches(branch, case) for branch in alternatives) <= 1

    @given(conditions_)
    @settings(max_examples=200)
    def test_required_facts_are_read(self, condition: cond.Condition) -> None:
        """required_facts names each fact that some comparison (not a presence test) reads, once."""
        required = cond.required_facts(condition)
        compared = [a.fact for a in cond.atoms(condition) if not isinstance(a, Answered)]
        assert len(set(required)) == len(required)
        assert set(required) == set(compared)
        assert set(required) <= set(cond.facts_read(condition))
