"""
Run the benchmarks: `python -m benchmarks [--quick] [NAME ...]`.

Each benchmark is a callable taking `quick` and printing its own report; add
new ones to `BENCHMARKS`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import deserialize

if TYPE_CHECKING:
    from collections.abc import Callable

BENCHMARKS: dict[str, Callable[..., None]] = {
    "deserialize": deserialize.run,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repetitions")
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
        BENCHMARKS[name](quick=arguments.quick)


if __name__ == "__main__":
    main()
