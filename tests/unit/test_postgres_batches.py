"""PostgreSQL appends: every INSERT of several rows goes as ONE statement over column arrays.

A group commit writes a batch of decisions per transaction; one statement per row would make the
transaction's single statement grow with the batch (past libpq's 65,535 parameters for a large one)
and never be prepared. The rewrite only applies to a ``VALUES`` of placeholders, so every insert the
store makes must keep its constants out of ``VALUES``.
"""

from __future__ import annotations

import pytest
from fairpath.audit import queries
from fairpath.audit.postgres import _statements

INSERTS = {
    **{f"decision, format {layout}": sql for layout, sql in queries.INSERT_DECISIONS.items()},
    **{f"trace entry, format {layout}": sql for layout, sql in queries.INSERT_ENTRIES.items()},
    "rule row": queries.INSERT_RULE,
    "equality group": queries.INSERT_EQUALITY,
    "sensitive facts": queries.INSERT_SENSITIVE,
    "outcome": queries.INSERT_OUTCOME,
}


@pytest.mark.parametrize("sql", INSERTS.values(), ids=INSERTS.keys())
def test_several_rows_of_every_insert_are_one_statement_over_arrays(sql: str) -> None:
    """Three rows in, one ``INSERT … SELECT * FROM unnest(…)`` out, one array per column."""
    native = sql.replace("?", "%s")
    width = native.count("%s")
    rows = [(7, b"\x0a\x01x", *(f"value {row}" for _ in range(width - 2))) for row in range(3)]

    statements = list(_statements(native, rows))

    assert len(statements) == 1
    text, arrays = statements[0]
    assert "unnest(%b::bigint[], %b::bytea[]" in text
    assert len(arrays) == width
    assert arrays[0] == [7, 7, 7]


def test_one_row_is_left_as_it_is() -> None:
    """A single row is cheaper as the plain statement."""
    native = queries.INSERT_RULE.replace("?", "%s")

    assert list(_statements(native, [("4a", 3)])) == [(native, ("4a", 3))]
