"""
Run the benchmarks: `python -m benchmarks [--quick] [--engines ...] [--sizes ...] [NAME ...]`.

Each benchmark is a callable taking the parsed options and printing its own
report; add new ones to `BENCHMARKS`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import deserialize, replication

if TYPE_CHECKING:
    from collections.abc import Callable


def _run_deserialize(options: argparse.Namespace) -> None:
    deserialize.run(quick=options.quick)


def _run_replication(options: argparse.Namespace) -> None:
    replication.run(quick=options.quick, engines=options.engines, sizes=options.sizes)


BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "deserialize": _run_deserialize,
    "replication": _run_replication,
}


def _engines(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in replication.ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(replication.ENGINES)}, comma-separated")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(size.replace("_", "")) for size in text.split(",") if size.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("batch sizes are comma-separated integers") from None
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError("batch sizes are comma-separated integers of at least 10")
    return sorted(set(sizes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions (and smaller inputs where a benchmark has them)",
    )
    parser.add_argument(
        "--engines",
        type=_engines,
        default=list(replication.ENGINES),
        metavar="NAMES",
        help="replication: databases to measure, comma-separated (default: postgresql,mysql; URLs from"
        " DYNASTREAM_BENCH_POSTGRES_URL and DYNASTREAM_BENCH_MYSQL_URL)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(replication.SIZES),
        metavar="SIZES",
        help="replication: records per batch, comma-separated (default: 100,1000,10000)",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    for name in arguments.names or BENCHMARKS:
        BENCHMARKS[name](arguments)


if __name__ == "__main__":
    main()
