"""The command line: `python -m bench.discovery [options]` (bench/README.md, Discovery)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from agentroster.cli import run_server
from bench.discovery import __doc__ as DOC
from bench.discovery.ceiling import role_ceiling
from bench.discovery.report import KINDS, PATHS, processes_name
from bench.discovery.run import Bench
from bench.discovery.targets import HTTP_CLIENTS
from bench.harness.services import add_service_options, check_cleanup, cleanup_left_behind

DEFAULT_SIZES = "10000,100000"


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 10000,100000")
    return sizes


def _names(choices: dict[str, str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [n for n in text.split(",") if n]
        if unknown := [n for n in names if n not in choices]:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(choices)}")
        return names

    return parse


#: The most API processes one scale-out variant starts (each holds its own read model).
MAX_API_PROCESSES = 4


def _process_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated process counts, e.g. 1,2") from None
    if (
        not counts
        or len(set(counts)) < len(counts)
        or not all(1 <= c <= MAX_API_PROCESSES for c in counts)
    ):
        raise argparse.ArgumentTypeError(f"distinct counts from 1 to {MAX_API_PROCESSES}, e.g. 1,2")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of a run (or of a ceiling process, with the hidden --role options)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.discovery", description=DOC.splitlines()[0] if DOC else None
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=_sizes(DEFAULT_SIZES), help=f"({DEFAULT_SIZES})"
    )
    parser.add_argument("--agents", type=int, help="one size only (same as --sizes N)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (5)")
    parser.add_argument(
        "--max-requests", type=int, default=50_000, help="per measurement at most (50000)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds, before each (1)")
    parser.add_argument(
        "--kinds",
        type=_names(KINDS),
        default=list(KINDS),
        help=f"comma-separated, from {','.join(KINDS)} (all)",
    )
    parser.add_argument(
        "--ceilings",
        type=_names({p: d for p, d in PATHS.items() if p != "api"}),
        default=["raw", "reader"],
        help="comma-separated, from raw,reader (both); empty for none",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each kind this many times, alternating paths (medians are reported)",
    )
    parser.add_argument(
        "--client",
        choices=list(HTTP_CLIENTS),
        default="httpx",
        help="the HTTP clients: httpx.AsyncClient, or bare asyncio streams (httpx)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the agents and queries (1)")
    add_service_options(parser)
    parser.add_argument(
        "--api-pythonpath",
        metavar="PATHS",
        help="put PATHS first on the API process's PYTHONPATH (to try a copy of src/)",
    )
    parser.add_argument(
        "--api-variant",
        metavar="NAME=PATHS",
        action="append",
        default=[],
        help="an API process with PATHS first on its PYTHONPATH (empty: the installed code);"
        " repeat to compare several on the same data, measured in turn",
    )
    parser.add_argument(
        "--api-processes",
        type=_process_counts,
        metavar="COUNTS",
        help="scale-out: the installed API as 1, 2, ... processes on as many ports, the "
        f"clients spread over them, e.g. 1,2 (at most {MAX_API_PROCESSES} each)",
    )
    parser.add_argument(
        "--api-env",
        dest="api_env_list",
        metavar="NAME=KEY=VALUE",
        action="append",
        default=[],
        help="an environment variable of the API variant NAME ('' for the only one), e.g."
        " redis=AGENTROSTER_DISCOVERY_SOURCE=redis",
    )
    parser.add_argument(
        "--cleanup",
        metavar="PREFIX",
        help="only delete what an interrupted run left behind (PREFIX is bench-<hex>)",
    )
    parser.add_argument("--role", choices=["ceiling"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=["raw", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agents is not None:
        args.sizes = _sizes(str(args.agents))
    args.api_variants = [("", args.api_pythonpath or "")]
    args.api_processes_of = {}  # variant name -> its processes (1 unless --api-processes)
    if args.api_processes:
        if args.api_variant or args.api_pythonpath:
            parser.error("--api-processes measures the installed code: no --api-variant")
        args.api_variants = [(processes_name(n), "") for n in args.api_processes]
        args.api_processes_of = {processes_name(n): n for n in args.api_processes}
    if args.api_variant:
        if args.api_pythonpath:
            parser.error("--api-pythonpath and --api-variant exclude each other")
        args.api_variants = [tuple(v.partition("=")[::2]) for v in args.api_variant]
        names = [name for name, _ in args.api_variants]
        if not all(re.fullmatch(r"[\w.+-]{1,20}", n) for n in names) or len(set(names)) < len(
            names
        ):
            parser.error("--api-variant: distinct names of 1-20 letters, digits, '.', '+', '-'")
    args.api_env = {}
    for item in args.api_env_list:
        name, _, setting = item.partition("=")
        key, _, value = setting.partition("=")
        if not key.startswith("AGENTROSTER_"):
            parser.error("--api-env: NAME=AGENTROSTER_...=VALUE")
        args.api_env.setdefault(name, {})[key] = value
    check_cleanup(parser, args)
    if (
        args.concurrency < 1
        or args.seconds <= 0
        or args.max_requests < 1
        or args.warmup < 0
        or args.repeat < 1
    ):
        parser.error("--concurrency, --seconds, --max-requests and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, a ceiling process, or a cleanup, as the options say."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        run_server(role_ceiling(args))
        return
    if args.cleanup:
        asyncio.run(cleanup_left_behind(args.broker_url, args.redis_url, args.cleanup))
        return
    try:
        asyncio.run(Bench(args).run())
    except asyncio.CancelledError:
        sys.exit("interrupted (what the run created is deleted)")


if __name__ == "__main__":
    main()
