"""
Replicate Amazon DynamoDB Streams into relational databases, one batch per transaction.
"""

from . import containers, exceptions, schema, typing
from ._app import App
from ._aws import AwsClients
from ._backfill import Backfill, BackfillProgress
from ._dispatch import BatchResult, RecordFailure
from ._events import EventBatch, TumblingWindow, load_event, parse_event, read_event
from ._mapping import RowMapper
from ._records import EventName, StreamRecord, StreamViewType
from ._registry import Registration
from ._runner import RunnerProgress, StreamRunner
from ._settings import Settings
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
from .schema import deleted_column, sequence_column
from .typing import Item, Mapper, StreamEventHandler

__all__ = [
    "App",
    "AwsClients",
    "Backfill",
    "BackfillError",
    "BackfillProgress",
    "BatchResult",
    "CheckpointConflictError",
    "ColumnValueError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "DynastreamError",
    "EventBatch",
    "EventName",
    "Item",
    "MalformedEventError",
    "MalformedRecordError",
    "Mapper",
    "MappingError",
    "NoHandlerError",
    "RecordFailedError",
    "RecordFailure",
    "Registration",
    "RowMapper",
    "RunnerProgress",
    "Settings",
    "SourceError",
    "StreamEventHandler",
    "StreamRecord",
    "StreamRunner",
    "StreamViewType",
    "TimeBudgetError",
    "TumblingWindow",
    "UnitOfWork",
    "UnitOfWorkError",
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
