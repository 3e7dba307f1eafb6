"""The import checks on their own: statement numbering, and the streaming form the database load will use."""

from __future__ import annotations

import pytest

from reconciliation.importers import ImportChecks, read_import, stream_import
from reconciliation.lines import SequenceNumber
from tests.reconciliation.statement_files import Entry, Stmt, camt053


@pytest.mark.parametrize(
    ("previous", "current", "follows"),
    [
        (SequenceNumber(7), SequenceNumber(8), True),
        (SequenceNumber(7), SequenceNumber(9), False),
        (SequenceNumber(7), SequenceNumber(7), False),
        (SequenceNumber(7, 1), SequenceNumber(7, 2), True),
        (SequenceNumber(7, 2), SequenceNumber(8, 1), True),
        (SequenceNumber(7, 2), SequenceNumber(8, 2), False),
        (SequenceNumber(7, 2), SequenceNumber(7, 4), False),
        (SequenceNumber(7, 2), SequenceNumber(8), True),
    ],
)
def test_which_statement_numbers_follow(
    previous: SequenceNumber, current: SequenceNumber, follows: bool
) -> None:
    assert current.follows(previous) is follows


def test_streaming_with_checks_gives_the_same_verdict_as_a_whole_read() -> None:
    data = camt053(
        Stmt([Entry("1.00")], opening="0.00", closing="1.00", sequence=3),
        Stmt([Entry("1.00")], opening="1.00", closing="3.00", sequence=5),
    )
    checks = ImportChecks("camt053")
    for item in stream_import(data, "camt053"):
        checks.add(item)
    streamed = checks.verdict()
    assert streamed == read_import(data, "camt053").verdict
    assert streamed.quarantined
    assert [finding.kind.value for finding in streamed.findings] == ["unbalanced", "sequence_gap"]
