"""
`LambdaContext`: a stand-in for the context object Lambda passes a handler.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LambdaContext"]


def _request_id() -> str:
    return str(uuid.uuid4())


@attrs.define
class LambdaContext:
    """
    A Lambda context whose remaining time counts down, and can be set.

    It has the attributes of the Python runtime's context object
    (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). The
    remaining time starts at `remaining_seconds` and runs down with the
    clock; assign `context.remaining_seconds` to jump to a moment, for
    example below `Settings.time_margin_seconds` so that the dispatcher
    refuses to start work (`dynastream.TimeBudgetError`).

    Attributes:
        remaining_seconds: Seconds left in the invocation when the context is
            built (300 by default); afterwards the countdown, which can be
            assigned.
        function_name: The function's name.
        function_version: The version invoked.
        invoked_function_arn: The ARN used to invoke the function; by default
            built from the name, `region` and `account_id`.
        memory_limit_in_mb: The memory configured for the function.
        aws_request_id: The invocation's request ID (a new UUID by default).
        log_group_name: The function's CloudWatch log group.
        log_stream_name: The environment's CloudWatch log stream.
        identity: The Amazon Cognito identity, for mobile SDK invocations.
        client_context: The client context, for mobile SDK invocations.
        tenant_id: The tenant, for tenant-isolated functions.
        region: The region in the default ARN.
        account_id: The account in the default ARN.
        clock: Returns seconds from a monotonic clock; replace it to control
            the countdown precisely.

    Examples:
        >>> context = LambdaContext(remaining_seconds=300)
        >>> 299_000 < context.get_remaining_time_in_millis() <= 300_000
        True
        >>> context.remaining_seconds = 5
        >>> context.get_remaining_time_in_millis() <= 5_000
        True
    """

    _initial_remaining: float = attrs.field(default=300.0, alias="remaining_seconds", repr=False)
    function_name: str = "dynastream-test"
    function_version: str = "$LATEST"
    region: str = attrs.field(default="eu-west-1", repr=False)
    account_id: str = attrs.field(default="123456789012", repr=False)
    invoked_function_arn: str = attrs.field(
        default=attrs.Factory(
            lambda self: f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}",
            takes_self=True,
        )
    )
    memory_limit_in_mb: int = 128
    aws_request_id: str = attrs.field(factory=_request_id)
    log_group_name: str = attrs.field(
        default=attrs.Factory(lambda self: f"/aws/lambda/{self.function_name}", takes_self=True)
    )
    log_stream_name: str = attrs.field(
        default=attrs.Factory(
            lambda self: (
                f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{self.function_version}]{uuid.uuid4().hex}"
            ),
            takes_self=True,
        )
    )
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)
    _deadline: float = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._deadline = self.clock() + self._initial_remaining

    @property
    def remaining_seconds(self) -> float:
        """
        Seconds left in the invocation (never below zero); assign to set them.
        """
        return max(0.0, self._deadline - self.clock())

    @remaining_seconds.setter
    def remaining_seconds(self, seconds: float) -> None:
        self._deadline = self.clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        """
        Return the milliseconds left before the invocation times out, as Lambda does.
        """
        return int(self.remaining_seconds * 1000)
