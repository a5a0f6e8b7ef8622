"""
`dynastream schema generate` and `dynastream schema diff`: a SQL table from a DynamoDB table, and drift.

Both print names, types, counts and reasons: never an attribute's value.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from dynastream.exceptions import ConfigurationError

from .common import aws_arguments, load_object, wrap

if TYPE_CHECKING:
    from dynastream.inference import Sample

__all__ = ["add_schema_command"]

_GENERATE_EXIT = """exit status:
  0  written, and every sampled item replicates into it
  1  written, but the replication would refuse some sampled values (see REVIEW)
  2  wrong input: a missing table, no credentials, an empty sample, an unreadable file
"""
_DIFF_EXIT = """exit status:
  0  the model takes every sampled item and has a column for every attribute
  1  differences: attributes with no column, or values the model would refuse
  2  wrong input: a bad --app or --model, a missing table, no credentials, an empty sample
"""
_TARGETS = ("all", "postgresql", "mysql", "mariadb", "sqlite")


def _sample_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("the sample")
    source.add_argument("--table", help="the DynamoDB table: scanned, or the event's table to read")
    source.add_argument(
        "--from-file",
        metavar="FILE",
        help="read the sample from a saved Lambda event, `aws dynamodb scan` output or list of items"
        " instead of scanning ('-' reads standard input)",
    )
    source.add_argument(
        "--keys", help="the key attribute names, partition key first (needed for a scan or items file)"
    )
    source.add_argument(
        "--input-format",
        choices=("auto", "plain", "dynamodb"),
        default="auto",
        help="an items file's JSON: plain or DynamoDB JSON (default: auto)",
    )
    source.add_argument("--limit", type=int, default=1000, help="items to sample at most (default: 1000)")
    source.add_argument(
        "--max-rcu",
        type=float,
        default=25.0,
        help="read capacity units per second for the Scan (default: 25; 0 for no limit)",
    )
    source.add_argument(
        "--segments",
        type=int,
        default=4,
        help="Scan segments read in turn, to spread the sample (default: 4)",
    )
    aws_arguments(source)


def add_schema_command(commands: Any) -> None:
    """
    Add `schema generate` and `schema diff` to the command line.
    """
    schema = commands.add_parser(
        "schema",
        help="generate a SQL table from a DynamoDB table's items, or compare a model with them",
        description="Generate a SQL table from a sample of a DynamoDB table, or compare a model with one.",
    )
    actions = schema.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="write a model module or DDL inferred from a sample of the table",
        description=wrap(
            "Read the table's key schema (DescribeTable) and a bounded sample of its items (a Scan under a"
            " read budget, or a saved file), and write a SQLAlchemy model module or the CREATE TABLE of one"
            " dialect. Types follow the replication's mapping rules and are checked, value by value, with"
            " the replication's own converters on SQLite, PostgreSQL and MySQL/MariaDB: integers, exact"
            " decimals with a margin, text with headroom, binary, JSON for maps, lists and sets, text or"
            " JSON for attributes of several types. Reserved or too long names are renamed, and the renames"
            " written out. Only names, types and counts are written, never a value."
        ),
        epilog=_GENERATE_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _sample_arguments(generate)
    output = generate.add_argument_group("the output")
    output.add_argument(
        "--format", choices=("model", "ddl"), default="model", help="a model module or DDL (default: model)"
    )
    output.add_argument(
        "--dialect",
        choices=_TARGETS,
        default="all",
        help="the database: 'all' writes a model that serves every one (default), DDL needs one",
    )
    output.add_argument("--sql-table", help="the SQL table's name (default: the table's, in snake case)")
    output.add_argument("--class-name", help="the model class's name (default: the table's, in CamelCase)")
    output.add_argument("--margin", type=int, default=2, help="digits of margin for numbers (default: 2)")
    output.add_argument(
        "--naming",
        choices=("snake_case", "exact"),
        default="snake_case",
        help="column names: the attributes' in snake case (default), or as they are",
    )
    output.add_argument("--output", "-o", help="the file to write (default: standard output)")
    generate.set_defaults(command=_guarded(generate_command))

    diff = actions.add_parser(
        "diff",
        help="compare a model with a fresh sample: attributes with no column, columns too narrow",
        description=wrap(
            "Map a fresh sample of the table's items as the built-in replication would, into the table of"
            " an application's registration (--app) or of a model (--model), and print the attributes that"
            " have no column (the replication drops them) and the columns that would refuse sampled values"
            " (failing their batch), per database. Only names, counts and reasons are printed."
        ),
        epilog=_DIFF_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = diff.add_argument_group("the model").add_mutually_exclusive_group(required=True)
    target.add_argument("--app", help="the application (module:attribute); --table names the registration")
    target.add_argument(
        "--model",
        help="a model or Table (module:attribute); its module's NAMING and RENAMES apply, as generated",
    )
    diff.add_argument(
        "--naming",
        choices=("exact", "snake_case"),
        help="with --model (default: its module's NAMING, else exact)",
    )
    diff.add_argument(
        "--dialect", choices=_TARGETS, default="all", help="the database to check types for (default: all)"
    )
    _sample_arguments(diff)
    diff.set_defaults(command=_guarded(diff_command))


def _guarded(command: Any) -> Any:
    from .common import guarded

    return lambda arguments: guarded(command, arguments)


def _sample(arguments: argparse.Namespace) -> Sample:
    from dynastream import inference
    from dynastream._sources.aws import AwsClients

    keys = tuple(name.strip() for name in (arguments.keys or "").split(",") if name.strip())
    if arguments.from_file is not None:
        source: Any = arguments.from_file
        if source == "-":
            from dynastream._record_fields import decode_json

            source = decode_json(sys.stdin.buffer.read())
        return inference.read_sample(
            source, table_name=arguments.table, keys=keys, input_format=arguments.input_format
        )
    if arguments.table is None:
        raise ConfigurationError(
            "name the table to sample (--table), or a file to read it from (--from-file)"
        )
    return inference.sample_table(
        arguments.table,
        limit=arguments.limit,
        max_rcu=arguments.max_rcu or None,
        segments=arguments.segments,
        clients=AwsClients(endpoint_url=arguments.endpoint_url, region_name=arguments.region),
    )


def generate_command(arguments: argparse.Namespace) -> int:
    """
    Run `dynastream schema generate`; return its exit status.
    """
    from dynastream import inference

    if arguments.format == "ddl" and arguments.dialect == "all":
        raise ConfigurationError(
            "DDL is for one database: choose --dialect postgresql, mysql, mariadb or sqlite"
        )
    sample = _sample(arguments)
    table = inference.infer_table(
        sample,
        table_name=arguments.sql_table,
        class_name=arguments.class_name,
        margin=arguments.margin,
        naming=arguments.naming,
    )
    if arguments.format == "ddl":
        text = inference.render_ddl(table, arguments.dialect)
    else:
        text = inference.render_model(table, target=arguments.dialect)
    if arguments.output:
        with open(arguments.output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)
    where = f" to {arguments.output}" if arguments.output else ""
    print(
        f"dynastream: {len(table.columns)} columns for {sample.table_name!r} from {sample.source},"
        f" {len(table.renames)} renamed; written{where}",
        file=sys.stderr,
    )
    for problem in table.problems:
        print(f"dynastream: REVIEW: {problem}", file=sys.stderr)
    return 1 if table.problems else 0


def diff_command(arguments: argparse.Namespace) -> int:
    """
    Run `dynastream schema diff`; return its exit status.
    """
    from dynastream import inference

    dialects = (
        ("sqlite", "postgresql", "mysql", "mariadb") if arguments.dialect == "all" else (arguments.dialect,)
    )
    options: dict[str, Any]
    if arguments.app is not None:
        if arguments.table is None:
            raise ConfigurationError("--app needs --table: the registration to compare")
        target, options = _registration(arguments.app, arguments.table)
    else:
        target, options = _model(arguments.model, arguments.naming)
    sample = _sample(arguments)
    differences = inference.diff_table(target, sample, dialects=dialects, **options)
    for difference in differences:
        print(difference.describe())
    drifting = [d for d in differences if d.kind != "unfilled"]
    print(
        f"dynastream: {len(sample.items):,} sampled items from {sample.source}:"
        f" {sum(d.kind == 'missing' for d in differences)} attributes with no column,"
        f" {sum(d.kind == 'narrow' for d in differences)} columns refusing values",
        file=sys.stderr,
    )
    return 1 if drifting else 0


def _registration(spec: str, table_name: str) -> tuple[Any, dict[str, Any]]:
    from dynastream._replication.handler import ReplicationHandler

    from .common import load_app

    app = load_app(spec)
    handlers = [r.handler for r in app.registrations if r.table_name == table_name]
    replication = [h for h in handlers if isinstance(h, ReplicationHandler)]
    if not replication:
        raise ConfigurationError(
            f"{spec} replicates no table {table_name!r} with app.replicate: nothing to compare"
            + (" (its handlers are custom)" if handlers else "")
        )
    handler = replication[0]
    if handler.mapper is not None:
        raise ConfigurationError(
            f"table {table_name!r} is replicated through a custom mapper, which decides what each attribute"
            " becomes: schema diff compares only the default mapping"
        )
    build = handler._row_mapper_for
    if build is None:  # pragma: no cover - App.replicate always gives one
        raise ConfigurationError(f"the registration of {table_name!r} cannot build mappers")
    return handler.table, {"row_mapper_for": lambda dialect: build(dialect, {})}


def _model(spec: str, naming: str | None) -> tuple[Any, dict[str, Any]]:
    module, target = load_object(spec, "--model", "models:Orders")
    renames = getattr(module, "RENAMES", None)
    return target, {
        "naming": naming or getattr(module, "NAMING", "exact"),
        "renames": renames if isinstance(renames, dict) else None,
    }
