"""
DynamoDB and DynamoDB Streams clients, and their errors in dynastream's terms.

boto3 is imported here only, when the runner, the backfill or the demo first
needs a client: a Lambda function that only applies events never imports it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from dynastream.exceptions import SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "GIVE_UP_SECONDS",
    "AwsClients",
    "Trouble",
    "call",
    "is_transient_aws",
    "source_error",
    "stream_of_table",
]


class AwsClients:
    """
    Builds the DynamoDB and DynamoDB Streams clients the runner and backfill use.

    Args:
        endpoint_url: A DynamoDB endpoint other than AWS's (moto, DynamoDB
            Local); the Streams client uses the same one.
        region_name: The AWS region; boto3's own configuration when omitted.
        session: A `boto3.Session` to build the clients from (profiles,
            explicit credentials).
    """

    def __init__(
        self, *, endpoint_url: str | None = None, region_name: str | None = None, session: Any = None
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._session = session

    def _client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": 10},
            "connect_timeout": 5,
            "read_timeout": 30,
        }
        # Current botocore routes DynamoDB calls to account-based endpoints, which
        # local stand-ins (moto in-process) do not implement.
        if "account_id_endpoint_mode" in Config.OPTION_DEFAULTS:
            options["account_id_endpoint_mode"] = "disabled"
        session: Any = self._session or boto3.session.Session()
        try:
            return session.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region_name,
                config=Config(**options),
            )
        except Exception as error:  # botocore's NoRegionError, bad endpoint URL...
            raise SourceError(f"cannot build the {service} client: {error}") from error

    def dynamodb(self) -> Any:
        """A DynamoDB client."""
        return self._client("dynamodb")

    def streams(self) -> Any:
        """A DynamoDB Streams client."""
        return self._client("dynamodbstreams")


def source_error(error: BaseException, doing: str) -> SourceError | None:  # noqa: PLR0911 - one per kind
    """
    Return `error` (from botocore) as a `SourceError` saying what failed, or `None`.

    `None` means the error is not one a user can act on as a source problem
    (a throttling error botocore already retried, for example, is returned as
    one; a programming error is not).
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(error, EndpointConnectionError):
        return SourceError(f"{doing}: cannot reach the endpoint {error.kwargs.get('endpoint_url')!r}")
    if isinstance(error, NoCredentialsError):
        return SourceError(f"{doing}: no AWS credentials are configured")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return SourceError(f"{doing}: not found ({message})")
        if code == "TrimmedDataAccessException":
            return SourceError(
                f"{doing}: the records are no longer in the stream (older than its 24-hour"
                " retention); load the table again with `dynastream backfill`"
            )
        return SourceError(f"{doing}: {code}: {message}")
    if isinstance(error, BotoCoreError):
        return SourceError(f"{doing}: {error}")
    return None


def call(doing: str, function: Callable[..., Any], /, **arguments: Any) -> Any:
    """
    Call a boto3 client method, turning its failures into `SourceError`.
    """
    try:
        return function(**arguments)
    except Exception as error:
        translated = source_error(error, doing)
        if translated is None:
            raise
        raise translated from error


def stream_of_table(dynamodb: Any, table_name: str) -> str:
    """
    Return the ARN of the table's current stream.

    Raises:
        SourceError: The table does not exist or has no stream enabled.
    """
    description = call(f"describe table {table_name!r}", dynamodb.describe_table, TableName=table_name)
    table = description["Table"]
    arn = table.get("LatestStreamArn")
    enabled = table.get("StreamSpecification", {}).get("StreamEnabled", bool(arn))
    if not arn or not enabled:
        raise SourceError(
            f"table {table_name!r} has no stream enabled: enable one with a view type that carries"
            " new images (NEW_IMAGE or NEW_AND_OLD_IMAGES)"
        )
    return str(arn)


# How long the stream runner keeps trying to reach an unreachable stream or database.
GIVE_UP_SECONDS = 600.0

_log = logging.getLogger("dynastream.runner")


# Errors of the AWS side worth waiting out: throttling, server errors, the network.
_TRANSIENT_AWS_CODES = frozenset(
    {
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ThrottlingException",
    }
)


def is_transient_aws(error: BaseException | None) -> bool:
    from botocore import exceptions as aws

    if isinstance(error, aws.ClientError):
        return error.response.get("Error", {}).get("Code", "") in _TRANSIENT_AWS_CODES
    return isinstance(error, (aws.ConnectionError, aws.HTTPClientError))


class Trouble:
    """
    Consecutive failures (of the stream or the database), waited out with backoff.

    The wait doubles from 0.5 s up to 30 s; after `GIVE_UP_SECONDS` of
    failures in a row, `wait` says to give up.
    """

    def __init__(self) -> None:
        self._since: float | None = None
        self._delay = 0.5

    def clear(self) -> None:
        self._since, self._delay = None, 0.5

    def wait(self, what: str, stop: threading.Event | None = None) -> bool:
        """Log `what`, wait before the next try; return False once it has gone on too long."""
        now = time.monotonic()
        self._since = now if self._since is None else self._since
        if now - self._since + self._delay > GIVE_UP_SECONDS:
            return False
        _log.warning("%s; trying again in %.1f s", what, self._delay)
        (stop or threading.Event()).wait(self._delay)
        self._delay = min(self._delay * 2, 30.0)
        return True
