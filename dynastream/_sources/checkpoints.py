"""
The stream runner's checkpoints: where it is in each shard, kept in the target database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from dynastream.exceptions import CheckpointConflictError
from dynastream.schema import checkpoints, encode_sequence_number

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy import Connection, Engine

__all__ = ["Checkpoints", "Shard"]


@attrs.define
class Shard:
    shard_id: str
    parent_id: str | None
    closed: bool
    position: str | None = None  # the last sequence number applied, as the stream wrote it
    has_checkpoint: bool = False
    finished: bool = False
    from_latest: bool = False  # no checkpoint, open when the run started, start_at="latest"
    first_read: str | None = None  # from LATEST, before any checkpoint: where reading began
    iterator: str | None = None


class Checkpoints:
    """
    The runner's checkpoints of one stream in `dynastream_checkpoints`.

    Every write is a compare-and-set against the position this runner last
    wrote: when another runner moved it, the write fails and the batch's
    transaction is rolled back (`CheckpointConflictError`).
    """

    def __init__(self, engine: Engine, stream_arn: str, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._stream_arn = stream_arn
        self._clock = clock

    def load(self) -> dict[str, tuple[str | None, bool]]:
        import sqlalchemy as sa

        query = sa.select(
            checkpoints.c.shard_id, checkpoints.c.sequence_number, checkpoints.c.finished
        ).where(checkpoints.c.stream_arn == self._stream_arn)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return {
            row.shard_id: (
                None if row.sequence_number is None else row.sequence_number.lstrip("0") or "0",
                row.finished,
            )
            for row in rows
        }

    def write(self, connection: Connection, shard: Shard, position: str | None, *, finished: bool) -> None:
        from sqlalchemy.exc import IntegrityError

        values = {
            "sequence_number": None if position is None else encode_sequence_number(int(position)),
            "finished": finished,
            "updated_at": self._clock(),
        }
        if not shard.has_checkpoint:
            try:
                with connection.begin_nested():
                    connection.execute(
                        checkpoints.insert().values(
                            stream_arn=self._stream_arn, shard_id=shard.shard_id, **values
                        )
                    )
            except IntegrityError as error:
                raise self._conflict(shard) from error
            return
        expected = checkpoints.c.sequence_number
        condition = (
            expected.is_(None)
            if shard.position is None
            else expected == encode_sequence_number(int(shard.position))
        )
        result = connection.execute(
            checkpoints.update()
            .where(
                checkpoints.c.stream_arn == self._stream_arn,
                checkpoints.c.shard_id == shard.shard_id,
                checkpoints.c.finished.is_(False),
                condition,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise self._conflict(shard)

    def _conflict(self, shard: Shard) -> CheckpointConflictError:
        return CheckpointConflictError(
            f"the checkpoint of shard {shard.shard_id} of {self._stream_arn} moved under this runner:"
            " another runner is applying the same stream to this database; this batch was rolled back"
        )
