"""
The public surface is exactly what `__all__` says.
"""

from __future__ import annotations

import dynastream


def test_all_is_sorted_and_names_every_public_attribute() -> None:
    public = {name for name in dir(dynastream) if not name.startswith("_")}

    assert sorted(dynastream.__all__) == dynastream.__all__
    assert public == set(dynastream.__all__)


def test_public_names_are_pinned() -> None:
    assert [
        "App",
        "AwsClients",
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
    ] == dynastream.__all__


def test_every_public_name_says_it_belongs_to_dynastream() -> None:
    for name in set(dynastream.__all__) - {"Item"}:  # Item is an alias of dict[str, Any]
        member = getattr(dynastream, name)
        module = getattr(member, "__module__", None) or getattr(member, "__name__", "")
        assert module.startswith("dynastream"), name
