"""
The testing kit: build events as Lambda delivers them, and a Lambda context.

`EventFactory` builds DynamoDB Streams records and events exactly as Lambda
delivers them (numbers as text, binary as base64, images by view type, TTL
deletes), or with `source="kinesis"` Kinesis Data Streams for DynamoDB records
and Lambda Kinesis events; `attribute_value` and `serialize_image` do the same for single
values and items. `LambdaContext` stands in for Lambda's context object, with
a remaining time a test controls. The pytest plugin
`dynastream.testing.plugin`, registered on installation, provides the
fixtures `dynastream_app`, `dynastream_database_url`, `stream_events` and
`lambda_context`.

Examples:
    >>> import dynastream
    >>> from dynastream.testing import EventFactory, LambdaContext
    >>> app = dynastream.App(database_url="sqlite://")
    >>> seen = []
    >>> @app.handler("Orders")
    ... def record_ids(records, uow):
    ...     seen.extend(record.keys["id"] for record in records)
    >>> event = EventFactory().inserts("Orders", [{"id": "o-1"}, {"id": "o-2"}])
    >>> app.lambda_handler(event, LambdaContext())
    {'batchItemFailures': []}
    >>> seen
    ['o-1', 'o-2']
"""

from __future__ import annotations

from dynastream._factory import EventFactory
from dynastream._serialize import attribute_value, serialize_image

from ._context import LambdaContext

__all__ = ["EventFactory", "LambdaContext", "attribute_value", "serialize_image"]
