"""
What one invocation did: the first record that failed, and the batch's result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from dynastream._records import TumblingWindow
    from dynastream._summary import BatchSummary

__all__ = ["BatchResult", "RecordFailure"]


@attrs.frozen
class RecordFailure:
    """
    The first record of a batch that could not be applied.

    Attributes:
        index: Its position in the batch (0-based).
        item_identifier: Its sequence number as sent: what `batchItemFailures`
            reports.
        event_id: Its `eventID`, when it could be read.
        error: Why it failed: a `MalformedRecordError`, `NoHandlerError`,
            `MappingError`, or the exception a handler raised.
    """

    index: int
    item_identifier: str
    event_id: str | None
    error: BaseException = attrs.field(eq=False)


@attrs.frozen
class BatchResult:
    """
    What one invocation did.

    Attributes:
        total: Records in the event.
        applied: Records applied and committed (those before `failure`).
        failure: The first record that could not be applied, or `None`.
        window: The tumbling-window envelope, when the event had one.
        quarantined: Records set aside in `dynastream_quarantine` (tables whose
            poison policy is quarantine); the records after them were applied.
        summary: The counts by outcome, duration and lag that were logged and
            published as metrics.
    """

    total: int
    applied: int
    failure: RecordFailure | None = None
    window: TumblingWindow | None = None
    quarantined: tuple[RecordFailure, ...] = ()
    summary: BatchSummary | None = attrs.field(default=None, eq=False, repr=False)

    def response(self) -> dict[str, Any]:
        """
        Return the Lambda response for this batch.

        `{"batchItemFailures": [...]}` names the failed record's sequence
        number (an empty list when every record was applied); tumbling-window
        invocations also pass their `state` through.
        """
        failures = []
        if self.failure is not None:
            failures.append({"itemIdentifier": self.failure.item_identifier})
        response: dict[str, Any] = {"batchItemFailures": failures}
        if self.window is not None:
            response["state"] = dict(self.window.state)
        return response
