"""
Run the benchmarks: `python -m benchmarks [--quick] [--engines ...] [--sizes ...] [--samples N] [NAME ...]`.

The concurrency benchmark also takes `--workers N`, `--duration SECONDS` and `--keys MODES`.
`growth` (wider and larger items, and the replication batches, for the full
path and hand-written Core) reuses the results of `replication` when both run.

Each benchmark is a callable taking the parsed options and printing its own
report; add new ones to `BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, TextIO

from . import cold_start, concurrency, deserialize, growth, replication

if TYPE_CHECKING:
    from collections.abc import Callable


def _run_deserialize(options: argparse.Namespace) -> None:
    deserialize.run(quick=options.quick)


def _run_replication(options: argparse.Namespace) -> None:
    # Kept for the growth part, which reuses the standard batches' results.
    options.replication_results = replication.run(
        quick=options.quick, engines=options.engines, sizes=options.sizes
    )


def _run_growth(options: argparse.Namespace) -> None:
    growth.run(
        quick=options.quick,
        engines=options.engines,
        sizes=options.sizes,
        measured=options.replication_results,
    )


def _run_cold_start(options: argparse.Namespace) -> None:
    cold_start.run(quick=options.quick, engines=options.engines, samples=options.samples)


def _run_concurrency(options: argparse.Namespace) -> None:
    concurrency.run(
        quick=options.quick,
        engines=options.engines,
        workers=options.workers,
        duration=options.duration,
        modes=options.keys,
    )


BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "deserialize": _run_deserialize,
    "replication": _run_replication,
    "growth": _run_growth,
    "cold-start": _run_cold_start,
    "concurrency": _run_concurrency,
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


def _samples(text: str) -> int:
    try:
        samples = int(text)
    except ValueError:
        samples = 0
    if samples < 3:
        raise argparse.ArgumentTypeError("the number of samples is an integer of at least 3")
    return samples


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= 1_000:
        raise argparse.ArgumentTypeError("the number of workers is an integer from 1 to 1000")
    return workers


def _duration(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError("the duration is a positive number of seconds")
    return seconds


def _keys(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",") if mode.strip()]
    if not modes or any(mode not in concurrency.MODES for mode in modes):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(concurrency.MODES)}, comma-separated")
    return [mode for mode in concurrency.MODES if mode in modes]


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
        help="replication, growth, cold-start, concurrency: databases to measure, comma-separated (default:"
        " postgresql,mysql; URLs from DYNASTREAM_BENCH_POSTGRES_URL and DYNASTREAM_BENCH_MYSQL_URL)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(replication.SIZES),
        metavar="SIZES",
        help="replication, growth: records per batch of the Orders batches, comma-separated"
        " (default: 100,1000,10000)",
    )
    parser.add_argument(
        "--samples",
        type=_samples,
        metavar="N",
        help=f"cold-start: fresh interpreters per side and database, whose median counts"
        f" (default: {cold_start.SAMPLES}; {cold_start.QUICK_SAMPLES} with --quick)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=concurrency.WORKERS,
        metavar="N",
        help=f"concurrency: worker processes applying batches at once (default: {concurrency.WORKERS})",
    )
    parser.add_argument(
        "--duration",
        type=_duration,
        metavar="SECONDS",
        help=f"concurrency: how long the workers apply batches in each run (default:"
        f" {concurrency.DURATION:g}; {concurrency.QUICK_DURATION:g} with --quick)",
    )
    parser.add_argument(
        "--keys",
        type=_keys,
        default=list(concurrency.MODES),
        metavar="MODES",
        help="concurrency: disjoint (each worker its own keys), overlapping (one shared pool), or both"
        " (the default), comma-separated",
    )
    parser.add_argument(
        "--write",
        metavar="PATH",
        help="also write the report, with the machine and versions, as Markdown to PATH"
        " (the docs include docs/benchmark-results.md)",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.set_defaults(replication_results=[])
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    # In the order of `BENCHMARKS`: growth reuses the results of replication when both run.
    names = [name for name in BENCHMARKS if name in (arguments.names or BENCHMARKS)]
    if arguments.write is None:
        for name in names:
            BENCHMARKS[name](arguments)
        return
    reports: dict[str, str] = {}
    for name in names:
        report = io.StringIO()
        with contextlib.redirect_stdout(_Tee(sys.stdout, report)):
            BENCHMARKS[name](arguments)
        reports[name] = report.getvalue()
    _write(arguments.write, reports, argv)


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, *streams: TextIO | io.StringIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


_HEADER = (
    "<!-- Written by `python -m benchmarks --write`; do not edit by hand. A run replaces the"
    " sections of the benchmarks it ran and keeps the others. -->\n"
)
_SECTION = re.compile(
    r"<!-- benchmark: (?P<name>[\w-]+) -->\n.*?<!-- end of benchmark: (?P=name) -->\n", re.DOTALL
)


def _write(path: str, reports: dict[str, str], argv: list[str] | None) -> None:
    """
    Write each report as its section of the Markdown file at `path`, keeping the other sections.

    Sections follow the order of `BENCHMARKS`, so that running one benchmark
    again leaves the results of the others (and their run details) in place.
    """
    try:
        with open(path, encoding="utf-8") as file:
            sections = {match["name"]: match[0] for match in _SECTION.finditer(file.read())}
    except FileNotFoundError:
        sections = {}
    sections.update((name, _markdown(name, report, argv)) for name, report in reports.items())
    ordered = sorted(
        sections, key=lambda name: list(BENCHMARKS).index(name) if name in BENCHMARKS else len(BENCHMARKS)
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(_HEADER + "".join(f"\n{sections[name]}" for name in ordered))


def _markdown(name: str, report: str, argv: list[str] | None) -> str:
    command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
    packages = ("dynastream", "SQLAlchemy", "psycopg", "PyMySQL", "boto3", "attrs", "dependency-injector")
    versions = ", ".join(f"{package} {_version(package)}" for package in packages)
    return (
        f"<!-- benchmark: {name} -->\n"
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command}`\n"
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}\n"
        f"- Python {platform.python_version()}; {versions}\n\n"
        "```text\n" + report.rstrip() + "\n```\n"
        f"<!-- end of benchmark: {name} -->\n"
    )


if __name__ == "__main__":
    main()
