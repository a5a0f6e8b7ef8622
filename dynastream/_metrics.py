"""
Metrics: one CloudWatch Embedded Metric Format document per batch.

The default sink, `EmfMetrics`, prints the document to standard output, which
Lambda sends to CloudWatch Logs and CloudWatch turns into metrics. Nothing in
it holds item data: table names, counts, durations, and the names of
attributes that have no column.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ._summary import rank_unmapped

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
# Attribute names with no column get a document each, the most frequent of each table's
# batch: every AttributeName value is a metric of its own, which CloudWatch bills.
_ATTRIBUTE_DOCUMENTS = 10


class EmfMetrics:
    r"""
    Publishes each batch's metrics as CloudWatch Embedded Metric Format.

    One JSON document per table of the batch (one per batch for an event
    source mapping, which reads one table's stream), printed on one line to
    standard output: Lambda sends it to CloudWatch Logs, which extracts the
    metrics. Metrics: `RecordsApplied`, `RecordsStaleSkipped`,
    `RecordsDeleted`, `RecordsQuarantined`, `RecordsFailed` (Count),
    `RecordsTied` (Count, in a batch that had ties of Kinesis Data Streams
    changes), `UnmappedAttributes` (Count: how many attribute names had no
    column, in a batch that had some), `BatchDuration` and `ReplicationLag`
    (Milliseconds); dimensions `TableName`, and `FunctionName` when the
    Lambda context gives it.

    A batch whose images carried attributes with no column (see
    `TableSummary.unmapped`) adds one document per attribute name, for the
    10 most frequent of each table: the metric `RecordsWithUnmappedAttribute`
    (Count) with the dimension `AttributeName` as well. Each name is a
    metric of its own, which CloudWatch bills. The dimension's value is the
    name as the summary line shows it (at most 100 characters and `…`),
    written in ASCII with Python's escapes (`é` is `\xe9`, a line break
    `\n`), as CloudWatch requires of dimension values.

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
        Return the EMF documents for a batch: one per table, then one per attribute without a column.

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
            if table.unmapped:
                metrics.append({"Name": "UnmappedAttributes", "Unit": "Count"})
                values["UnmappedAttributes"] = len(table.unmapped)
            metrics.append({"Name": "BatchDuration", "Unit": "Milliseconds"})
            values["BatchDuration"] = round(summary.duration_ms, 3)
            if table.max_lag_ms is not None:
                metrics.append({"Name": "ReplicationLag", "Unit": "Milliseconds"})
                values["ReplicationLag"] = round(table.max_lag_ms, 3)
            documents.append(self._document(stamp, dimensions, metrics, values))
            listed, _ = rank_unmapped(table.unmapped, _ATTRIBUTE_DOCUMENTS)
            for name, count in listed:
                documents.append(
                    self._document(
                        stamp,
                        {**dimensions, "AttributeName": dimension_value(name)},
                        [{"Name": "RecordsWithUnmappedAttribute", "Unit": "Count"}],
                        {"RecordsWithUnmappedAttribute": count},
                    )
                )
        return documents

    def _document(
        self, stamp: int, dimensions: dict[str, str], metrics: list[dict[str, str]], values: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": stamp,
                "CloudWatchMetrics": [
                    {"Namespace": self.namespace, "Dimensions": [list(dimensions)], "Metrics": metrics}
                ],
            },
            **dimensions,
            **values,
        }

    def publish(self, summary: BatchSummary) -> None:
        """
        Print the batch's documents, one line each.
        """
        stream = sys.stdout if self.stream is None else self.stream
        for document in self.documents(summary):
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()


def dimension_value(name: str) -> str:
    r"""
    Return an attribute name as a CloudWatch dimension value takes it.

    Values must be ASCII, with no control character, not blank, and at most
    1,024 characters
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html):
    other characters are written with Python's escapes, and a blank name as
    Python's `repr`. A name as the summary shows it (`shown_name`: 101
    characters at most) stays within 1,024 characters, since an escape takes
    10 at most.

    Examples:
        >>> dimension_value("prix_réduit"), dimension_value("  ")
        ('prix_r\\xe9duit', "'  '")
    """
    value = name.encode("ascii", "backslashreplace").decode("ascii").translate(_CONTROL_ESCAPES)
    return value if value.strip() else repr(value)


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


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
