"""
`dynastream replay` and `dynastream generate-event`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._cli import main
from tests.apps.runner_app import log


def logged(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(log.c.item_id).order_by(log.c.position)))


def test_generate_event_writes_what_lambda_would_deliver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "items.json"
    source.write_text(
        '[{"id": "o-1", "total": 12.50, "lines": [{"sku": "A", "qty": 2}]}, {"id": "o-2", "ok": true}]'
    )

    assert 0 == main(["generate-event", str(source), "--table", "Orders"])

    event = json.loads(capsys.readouterr().out)
    records = dynastream.parse_event(event)
    assert ["Orders", "Orders"] == [r.table_name for r in records]
    assert {"id": "o-1", "total": Decimal("12.50"), "lines": [{"sku": "A", "qty": 2}]} == records[0].new_image
    assert {"N": "12.50"} == event["Records"][0]["dynamodb"]["NewImage"]["total"]  # exact text, not a float
    assert int(records[0].sequence_number) < int(records[1].sequence_number)


def test_generate_event_reads_dynamodb_json_and_writes_ttl_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = {
        "Items": [{"pk": {"S": "s-1"}, "sk": {"N": "7"}, "blob": {"B": "AAEC"}, "tags": {"SS": ["b", "a"]}}]
    }
    (tmp_path / "scan.json").write_text(json.dumps(scan))
    out = tmp_path / "event.json"

    assert 0 == main(
        [
            "generate-event",
            str(tmp_path / "scan.json"),
            "--table",
            "Sessions",
            "--keys",
            "pk,sk",
            "--event-name",
            "REMOVE",
            "--ttl",
            "--output",
            str(out),
        ]
    )

    (record,) = dynastream.parse_event(dynastream.load_event(out))
    assert (True, {"pk": "s-1", "sk": 7}) == (record.is_ttl_delete, record.keys)
    assert {"pk": "s-1", "sk": 7, "blob": b"\x00\x01\x02", "tags": {"a", "b"}} == record.old_image


@pytest.mark.parametrize(
    ("content", "input_format", "message"),
    [
        ("[{", "auto", "not valid JSON"),
        ('{"x": 1}', "auto", "list of objects"),
        ('[{"total": 1}]', "auto", "item #0"),
        ('[{"id": {"S": "a", "N": "1"}}]', "dynamodb", "item #0: item.id"),
    ],
)
def test_generate_event_says_what_is_wrong_with_the_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, input_format: str, message: str
) -> None:
    source = tmp_path / "items.json"
    source.write_text(content)

    assert 2 == main(["generate-event", str(source), "--table", "Orders", "--input-format", input_format])
    assert message in capsys.readouterr().err


def test_generate_event_of_a_missing_file_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main(["generate-event", "/no/such/items.json", "--table", "Orders"])
    assert "cannot read /no/such/items.json" in capsys.readouterr().err


def test_replay_applies_a_saved_event_and_names_a_failing_record(
    tmp_path: Path, replay_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = replay_app("Orders")
    events = dynastream.testing.EventFactory()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(events.inserts("Orders", [{"id": "a", "n": 1}, {"id": "b", "n": 2}])))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(events.inserts("Orders", [{"id": "c", "n": 3}, {"id": "d", "n": Decimal("1.5")}]))
    )

    assert 0 == main(["replay", str(good), "--app", "replay_app:app"])
    assert "2 of 2 record(s) applied" in capsys.readouterr().err
    assert 1 == main(["replay", str(bad), "--app", "replay_app:app"])
    err = capsys.readouterr().err
    assert "1 of 2 record(s) applied" in err
    assert "record #1" in err
    assert "MappingError" in err
    assert ["a", "b", "c"] == logged(engine)


def test_replay_of_an_unreadable_file_fails_clearly(
    replay_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    replay_app("Orders")

    assert 2 == main(["replay", "/no/such/event.json", "--app", "replay_app:app"])
    assert "cannot read /no/such/event.json" in capsys.readouterr().err
