"""Settings that contradict each other are refused, and the CLI says which, without a trace."""

from __future__ import annotations

from typing import Any

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


@pytest.mark.parametrize(
    ("env", "said"),
    [
        # the cases of issue 10: each passed, or ended in a traceback, before
        (
            {"AGENTROSTER_SWEEP_INTERVAL_S": "0.001", "AGENTROSTER_REAPER_GAP_S": "0.002"},
            "invalid AGENTROSTER_SWEEP_INTERVAL_S='0.001': Input should be greater than or "
            "equal to 0.05",
        ),
        (
            {"AGENTROSTER_TTL_MIN_S": "0.0001"},
            "invalid AGENTROSTER_TTL_MIN_S='0.0001': Input should be greater than or equal to 0.1",
        ),
        (
            {"AGENTROSTER_PREFETCH": "70000"},
            "invalid AGENTROSTER_PREFETCH='70000': Input should be less than or equal to 65535",
        ),
        ({"AGENTROSTER_LOG_LEVEL": "LOUD"}, "invalid AGENTROSTER_LOG_LEVEL='LOUD': must be one of"),
        (
            {"AGENTROSTER_REDIS_URL": "localhost:6379"},
            "invalid AGENTROSTER_REDIS_URL='localhost:6379': must be a URL starting with redis://",
        ),
        (
            {"AGENTROSTER_REDIS_URL": "redis://127.0.0.1:6379/zero"},
            "the database (the URL's path) must be a number",
        ),
        (
            {"AGENTROSTER_BROKER_URL": "http://127.0.0.1:5672/"},
            "must be a URL starting with amqp:// or amqps://",
        ),
        (
            {"AGENTROSTER_BROKER_URL": "amqp://guest:s3cret@127.0.0.1:99999/"},
            "invalid AGENTROSTER_BROKER_URL='amqp://guest:***@127.0.0.1:99999/': has a port",
        ),
        (
            {"AGENTROSTER_EVENT_LOG_MAX_AGE": "7 days"},
            "invalid AGENTROSTER_EVENT_LOG_MAX_AGE='7 days': must be a positive whole number",
        ),
        (
            {"AGENTROSTER_TTL_MAX_S": "inf"},
            "invalid AGENTROSTER_TTL_MAX_S='inf': Input should be a finite number",
        ),
        ({"AGENTROSTER_SWEEP_INTERVAL_S": "nan"}, "Input should be a finite number"),
        (
            {"AGENTROSTER_TTL_MIN_S": "0.5"},
            "invalid settings: AGENTROSTER_TTL_MIN_S (0.5) must be at least "
            "AGENTROSTER_SWEEP_INTERVAL_S (1)",
        ),
        (
            {"AGENTROSTER_COMMANDS_MAX_LENGTH": "5000"},
            "invalid settings: AGENTROSTER_COMMANDS_MAX_LENGTH (5000) must be above "
            "AGENTROSTER_REAPER_BACKLOG_LIMIT (10000), or 0",
        ),
    ],
)
def test_a_bad_value_exits_2_naming_the_variable_and_its_range(
    env: dict[str, str], said: str
) -> None:
    """Bounds, formats and relations are checked before anything connects."""
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output  # a URL's password is never printed


def test_the_port_option_is_validated_like_the_variable() -> None:
    result = CliRunner().invoke(app, ["api", "--port", "70000"])
    assert result.exit_code == 2
    assert "AGENTROSTER_API_PORT=70000" in result.output


@pytest.mark.parametrize(
    "name", [n for n, f in Settings.model_fields.items() if f.annotation in (int, float)]
)
def test_every_number_has_both_bounds(name: str) -> None:
    """A setting without an upper or lower bound is how `PREFETCH=70000` got through."""
    metadata = Settings.model_fields[name].metadata
    assert any(hasattr(m, "ge") or hasattr(m, "gt") for m in metadata), f"{name}: no floor"
    assert any(hasattr(m, "le") or hasattr(m, "lt") for m in metadata), f"{name}: no ceiling"


@pytest.mark.parametrize(
    "name", [n for n, f in Settings.model_fields.items() if f.annotation is float]
)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_no_number_is_infinite_or_nan(name: str, value: str) -> None:
    given: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError, match="finite number"):
        Settings(**given)


def test_the_defaults_and_good_values_pass() -> None:
    settings = Settings(
        log_level="debug",
        event_log_max_age="12h",
        redis_url="unix:///run/redis.sock",
        broker_url="amqps://user:pw@rabbit.example:5671/vhost",
        commands_max_length=0,
        dead_letter_max_length=0,
    )
    assert settings.log_level == "DEBUG"
    assert Settings().prefetch == 2000
