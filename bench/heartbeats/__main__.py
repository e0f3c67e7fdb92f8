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
        default=list(DEFAULT_VARIANTS),
        help=f"comma-separated, in order, from {', '.join(VARIANTS)} "
        f"(default {','.join(DEFAULT_VARIANTS)})",
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
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
