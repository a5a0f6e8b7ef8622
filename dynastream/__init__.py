"""
Replicate Amazon DynamoDB Streams into relational databases, one batch per transaction.
"""

from . import containers, exceptions, schema, typing
from ._app import App
from ._dispatch import BatchResult, RecordFailure
from ._events import EventBatch, TumblingWindow, load_event, parse_event, read_event
from ._mapping import RowMapper
from ._records import EventName, StreamRecord, StreamViewType
from ._registry import Registration
from ._settings import Settings
from ._uow import UnitOfWork
from .exceptions import (
    ColumnValueError,
    CommitOutcomeUnknownError,
    ConfigurationError,
    DynastreamError,
    MalformedEventError,
    MalformedRecordError,
    MappingError,
    NoHandlerError,
    TimeBudgetError,
    UnitOfWorkError,
)
from .schema import deleted_column, sequence_column
from .typing import Item, Mapper, StreamEventHandler

__all__ = [
    "App",
    "BatchResult",
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
    "RecordFailure",
    "Registration",
    "RowMapper",
    "Settings",
    "StreamEventHandler",
    "StreamRecord",
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
