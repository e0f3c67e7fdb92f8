"""The public packages' `__all__`: complete, existing, sorted the way ruff's RUF022 wants."""

from __future__ import annotations

import re
import types

import pytest

import agentroster
import agentroster.client
import agentroster.contracts

PACKAGES = [agentroster, agentroster.contracts, agentroster.client]


def isort_style_key(name: str) -> tuple[int, list[int | str]]:
    """RUF022's default order: SCREAMING_CASE first, then CamelCase, then the rest; natural sort.

    Plain `sorted()` would put `AgentEvent` before `CE_HEADERS`; RUF022 (isort-style, ruff's
    default) puts every constant before every class, so that is the order compared here.
    """
    if len(name) > 1 and name.isupper():
        category = 0
    elif name[:1].isupper():
        category = 1
    else:
        category = 2
    natural: list[int | str] = [
        int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)
    ]
    return category, natural


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_exported_name_exists(package: types.ModuleType) -> None:
    """Every name in __all__ is an attribute of the package."""
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_exported_names_are_unique(package: types.ModuleType) -> None:
    """No name is listed twice in __all__."""
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_is_sorted_isort_style(package: types.ModuleType) -> None:
    """__all__ is in RUF022's isort-style order (constants, classes, functions)."""
    names = list(package.__all__)
    assert names == sorted(names, key=isort_style_key)


def test_client_all_is_also_plainly_sorted() -> None:
    """The client's __all__ (no constants) is in plain sorted() order too."""
    names = list(agentroster.client.__all__)
    assert names == sorted(names)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_attribute_is_exported(package: types.ModuleType) -> None:
    """Every public attribute of the package, except its submodules, is listed in __all__."""
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(package.__all__) == set()


def test_contracts_all_holds_the_wire_contract() -> None:
    """The contracts package exports the commands, events, endpoints and topology."""
    assert {
        "Register",
        "Heartbeat",
        "Deregister",
        "AgentEvent",
        "Endpoint",
        "Topology",
        "card_digest",
        "derive_agent_id",
    } <= set(agentroster.contracts.__all__)


def test_client_exports_beacon_announce_and_discovery() -> None:
    """The client package exports Beacon, announce, the discovery client, the Roster and
    their models."""
    assert set(agentroster.client.__all__) == {
        "Agent",
        "DetailedAgent",
        "AgentPage",
        "Announcement",
        "Beacon",
        "Change",
        "Changes",
        "ChangesLost",
        "CommandPublisher",
        "CommandRefused",
        "DiscoveryClient",
        "DiscoveryError",
        "RegistryNotDeclared",
        "Roster",
        "RosterClosed",
        "announce",
    }
