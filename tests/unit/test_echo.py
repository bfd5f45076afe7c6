"""What errors and logs repeat of a caller's input: fairpath.echo's caps, and the statuses built with them."""

from __future__ import annotations

import base64
from urllib.parse import quote

import grpc
import pytest
from fairpath.api.status import MAX_STATUS_BYTES, MAX_VIOLATIONS, rich_status
from fairpath.echo import MAX_SHOWN, clipped, first, listed, more, prefix, shown
from fairpath.errors import (
    DecisionNotFoundError,
    FieldViolation,
    InvalidFactsError,
    InvalidRequestError,
    PermissionDeniedError,
    PolicyNotFoundError,
)
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

#: gRPC's default limit on the metadata (headers or trailers) a peer accepts.
GRPC_METADATA_LIMIT = 8 * 1024


def test_a_short_value_is_shown_whole_and_quoted() -> None:
    """Values within the limit are repr()-quoted, so control characters cannot break a message or a line."""
    assert shown("nhs-guide") == "'nhs-guide'"
    assert shown("a\nb") == "'a\\nb'"


def test_a_long_value_is_shown_as_a_prefix_and_its_length() -> None:
    """A 3,000,000-character value becomes its first characters, an ellipsis and how long it was."""
    assert shown("a" * 3_000_000) == f"'{'a' * MAX_SHOWN}…' (3000000 characters)"
    assert shown("abcdefghij", 4) == "'abcd…' (10 characters)"
    assert shown("abcd", 4) == "'abcd'"


def test_prefix_and_clipped_cut_unquoted_text() -> None:
    """Field paths keep a marked prefix; free text also says how long it was."""
    assert prefix("x" * 10, 4) == "xxxx…"
    assert prefix("xxxx", 4) == "xxxx"
    assert clipped("y" * 10, 3) == "yyy… (10 characters)"
    assert clipped("yyy", 3) == "yyy"


def test_lists_keep_their_first_items_and_count_the_rest() -> None:
    """At most ``limit`` items are kept; the rest are counted, never listed."""
    assert listed(["a", "b", "c"], 2) == ["a", "b", "and 1 more"]
    assert listed(["a", "b"], 2) == ["a", "b"]
    assert first([1, 2, 3, 4], 3) == ([1, 2, 3], 1)
    assert more(52) == "and 52 more"


def test_domain_errors_echo_request_values_capped() -> None:
    """Policy names, decision ids, callers and methods are echoed as prefixes with their length."""
    huge = "p" * 3_000_000
    assert len(str(PolicyNotFoundError(huge, "1.0.0"))) < 200
    assert "(3000006 characters)" in str(PolicyNotFoundError(huge, "1.0.0"))
    assert len(str(DecisionNotFoundError(huge))) < 200
    assert len(str(PermissionDeniedError(huge, "/" + huge))) < 400


def test_an_error_with_many_violations_lists_ten_and_counts_the_rest() -> None:
    """60 undeclared facts: the message names ten descriptions and 'and 50 more'."""
    error = InvalidFactsError([FieldViolation(f"facts.{'f' * 60}{n:04}", "not a fact of p@1.0.0") for n in range(60)])
    assert str(error).count("not a fact") == 10
    assert str(error).endswith("; and 50 more")
    assert str(InvalidRequestError([FieldViolation("a", "b")] * 11)).endswith("; and 1 more")


def _violations(status: object) -> list[tuple[str, str]]:
    for packed in status.details:  # type: ignore[attr-defined]
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            return [(str(v.field), str(v.description)) for v in bad.field_violations]
    return []


def _trailer_bytes(status: object) -> int:
    """Bytes of the trailer values grpc sends for ``status``: grpc-message (percent-encoded), base64 details."""
    printable = "".join(map(chr, range(0x20, 0x7F))).replace("%", "")
    message = quote(status.message.encode(), safe=printable)  # type: ignore[attr-defined]
    details = base64.b64encode(status.SerializeToString())  # type: ignore[attr-defined]
    return len(message) + len(details)


def test_sixty_undeclared_facts_fit_in_the_trailers() -> None:
    """The reported case: 60 undeclared facts with 64-character names stay far under gRPC's 8 KiB."""
    error = InvalidFactsError(
        [FieldViolation(f"facts.{'n' * 60}{n:04}", "not a fact of nhs-just-culture-guide@1.0.0") for n in range(60)]
    )
    status = rich_status(error, "r" * 128)
    violations = _violations(status)
    assert len(violations) == MAX_VIOLATIONS + 1
    assert violations[-1] == ("facts", "and 50 more")
    assert _trailer_bytes(status) <= MAX_STATUS_BYTES < GRPC_METADATA_LIMIT


@pytest.mark.parametrize("character", ["a", "é", "\U0001f600", "\n"])
def test_the_worst_violations_still_fit(character: str) -> None:
    """Dozens of violations with huge fields and descriptions, in 1-4 byte characters, fit the budget."""
    value = character * 100_000
    error = InvalidRequestError([FieldViolation(f"{value}.{n}", value) for n in range(30)])
    status = rich_status(error, "r" * 128)
    violations = _violations(status)
    assert 1 <= len(violations) <= MAX_VIOLATIONS + 1
    assert violations[-1][1].startswith("and ")
    assert _trailer_bytes(status) <= MAX_STATUS_BYTES
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_a_huge_message_and_metadata_are_cut_to_fit() -> None:
    """An error whose own words and ErrorInfo values are megabytes long still fits, its reason intact."""
    status = rich_status(PolicyNotFoundError("é" * 3_000_000, "1" * 3_000_000), "r" * 128)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.reason == "POLICY_NOT_FOUND"
    assert all(len(value) <= 129 for value in info.metadata.values())
    assert _trailer_bytes(status) <= MAX_STATUS_BYTES
