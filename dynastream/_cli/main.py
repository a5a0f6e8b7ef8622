"""
The `dynastream` command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from dynastream._cli.bookkeeping import DIALECTS, create_tables, ddl, quarantine_list, quarantine_replay
from dynastream._cli.common import aws_arguments, guarded, load_app, wrap
from dynastream._cli.schema import add_schema_command

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


_EXIT_CODES = """exit status:
  0  done (stopped by a signal, or caught up)
  1  a record cannot be applied, or another runner holds the stream
  2  wrong input: a bad --app, a missing table or stream, an unreachable endpoint, no database
"""


_REPLAY_EXIT_CODES = """exit status:
  0  every record applied (or quarantined)
  1  a record failed: those before it are applied, the rest are not
  2  wrong input: an unreadable or malformed file, a bad --app, a range no longer in the stream
"""


_APP_HELP = "the application, as module:attribute (for example handler:app)"


def _print_ddl(arguments: argparse.Namespace) -> int:
    sys.stdout.write(ddl(arguments.dialect))
    return 0


def _add_bookkeeping_commands(commands: Any) -> None:
    create = commands.add_parser(
        "create-tables",
        help="create dynastream's own tables (tombstones, ledger, quarantine, checkpoints) if missing",
        description="Create dynastream's bookkeeping tables in the target database, if missing.",
    )
    create.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the target database (default: $DYNASTREAM_DATABASE_URL)",
    )
    create.set_defaults(command=lambda a: create_tables(a.database_url))
    ddl = commands.add_parser(
        "ddl",
        help="print the DDL of dynastream's own tables, for schema migrations",
        description="Print the CREATE statements of dynastream's bookkeeping tables.",
    )
    ddl.add_argument(
        "--dialect", choices=DIALECTS, default="postgresql", help="SQL dialect (default: postgresql)"
    )
    ddl.set_defaults(command=_print_ddl)


def _add_quarantine_command(commands: Any) -> None:
    quarantined = commands.add_parser(
        "quarantine",
        help="list or replay records set aside by on_poison='quarantine'",
        description="List or replay quarantined records.",
    )
    actions = quarantined.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="list quarantined records", description="List quarantined records."
    )
    listing.add_argument("--database-url", help="SQLAlchemy URL (default: $DYNASTREAM_DATABASE_URL)")
    listing.add_argument("--table", help="only this DynamoDB table")
    listing.set_defaults(command=lambda a: guarded(lambda b: quarantine_list(b.database_url, b.table), a))
    replay = actions.add_parser(
        "replay",
        help="apply quarantined records again through the application",
        description=(
            "Apply quarantined records again through the application (their raw record must have been"
            " kept); each one applied is removed from the quarantine, each one that fails again stays."
        ),
    )
    replay.add_argument("--app", required=True, help=_APP_HELP)
    replay.add_argument("ids", nargs="*", type=int, help="quarantine ids (default: all)")
    replay.set_defaults(command=lambda a: guarded(lambda b: quarantine_replay(b.app, b.ids), a))


def _add_run_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="apply a table's DynamoDB stream to the database, outside Lambda",
        description=wrap(
            "Read the table's stream through the DynamoDB Streams API and apply it through the"
            " application, one transaction per page of records. Each shard's checkpoint is written"
            " in the same transaction as the data, so a run stopped or killed anywhere resumes where"
            " the database says it is. Parent shards are applied before their children; new shards"
            " are followed as they appear. The first SIGINT or SIGTERM stops after the current batch."
        ),
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--app", required=True, help=_APP_HELP)
    run.add_argument("--table", required=True, help="the DynamoDB table whose stream to apply")
    run.add_argument("--stream-arn", help="the stream to read (default: the table's current stream)")
    aws_arguments(run)
    run.add_argument(
        "--from",
        dest="start_at",
        choices=("trim_horizon", "latest"),
        default="trim_horizon",
        help="where to start in a shard with no checkpoint (default: trim_horizon, the oldest record)",
    )
    run.add_argument(
        "--batch-size", type=int, default=1000, help="records per read and per transaction, 1 to 1000"
    )
    run.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds to wait when there is nothing new"
    )
    run.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop once a round of reads finds nothing new (catching up, scripts, tests)",
    )
    run.set_defaults(command=lambda a: guarded(_run_stream, a))


def _run_stream(arguments: argparse.Namespace) -> int:
    from dynastream._cli.stream import run_stream

    return run_stream(arguments)


def _backfill(arguments: argparse.Namespace) -> int:
    from dynastream._cli.backfill import run_command

    return run_command(
        load_app(arguments.app),
        arguments.table,
        segments=arguments.segments,
        max_rcu=arguments.max_rcu,
        page_size=arguments.page_size,
        endpoint_url=arguments.endpoint_url,
        region=arguments.region,
    )


def _add_backfill_command(commands: Any) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="load a table's existing items, safely while its stream is applied",
        description=wrap(
            "Load every item of a DynamoDB table through the application's replication (app.replicate),"
            " with a parallel Scan of consistent reads. Safe while the table's stream is applied from a"
            " position at or before the start of the backfill: a scanned value never overwrites a change"
            " from the stream. A second backfill does not overwrite rows an earlier one wrote."
        ),
        epilog=(
            "exit status:\n"
            "  0    every item applied\n"
            "  1    an item cannot be applied\n"
            "  2    wrong input: --app, a table not replicated, a missing table, an unreachable\n"
            "       endpoint, no database\n"
            "  130  interrupted\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument("--app", required=True, help=_APP_HELP)
    backfill.add_argument("--table", required=True, help="the DynamoDB table to load")
    backfill.add_argument(
        "--segments", type=int, default=4, help="parallel Scan segments, one thread each (default: 4)"
    )
    backfill.add_argument(
        "--max-rcu",
        type=float,
        help="read capacity units per second, all segments together (default: no limit)",
    )
    backfill.add_argument(
        "--page-size", type=int, default=1000, help="items per Scan call and per transaction (default: 1000)"
    )
    aws_arguments(backfill)
    backfill.set_defaults(command=_backfill)


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import demo_command

    return demo_command(arguments.database, arguments.items)


def _add_demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="replicate a demo DynamoDB table into SQLite: no servers, no AWS account (needs moto)",
        description=wrap(
            "Start moto in this process, create a table with a stream, write items of every attribute"
            " type, then updates and deletes; apply the stream through the stream runner into a SQLite"
            " file, check row by row that the replica equals the source, and print a summary."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--database",
        default="dynastream-demo.sqlite",
        help="the SQLite file to replicate into (default: ./dynastream-demo.sqlite, replaced)",
    )
    demo.add_argument("--items", type=int, default=2000, help="items to write (default: 2000)")
    demo.set_defaults(command=lambda a: guarded(_demo, a))


def _replay(arguments: argparse.Namespace) -> int:
    from dynastream._cli.replay import replay_command

    return replay_command(arguments, load_app(arguments.app))


def _generate_event(arguments: argparse.Namespace) -> int:
    from dynastream._cli.replay import generate_event_command

    return generate_event_command(arguments)


def _add_replay_commands(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="apply a saved Lambda event, or a failed batch named by an on-failure destination record",
        description=wrap(
            "Apply FILE through the application, in one transaction, as Lambda would. FILE is a saved"
            " Lambda event (or any shape dynastream reads), or an on-failure destination record of the"
            " event source mapping (as saved, or the SQS message or SNS notification carrying it): its"
            " shard and sequence-number range are then read again through the DynamoDB Streams API,"
            " while the stream retains them (24 hours). '-' reads standard input."
        ),
        epilog=_REPLAY_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("file", metavar="FILE", help="the event or destination record (JSON)")
    replay.add_argument("--app", required=True, help=_APP_HELP)
    replay.add_argument(
        "--table", help="the table of records that carry no eventSourceARN (a GetRecords response)"
    )
    aws_arguments(replay)
    replay.set_defaults(command=lambda a: guarded(_replay, a))
    generate = commands.add_parser(
        "generate-event",
        help="write a Lambda DynamoDB Streams event for given items",
        description=wrap(
            "Write a Lambda event, exactly as Lambda delivers it (numbers as text, binary as base64,"
            " images by view type), with one record per item of ITEMS: a JSON list of items in plain"
            " JSON or DynamoDB JSON, or the output of `aws dynamodb scan`. '-' reads standard input."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument("items", metavar="ITEMS", help="the items file (JSON)")
    generate.add_argument("--table", required=True, help="the DynamoDB table the records come from")
    generate.add_argument(
        "--keys", default="id", help="the table's key attributes, comma-separated (default: id)"
    )
    generate.add_argument(
        "--event-name", choices=("INSERT", "MODIFY", "REMOVE"), default="INSERT", help="default: INSERT"
    )
    generate.add_argument(
        "--view-type",
        choices=("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"),
        default="NEW_AND_OLD_IMAGES",
        help="the stream's view type (default: NEW_AND_OLD_IMAGES)",
    )
    generate.add_argument("--ttl", action="store_true", help="REMOVEs made by time to live")
    generate.add_argument(
        "--input-format",
        choices=("auto", "plain", "dynamodb"),
        default="auto",
        help="plain JSON or DynamoDB JSON items (default: auto, DynamoDB JSON when every value is typed)",
    )
    generate.add_argument("--region", help="the region in eventSourceARN and awsRegion (default: eu-west-1)")
    generate.add_argument("--output", "-o", help="the file to write (default: standard output)")
    generate.set_defaults(command=lambda a: guarded(_generate_event, a))


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the `dynastream` command and return its exit status.
    """
    parser = argparse.ArgumentParser(
        prog="dynastream",
        description="Replicate DynamoDB Streams into relational databases.",
    )
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")
    _add_demo_command(commands)
    _add_run_command(commands)
    _add_backfill_command(commands)
    _add_replay_commands(commands)
    _add_quarantine_command(commands)
    _add_bookkeeping_commands(commands)
    add_schema_command(commands)
    arguments = parser.parse_args(argv)
    status: int = arguments.command(arguments)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
