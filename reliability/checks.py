"""
What a worker checks: after every delivery, that no item moved back; at the end, the final state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynastream.schema import KINESIS_MARKER, item_key

from .database import rows, tombstones

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .history import History


def stored_number(text: str, source: str) -> int | None:
    """
    Return a stored sequence number as an integer, or None when it is not of `source`'s kind.

    A Kinesis Data Streams ordering number is stored after a letter; a DynamoDB
    Streams sequence number is digits only.
    """
    kinesis = text.startswith(KINESIS_MARKER)
    if kinesis != (source == "kinesis"):
        return None
    return int(text[len(KINESIS_MARKER) :] if kinesis else text)


class Progress:
    """
    How far each of a worker's items has gone: the greatest sequence number seen of its row or tombstone.

    An item moves back when its row or its tombstone comes to hold an older
    change than was seen before, or when its row holds a change older than its
    tombstone's (an older change brought back what a newer REMOVE deleted).
    """

    def __init__(self, keys: list[str], source: str, seed: int) -> None:
        self.keys, self.source, self.seed = keys, source, seed
        self.identities = {key: item_key([key]) for key in keys}
        self.seen: dict[str, int] = {}

    def check(self, reader: sa.Engine) -> list[str]:
        """
        Read the worker's rows and tombstones; return what went wrong since the last check.
        """
        problems = []
        found, buried = rows(reader), tombstones(reader)
        for key in self.keys:
            row = found.get(key)
            tombstone = buried.get(self.identities[key])
            numbers = {}
            for kind, text in (("row", row[0] if row else None), ("tombstone", tombstone)):
                if text is None:
                    continue
                number = stored_number(text, self.source)
                if number is None:
                    problems.append(
                        f"seed {self.seed}: {key}'s {kind} holds {text}, not a {self.source} number"
                    )
                    continue
                numbers[kind] = number
            if "row" in numbers and numbers["row"] < numbers.get("tombstone", -1):
                problems.append(f"seed {self.seed}: {key} came back, older than the REMOVE that deleted it")
            newest = max(numbers.values(), default=-1)
            if newest < self.seen.get(key, -1):
                problems.append(f"seed {self.seed}: {key} moved back to an older version")
            self.seen[key] = max(self.seen.get(key, -1), newest)
        return problems


def check_final(made: History, final: dict[str, int], seed: int) -> tuple[list[str], set[str], set[str]]:
    """
    Check the final rows against the model, and against the true order except at ties.

    Returns:
        The violations, the items that ended unlike the true order, and those
        of them none of whose changes tie (each a violation).
    """
    problems = []
    if final != made.model:
        problems.append(f"seed {seed}: final state {final} != model {made.model}")
    unlike = {
        key for key in final.keys() | made.true_model.keys() if final.get(key) != made.true_model.get(key)
    }
    untied = unlike - made.tied_keys
    if untied:
        problems.append(
            f"seed {seed}: {sorted(untied)} ended unlike the order the changes were made"
            f" ({ {key: final.get(key) for key in sorted(untied)} } != {made.true_model}),"
            " though none of their changes tie"
        )
    return problems, unlike, untied


def check_poison(
    made: History, policy: str, reports: dict[int, int], set_aside: list[str], seed: int
) -> list[str]:
    """
    Check that each poison record was reported (policy "report") or quarantined once ("quarantine").
    """
    problems = []
    if len(set_aside) != len(set(set_aside)):
        problems.append(f"seed {seed}: a record was quarantined twice")
    if policy == "quarantine" and set(set_aside) != made.poison_events:
        problems.append(
            f"seed {seed}: quarantined {sorted(set_aside)} != poison {sorted(made.poison_events)}"
        )
    if policy == "report" and (set_aside or set(reports) != made.poisoned):
        problems.append(f"seed {seed}: reported {sorted(reports)} != poison {sorted(made.poisoned)}")
    return problems
