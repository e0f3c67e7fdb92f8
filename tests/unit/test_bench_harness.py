"""The benchmarks' shared harness (bench/harness): the parts a wrong answer would hide in figures.

The benchmarks print figures rather than assert, so what they share is pinned here: percentiles,
which prefixes a cleanup accepts, the /proc readers, and that every benchmark still imports and
parses its options after a refactor.
"""

from __future__ import annotations

import importlib
import math
import os
import re

import pytest

from bench.harness.measure import percentile, process_cpu_s, rss_kib
from bench.harness.processes import free_port, role_command
from bench.harness.services import PREFIX_PATTERN, glob_escape, new_prefix

BENCHES = [
    "bench.apply_calls",
    "bench.broker_hop",
    "bench.discovery.__main__",
    "bench.faults",
    "bench.heartbeats.__main__",
    "bench.http_floor",
    "bench.http_writes",
    "bench.latency",
    "bench.limits",
    "bench.mcp",
    "bench.readmodel_lag",
    "bench.redis_memory",
    "bench.roster",
    "bench.signatures",
    "bench.streams",
]


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 the maximum; unsorted input is sorted first."""
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_a_new_prefix_is_one_a_cleanup_accepts_and_is_unique() -> None:
    """Runs get `bench-<10 hex>`, each its own."""
    prefixes = {new_prefix() for _ in range(100)}
    assert len(prefixes) == 100
    assert all(PREFIX_PATTERN.fullmatch(p) for p in prefixes)


@pytest.mark.parametrize(
    "prefix",
    ["*", "bench-*", "bench-", "bench-0123456789a", "bench-012345678G", "t-0123456789", "{x}"],
)
def test_cleanup_refuses_a_prefix_no_run_made(prefix: str) -> None:
    """`--cleanup` deletes by prefix: a pattern or another registry's prefix is refused."""
    from bench.heartbeats.__main__ import parse_args

    with pytest.raises(SystemExit) as exit_:
        parse_args(["--cleanup", prefix])
    assert exit_.value.code == 2
    assert parse_args(["--cleanup", "bench-0123456789"]).cleanup == "bench-0123456789"


@pytest.mark.parametrize("counts", ["0", "1,1", "9", "x", "", "1,-2"])
def test_heartbeats_refuses_worker_counts_it_cannot_run(counts: str) -> None:
    """`--workers`: distinct process counts from 1 to 8; anything else is refused."""
    from bench.heartbeats.__main__ import parse_args

    with pytest.raises(SystemExit) as exit_:
        parse_args(["--workers", counts])
    assert exit_.value.code == 2


def test_heartbeats_scale_out_measures_the_worker_at_each_count() -> None:
    from bench.heartbeats.__main__ import parse_args

    args = parse_args(["--workers", "1,2,3"])
    assert (args.workers, args.variants) == ([1, 2, 3], ["worker"])
    assert parse_args([]).variants == ["worker", "ceiling"]
    assert parse_args(["--workers", "2", "--variants", "ceiling"]).variants == ["ceiling"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--api-processes", "0"],
        ["--api-processes", "5"],
        ["--api-processes", "1,1"],
        ["--api-processes", "1,2", "--api-variant", "x=src"],
    ],
)
def test_discovery_refuses_api_process_counts_it_cannot_run(argv: list[str]) -> None:
    """`--api-processes`: distinct counts from 1 to 4, of the installed API only."""
    from bench.discovery.__main__ import parse_args

    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2


def test_discovery_scale_out_is_one_api_variant_per_process_count() -> None:
    from bench.discovery.__main__ import parse_args
    from bench.discovery.report import api_path, processes_of

    args = parse_args(["--api-processes", "1,2"])
    assert args.api_variants == [("1-proc", ""), ("2-proc", "")]
    assert args.api_processes_of == {"1-proc": 1, "2-proc": 2}
    assert [processes_of(api_path(name)) for name, _ in args.api_variants] == [1, 2]
    assert processes_of("api") is None
    assert parse_args([]).api_processes_of == {}


def test_glob_escape_makes_every_pattern_character_literal() -> None:
    """A prefix with glob characters matches only itself in SCAN."""
    assert glob_escape("{a*b?[c]\\d}:") == "{a\\*b\\?\\[c\\]\\\\d}:"
    assert glob_escape("{bench-0123456789}:") == "{bench-0123456789}:"


def test_proc_readers_read_this_process() -> None:
    """CPU seconds and resident memory come from /proc and are plausible for this process."""
    assert process_cpu_s(os.getpid()) > 0
    rss, peak = rss_kib(os.getpid())
    assert 0 < rss <= peak
    assert rss_kib()[0] > 0


def test_role_command_runs_a_module_optionally_under_cprofile() -> None:
    """Role processes run as `python -m bench.x`; a profile puts cProfile in front."""
    plain = role_command("bench.heartbeats", "--role", "worker")
    assert plain[1:] == ["-m", "bench.heartbeats", "--role", "worker"]
    profiled = role_command("bench.heartbeats", "--role", "worker", profile="/tmp/x.prof")
    assert profiled[1:5] == ["-m", "cProfile", "-o", "/tmp/x.prof"]
    assert profiled[5:] == plain[1:]
    assert 0 < free_port() < 65536


@pytest.mark.parametrize("module", BENCHES)
def test_every_benchmark_imports_and_parses_its_help(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refactor of the harness that breaks a benchmark fails here, not at its next run."""
    loaded = importlib.import_module(module)
    parse = getattr(loaded, "parse_args", None) or getattr(loaded, "parse", None)
    if parse is None:  # apply_calls and limits parse inside main()
        return
    with pytest.raises(SystemExit) as exit_:
        parse(["--help"])
    assert exit_.value.code == 0
    assert re.search(r"usage: ", capsys.readouterr().out)


def test_a_table_lines_its_rows_up_under_its_header() -> None:
    """Values take their column's width and spec; None leaves the cell blank; an indent of the
    rows widens the header's first column so the columns stay aligned."""
    from bench.harness.tables import Column, Table

    table = Table(Column("name", 6, align="<"), Column("rate", 7, ",.0f"), Column("n", 3))
    assert table.header() == "name      rate   n"
    assert table.rule() == "-" * len(table.header())
    assert table.row("ab", 12345.4, 7) == "ab      12,345   7"
    assert table.row("ab", None, 7) == "ab               7"
    assert table.row("ab", 1.0) == "ab           1"
    indented = Table(Column("path", 4, align="<"), Column("x", 3), indent="  ")
    assert indented.header() == "path     x"
    assert indented.row("api", 5) == "  api    5"
