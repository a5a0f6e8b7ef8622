"""
The public surface is exactly what `__all__` says.
"""

from __future__ import annotations

import dynastream


def test_all_is_sorted_and_names_every_public_attribute() -> None:
    # `dynastream.testing` and `dynastream.inference` are public but imported on demand (the
    # pytest plugin imports the first, the schema commands the second), not re-exported; names
    # that are not identifiers are pytest's (it rewrites a plugin package's asserts).
    public = {name for name in dir(dynastream) if name.isidentifier() and not name.startswith("_")} - {
        "inference",
        "testing",
    }

    assert sorted(dynastream.__all__) == dynastream.__all__
    assert public == set(dynastream.__all__)


def test_public_names_are_pinned() -> None:
    assert [
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
    ] == dynastream.__all__


def test_every_public_name_says_it_belongs_to_dynastream() -> None:
    for name in set(dynastream.__all__) - {"Item"}:  # Item is an alias of dict[str, Any]
        member = getattr(dynastream, name)
        module = getattr(member, "__module__", None) or getattr(member, "__name__", "")
        assert module.startswith("dynastream"), name


def test_testing_is_a_public_submodule_that_importing_dynastream_leaves_alone() -> None:
    import subprocess
    import sys

    import dynastream.testing

    code = "import sys, dynastream; print('dynastream.testing' in sys.modules); import dynastream.testing"
    # A fresh interpreter, where nothing else has imported dynastream.testing yet.
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603 - fixed code

    assert "False" == out.strip()
    assert "testing" not in dynastream.__all__
    assert [
        "EventFactory",
        "LambdaContext",
        "attribute_value",
        "serialize_image",
    ] == dynastream.testing.__all__
