"""
Replicate Amazon DynamoDB Streams into relational databases, one batch per transaction.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import containers, exceptions, schema, typing
from ._app import App
from ._events import load_event, parse_event, read_event
from ._logging import JsonFormatter, configure_logging
from ._metrics import EmfMetrics
from ._records import EventBatch, EventName, RecordSource, StreamRecord, StreamViewType, TumblingWindow
from ._registry import Registration
from ._results import BatchResult, RecordFailure
from ._settings import Settings
from ._summary import BatchSummary, TableSummary
from ._uow import UnitOfWork
from .exceptions import (
    BackfillError,
    CheckpointConflictError,
    ColumnValueError,
    CommitOutcomeUnknownError,
    ConfigurationError,
    DynastreamError,
    MalformedEventError,
    MalformedRecordError,
    MappingError,
    NoHandlerError,
    RecordFailedError,
    SourceError,
    TimeBudgetError,
    UnitOfWorkError,
)
from .schema import ExactString, deleted_column, sequence_column
from .typing import Item, Mapper, StreamEventHandler

if _TYPE_CHECKING:
    from ._replication.mapping import RowMapper
    from ._sources.aws import AwsClients
    from ._sources.backfill import Backfill, BackfillProgress
    from ._sources.runner import RunnerProgress, StreamRunner

__all__ = [
    "App",
    "AwsClients",
    "Backfill",
    "BackfillError",
    "BackfillProgress",
    "BatchResult",
    "BatchSummary",
    "CheckpointConflictError",
    "ColumnValueError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "DynastreamError",
    "EmfMetrics",
    "EventBatch",
    "EventName",
    "ExactString",
    "Item",
    "JsonFormatter",
    "MalformedEventError",
    "MalformedRecordError",
    "Mapper",
    "MappingError",
    "NoHandlerError",
    "RecordFailedError",
    "RecordFailure",
    "RecordSource",
    "Registration",
    "RowMapper",
    "RunnerProgress",
    "Settings",
    "SourceError",
    "StreamEventHandler",
    "StreamRecord",
    "StreamRunner",
    "StreamViewType",
    "TableSummary",
    "TimeBudgetError",
    "TumblingWindow",
    "UnitOfWork",
    "UnitOfWorkError",
    "configure_logging",
    "containers",
    "deleted_column",
    "exceptions",
    "load_event",
    "parse_event",
    "read_event",
    "schema",
    "sequence_column",
    "typing",
]

__version__ = "0.1.0.dev0"

# Imported on first use (DESIGN §2.10, cold start): a Lambda handler needs none of
# them before it calls `App.replicate`, and the stream runner and the backfill bring
# threads, queues and the AWS helpers along.
_ON_DEMAND = {
    "AwsClients": "._sources.aws",
    "Backfill": "._sources.backfill",
    "BackfillProgress": "._sources.backfill",
    "RowMapper": "._replication.mapping",
    "RunnerProgress": "._sources.runner",
    "StreamRunner": "._sources.runner",
}


def __getattr__(name: str) -> object:
    """
    Import a public name of `_ON_DEMAND` on first use, then keep it here.

    Raises:
        AttributeError: `name` is not a member of dynastream.
    """
    module = _ON_DEMAND.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_DEMAND})
