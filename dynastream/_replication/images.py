"""
The images replication maps: which image of a record, and which is an item's newest.

The dispatcher leaves images unread when every handler of a table reads them
from the record's `raw` itself, as built-in replication does
(`uses_new_images`): an image is then mapped as the event sent it, in one pass
(`RowMapper.map_event_image`), else as the dispatcher deserialized it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dynastream._records import EventName

if TYPE_CHECKING:
    from dynastream._records import Item, StreamRecord

__all__ = ["Image", "keep_newest_image", "record_image"]

# An image to map: (its label, the image, whether it is as the event sent it).
Image = tuple[str, "Item", bool]


def record_image(record: StreamRecord[Item], label: str) -> Image | None:
    """
    Return a record's `NewImage` or `OldImage`: deserialized, else as the event sent it.

    An image that is absent, `null` or `{}` is no image.
    """
    image = record.new_image if label == "NewImage" else record.old_image
    if image is not None:
        return (label, image, False) if image else None
    dynamodb = record.raw.get("dynamodb")
    sent = dynamodb.get(label) if isinstance(dynamodb, Mapping) else None
    return None if sent is None or sent == {} else (label, sent, True)


def keep_newest_image(
    images: dict[tuple[Any, ...], tuple[int, Image]], key: tuple[Any, ...], record: StreamRecord[Item]
) -> None:
    """
    Keep `record`'s image in `images` if it is the newest known of its item (`key`).

    A REMOVE gives its old image, other changes their new image: a soft delete
    writes the item's last image, so that a row removed before it was ever
    written is still kept, marked deleted.
    """
    image = record_image(record, "OldImage" if record.event_name is EventName.REMOVE else "NewImage")
    known = images.get(key)
    if image is not None and (known is None or record.sequence_number > known[0]):
        images[key] = (record.sequence_number, image)
