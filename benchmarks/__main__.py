"""``python -m benchmarks [--quick]``: run every scenario, print the table, write the results."""

from __future__ import annotations

import argparse
import sys

from benchmarks.run import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="pymager's benchmark suite")
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller corpus (under 2 minutes)")
    args = parser.parse_args(argv)
    return run(quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
