"""
Metrics: one CloudWatch Embedded Metric Format document per batch.

The default sink, `EmfMetrics`, prints the document to standard output, which
Lambda sends to CloudWatch Logs and CloudWatch turns into metrics. Nothing in
it holds item data: table names, counts and durations only.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dynastream._settings import Settings
    from dynastream._summary import BatchSummary
    from dynastream.typing import MetricsSink

__all__ = ["EmfMetrics", "metrics_sink"]


# CloudWatch's units: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
_METRICS = (
    ("RecordsApplied", "Count", "applied"),
    ("RecordsStaleSkipped", "Count", "stale_skipped"),
    ("RecordsDeleted", "Count", "deleted"),
    ("RecordsQuarantined", "Count", "quarantined"),
    ("RecordsFailed", "Count", "failed"),
)


class EmfMetrics:
    """
    Publishes each batch's metrics as CloudWatch Embedded Metric Format.

    One JSON document per table of the batch (one per batch for an event
    source mapping, which reads one table's stream), printed on one line to
    standard output: Lambda sends it to CloudWatch Logs, which extracts the
    metrics. Metrics: `RecordsApplied`, `RecordsStaleSkipped`,
    `RecordsDeleted`, `RecordsQuarantined`, `RecordsFailed` (Count),
    `RecordsTied` (Count, in a batch that had ties of Kinesis Data Streams
    changes), `BatchDuration` and `ReplicationLag` (Milliseconds); dimensions
    `TableName`, and `FunctionName` when the Lambda context gives it.

    Args:
        namespace: The CloudWatch namespace.
        stream: Where to write; standard output (looked up at each batch)
            when omitted.

    Examples:
        >>> import dynastream
        >>> summary = dynastream.BatchSummary(
        ...     tables=(dynastream.TableSummary("Orders", records=3, applied=3),), records=3, duration_ms=8.0)
        >>> document = dynastream.EmfMetrics("shop").documents(summary, timestamp=0)[0]
        >>> document["RecordsApplied"], document["TableName"]
        (3, 'Orders')
    """

    def __init__(self, namespace: str = "dynastream", *, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.stream = stream

    def __repr__(self) -> str:
        return f"EmfMetrics(namespace={self.namespace!r})"

    def documents(self, summary: BatchSummary, *, timestamp: int | None = None) -> list[dict[str, Any]]:
        """
        Return the EMF documents for a batch, one per table.

        Args:
            summary: The batch.
            timestamp: Milliseconds since the epoch; now when omitted.
        """
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        documents = []
        for table in summary.tables:
            dimensions: dict[str, str] = {}
            if summary.function_name is not None:
                dimensions["FunctionName"] = summary.function_name
            if table.table_name is not None:
                dimensions["TableName"] = table.table_name
            metrics: list[dict[str, str]] = [{"Name": name, "Unit": unit} for name, unit, _ in _METRICS]
            values: dict[str, Any] = {name: getattr(table, outcome) for name, _, outcome in _METRICS}
            if table.tied:  # Kinesis Data Streams only
                metrics.append({"Name": "RecordsTied", "Unit": "Count"})
                values["RecordsTied"] = table.tied
            metrics.append({"Name": "BatchDuration", "Unit": "Milliseconds"})
            values["BatchDuration"] = round(summary.duration_ms, 3)
            if table.max_lag_ms is not None:
                metrics.append({"Name": "ReplicationLag", "Unit": "Milliseconds"})
                values["ReplicationLag"] = round(table.max_lag_ms, 3)
            documents.append(
                {
                    "_aws": {
                        "Timestamp": stamp,
                        "CloudWatchMetrics": [
                            {
                                "Namespace": self.namespace,
                                "Dimensions": [list(dimensions)],
                                "Metrics": metrics,
                            }
                        ],
                    },
                    **dimensions,
                    **values,
                }
            )
        return documents

    def publish(self, summary: BatchSummary) -> None:
        """
        Print the batch's documents, one line each.
        """
        stream = sys.stdout if self.stream is None else self.stream
        for document in self.documents(summary):
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()


def metrics_sink(settings: Settings, environ: Mapping[str, str] | None = None) -> MetricsSink | None:
    """
    Return the default metrics sink: `EmfMetrics` inside AWS Lambda, else `None`.

    Outside Lambda (no `AWS_LAMBDA_FUNCTION_NAME`: the stream runner, a test)
    nothing would turn the documents into metrics, and they would clutter the
    terminal; `Settings.metrics` false switches them off inside Lambda too.
    """
    import os

    env = os.environ if environ is None else environ
    if not settings.metrics or not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    return EmfMetrics(settings.metrics_namespace)
