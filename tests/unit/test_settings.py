"""Settings that contradict each other are refused, and the CLI says which, without a trace."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agentroster.cli import app
from agentroster.settings import Settings


def test_a_gap_of_less_than_two_sweeps_is_refused() -> None:
    """Every sweep would count as a gap: no lease would ever expire."""
    with pytest.raises(ValidationError, match="AGENTROSTER_REAPER_GAP_S"):
        Settings(sweep_interval_s=3.0, reaper_gap_s=5.0)
    assert Settings(sweep_interval_s=2.5, reaper_gap_s=5.0).reaper_gap_s == 5.0


def test_a_smallest_ttl_above_the_largest_is_refused() -> None:
    with pytest.raises(ValidationError, match="AGENTROSTER_TTL_MIN_S"):
        Settings(ttl_min_s=60.0, ttl_max_s=30.0)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"AGENTROSTER_SWEEP_INTERVAL_S": "-1"}, "invalid AGENTROSTER_SWEEP_INTERVAL_S='-1'"),
        ({"AGENTROSTER_REAPER_GAP_S": "1"}, "invalid settings: AGENTROSTER_REAPER_GAP_S (1)"),
    ],
)
def test_the_cli_names_a_bad_setting_and_exits_2(env: dict[str, str], said: str) -> None:
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2
    assert said in result.output
    assert "Traceback" not in result.output
