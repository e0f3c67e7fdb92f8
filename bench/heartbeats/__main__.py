"""The command line: `python -m bench.heartbeats [options]` (bench/README.md, Heartbeats)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence

from bench.harness.services import add_service_options, check_cleanup, cleanup_left_behind
from bench.heartbeats import __doc__ as DOC
from bench.heartbeats.report import print_table
from bench.heartbeats.roles import DEFAULT_VARIANTS, VARIANTS, run_role
from bench.heartbeats.run import Bench

#: The most consumer processes one measurement starts (the machine's cores bound it anyway).
MAX_PROCESSES = 8


def _counts(text: str) -> list[int]:
    """`1,2,3`: distinct process counts from 1 to MAX_PROCESSES, in the order given."""
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated process counts, e.g. 1,2,3") from None
    if (
        not counts
        or len(set(counts)) < len(counts)
        or not all(1 <= c <= MAX_PROCESSES for c in counts)
    ):
        raise argparse.ArgumentTypeError(f"distinct counts from 1 to {MAX_PROCESSES}, e.g. 1,2,3")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of a run (or of a role process, with the hidden --role and --prefix)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.heartbeats", description=DOC.splitlines()[0] if DOC else None
    )
    parser.add_argument("--agents", type=int, default=10_000, help="agents registered (10000)")
    parser.add_argument(
        "--heartbeats", type=int, default=100_000, help="heartbeats per variant (100000)"
    )
    parser.add_argument(
        "--variants",
        type=lambda s: [v for v in s.split(",") if v],
        help=f"comma-separated, in order, from {', '.join(VARIANTS)} "
        f"(default {','.join(DEFAULT_VARIANTS)}; with --workers: worker)",
    )
    parser.add_argument(
        "--workers",
        type=_counts,
        default=[1],
        metavar="COUNTS",
        help="scale-out: measure each variant with this many consumer processes at once, "
        f"e.g. 1,2,3 (1; at most {MAX_PROCESSES})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure the variants this many times, alternating (medians are reported)",
    )
    add_service_options(parser, cleanup=True)
    parser.add_argument(
        "--profile", metavar="DIR", help="run each consumer under cProfile, stats to DIR"
    )
    parser.add_argument("--role", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--gate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variants is None:
        args.variants = ["worker"] if args.workers != [1] else list(DEFAULT_VARIANTS)
    if unknown := [v for v in args.variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    check_cleanup(parser, args)
    if args.profile:  # the role processes run from the repository root
        args.profile = os.path.abspath(args.profile)
    if args.agents < 1 or args.heartbeats < 1 or args.repeat < 1:
        parser.error("--agents, --heartbeats and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, a role process, or a cleanup, as the options say."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        asyncio.run(run_role(args))
        return
    if args.cleanup:
        asyncio.run(cleanup_left_behind(args.broker_url, args.redis_url, args.cleanup))
        return
    results = asyncio.run(Bench(args).run())
    print_table(args, results)


if __name__ == "__main__":
    main()
