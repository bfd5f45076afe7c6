"""Trail request translation (filters, page sizes, page tokens), store URLs and the --store setting."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fairpath.api import record_convert
from fairpath.api.status import rich_status
from fairpath.audit.postgres import describe
from fairpath.audit.sqlite import path_of
from fairpath.audit.store import check_url
from fairpath.config import Config, ConfigError
from fairpath.decisions import Status
from fairpath.errors import (
    DecisionNotFoundError,
    FieldViolation,
    InvalidRequestError,
    StoreError,
    StoreUnavailableError,
)
from fairpath.v1 import decision_pb2, decision_service_pb2
from google.protobuf import timestamp_pb2


def _filter(**fields: object) -> decision_service_pb2.DecisionFilter:
    return decision_service_pb2.DecisionFilter(**fields)  # type: ignore[arg-type]


def test_a_filter_translates_every_criterion() -> None:
    """Every DecisionFilter field reaches the domain filter; times become aware datetimes."""
    start = timestamp_pb2.Timestamp(seconds=1_790_000_000)
    message = _filter(
        from_time=start,
        policy="p",
        version="1.0.0",
        status=decision_pb2.NEEDS_INFORMATION,
        pathway="X",
        rule_fired="2a",
        incident_ref="I",
        staff_ref="S",
        action_ref="A",
    )

    query = record_convert.filter_from_proto(message)

    assert query.from_time == datetime.fromtimestamp(1_790_000_000, UTC)
    assert query.to_time is None
    assert query.status is Status.NEEDS_INFORMATION
    assert (query.policy, query.version, query.pathway, query.rule_fired) == ("p", "1.0.0", "X", "2a")
    assert (query.incident_ref, query.staff_ref, query.action_ref) == ("I", "S", "A")


def test_a_time_range_ending_before_it_starts_is_refused() -> None:
    """to_time before from_time is INVALID_ARGUMENT on filter.to_time, not an empty page."""
    message = _filter(
        from_time=timestamp_pb2.Timestamp(seconds=20), to_time=timestamp_pb2.Timestamp(seconds=10)
    )

    with pytest.raises(InvalidRequestError) as refused:
        record_convert.filter_from_proto(message)

    assert [v.field for v in refused.value.violations] == ["filter.to_time"]


@pytest.mark.parametrize(("requested", "served"), [(0, 50), (1, 1), (500, 500), (10_000, 500)])
def test_page_sizes_default_to_50_and_are_capped_at_500(requested: int, served: int) -> None:
    """AIP-158: no size means the default; an oversized request is served the maximum."""
    assert record_convert.page_size(requested) == served


def test_a_negative_page_size_is_refused() -> None:
    """A negative page size names page_size."""
    with pytest.raises(InvalidRequestError):
        record_convert.page_size(-1)


def test_a_page_token_round_trips_for_its_own_filter_only() -> None:
    """A token continues after its sequence with the same filter, and is refused with another."""
    mine, other = _filter(policy="p"), _filter(policy="q")
    token = record_convert.page_token(42, mine)

    assert record_convert.after_sequence(token, mine) == 42
    assert record_convert.after_sequence("", mine) == 0
    with pytest.raises(InvalidRequestError, match="different filter"):
        record_convert.after_sequence(token, other)


def test_a_page_token_continues_only_the_order_it_was_issued_for() -> None:
    """A token carries its order: refused in the other order, accepted in its own."""
    query = _filter(policy="p")
    newest = record_convert.page_token(42, query, newest_first=True)
    oldest = record_convert.page_token(42, query)

    assert record_convert.after_sequence(newest, query, newest_first=True) == 42
    assert record_convert.after_sequence(oldest, query) == 42
    with pytest.raises(InvalidRequestError, match="newest first"):
        record_convert.after_sequence(newest, query)
    with pytest.raises(InvalidRequestError, match="oldest first"):
        record_convert.after_sequence(oldest, query, newest_first=True)


def test_a_token_issued_before_orders_existed_continues_oldest_first() -> None:
    """Tokens without an order (issued by the previous release) still page oldest first, and only so."""
    query = _filter(policy="p")
    current = record_convert.page_token(7, query)
    payload = json.loads(base64.urlsafe_b64decode(current + "=" * (-len(current) % 4)))
    del payload["order"]  # what the previous release issued
    legacy = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    assert record_convert.after_sequence(legacy, query) == 7
    with pytest.raises(InvalidRequestError, match="page_token"):
        record_convert.after_sequence(legacy, query, newest_first=True)


@pytest.mark.parametrize(
    ("order", "newest"),
    [
        (decision_service_pb2.DECISION_ORDER_UNSPECIFIED, False),
        (decision_service_pb2.DECISION_ORDER_OLDEST_FIRST, False),
        (decision_service_pb2.DECISION_ORDER_NEWEST_FIRST, True),
    ],
)
def test_orders_translate_with_unspecified_oldest_first(order: int, newest: bool) -> None:
    """An unset order keeps the old behaviour (oldest first)."""
    assert record_convert.newest_first(order) is newest


def test_an_unknown_order_names_the_order_field() -> None:
    """An order value from a newer client is refused, not guessed."""
    with pytest.raises(InvalidRequestError) as refused:
        record_convert.newest_first(9)

    assert [v.field for v in refused.value.violations] == ["order"]


@pytest.mark.parametrize(
    "token", ["not-base64!", "e30", "eyJ2IjoxLCJhZnRlciI6LTEsImZpbHRlciI6IiJ9", "aGVsbG8"]
)
def test_garbled_page_tokens_are_refused(token: str) -> None:
    """Anything that is not a token this service issued is INVALID_ARGUMENT, never a crash."""
    with pytest.raises(InvalidRequestError, match="page_token"):
        record_convert.after_sequence(token, _filter())


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (DecisionNotFoundError("d-1"), 5, "DECISION_NOT_FOUND"),
        (InvalidRequestError([FieldViolation("page_token", "bad")]), 3, "INVALID_REQUEST"),
        (
            StoreUnavailableError("sqlite store unavailable: database is locked (/srv/x)"),
            14,
            "STORE_UNAVAILABLE",
        ),
        (StoreError("corrupt"), 13, "INTERNAL"),
    ],
)
def test_store_errors_become_their_statuses(error: Exception, code: int, reason: str) -> None:
    """The trail's errors map to NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE and INTERNAL in one place."""
    status = rich_status(error, "req-1")

    assert status.code == code
    assert reason in str(status.details[0].value)
    assert "/srv/x" not in status.message  # the store's own words stay in the server log


def test_store_urls_are_checked_and_described_without_secrets() -> None:
    """Only sqlite:/// and postgresql:// are stores; descriptions never show user or password."""
    assert check_url("sqlite:///x.sqlite3") == "sqlite:///x.sqlite3"
    with pytest.raises(StoreError):
        check_url("mysql://h/db")
    assert path_of("sqlite:///relative/x.sqlite3") == "relative/x.sqlite3"
    assert path_of("sqlite:////absolute/x.sqlite3") == "/absolute/x.sqlite3"
    with pytest.raises(StoreError):
        path_of("sqlite:///:memory:")
    assert (
        describe("postgresql://fairpath:s3cret@db:5433/audit?sslmode=require") == "postgresql://db:5433/audit"
    )


def test_the_store_setting_comes_from_flag_or_environment_and_stays_out_of_repr() -> None:
    """--store / FAIRPATH_STORE choose the store; the default is a SQLite file; the URL is not in repr."""
    assert Config().store == "sqlite:///fairpath.sqlite3"
    assert (
        Config.from_sources([], {"FAIRPATH_STORE": "postgresql://u:pw@h/db"}).store
        == "postgresql://u:pw@h/db"
    )
    assert (
        Config.from_sources(["--store", "sqlite:////srv/d.sqlite3"], {}).store == "sqlite:////srv/d.sqlite3"
    )
    assert "pw@" not in repr(Config.from_sources(["--store", "postgresql://u:pw@h/db"], {}))
    with pytest.raises(ConfigError, match="--store"):
        Config.from_sources(["--store", "mysql://h/db"], {})
