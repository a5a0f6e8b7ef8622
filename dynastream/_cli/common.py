"""
What every command shares: loading the application, turning errors into exit statuses.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["aws_arguments", "guarded", "load_app", "load_object", "wrap"]


def wrap(text: str) -> str:
    """
    Fill a command's description to the terminal's usual width.
    """
    import textwrap

    return textwrap.fill(text, width=78)


def aws_arguments(parser: Any) -> None:
    """
    Add `--endpoint-url` and `--region` to a parser or argument group.
    """
    parser.add_argument(
        "--endpoint-url",
        help="DynamoDB endpoint other than AWS's (moto, DynamoDB Local); also used for its stream",
    )
    parser.add_argument("--region", help="AWS region (default: boto3's configuration)")


def load_object(spec: str, option: str, example: str) -> tuple[Any, Any]:
    """
    Import `module:attribute` from the working directory; return the module and the attribute.

    `attribute` may be dotted (`models:Base.metadata`).
    """
    import importlib
    import os

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(
            f"dynastream: {option} must be module:attribute (for example {example}), got {spec!r}"
        )
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"dynastream: cannot load {spec!r}: {error}") from None
    return module, value


def load_app(spec: str) -> Any:
    """
    Import `module:attribute` (the application's `App`), like `handler:app`.
    """
    from dynastream._app import App

    app = load_object(spec, "--app", "handler:app")[1]
    if not isinstance(app, App):
        raise SystemExit(f"dynastream: {spec!r} is not a dynastream.App")
    return app


def guarded(command: Callable[[argparse.Namespace], int], arguments: argparse.Namespace) -> int:
    """
    Run a command, turning dynastream's errors into a message and an exit status.
    """
    from dynastream.exceptions import (
        CheckpointConflictError,
        MalformedEventError,
        RecordFailedError,
        SourceError,
    )

    try:
        return command(arguments)
    except (RecordFailedError, CheckpointConflictError) as error:
        print(f"dynastream: {error}", file=sys.stderr)
        return 1
    except (SourceError, ConfigurationError, MalformedEventError) as error:
        print(f"dynastream: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"dynastream: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from sqlalchemy.exc import DBAPIError

        if not isinstance(error, DBAPIError):
            raise
        # The driver's own message (never the statement or its parameters).
        reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else type(error).__name__
        print(f"dynastream: the database refused: {type(error.orig).__name__}: {reason}", file=sys.stderr)
        return 2
