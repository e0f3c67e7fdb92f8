"""The SSRF guard's rules: which URLs and addresses card verification may fetch from."""

from __future__ import annotations

import ipaddress

import pytest

from agentroster.worker.net_guard import (
    Refused,
    check_address,
    check_addresses,
    check_url,
    literal_address,
    parse_networks,
)

EVERYTHING = parse_networks(["0.0.0.0/0", "::/0"])


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # AWS, GCP, Azure metadata
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "100.100.100.200",  # Alibaba metadata
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "255.255.255.255",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::a9fe:a9fe",  # IPv4-compatible
        "64:ff9b::a9fe:a9fe",  # NAT64
        "2002:a9fe:a9fe::1",  # 6to4
    ],
)
def test_never_allowed_even_when_listed(address: str) -> None:
    """Link-local, metadata, unspecified, multicast, broadcast, and IPv6 forms leading to them
    are refused even when the allowed networks cover every address."""
    with pytest.raises(Refused):
        check_address(ipaddress.ip_address(address), EVERYTHING)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "fd12:3456::1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
    ],
)
def test_internal_addresses_refused_unless_listed(address: str) -> None:
    """Loopback, private and shared ranges are refused by default."""
    with pytest.raises(Refused):
        check_address(ipaddress.ip_address(address), ())


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("10.1.2.3", "10.0.0.0/8"),
        ("::1", "::1/128"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
    ],
)
def test_listed_networks_allowed(address: str, network: str) -> None:
    """An internal address inside an allowed network passes."""
    check_address(ipaddress.ip_address(address), parse_networks([network]))


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_allowed(address: str) -> None:
    """Global addresses need no listing."""
    check_address(ipaddress.ip_address(address), ())


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("::ffff:a9fe:a9fe", "::ffff:a9fe:a9fe"),
    ],
)
def test_numeric_spellings_are_read_as_addresses(host: str, expected: str) -> None:
    """Decimal, octal, hex and short IPv4 spellings are parsed here (never sent to DNS), so the
    guard sees the address they lead to."""
    assert literal_address(host) == ipaddress.ip_address(expected)


def test_names_are_not_addresses() -> None:
    """Host names are left to the resolver (whose answers are then checked)."""
    assert literal_address("agent.example") is None
    assert literal_address("deadbeef.example") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@agent.example/",
        "http://user@agent.example/",
        "http://@agent.example/",
        "ftp://agent.example/",
        "file:///etc/passwd",
        "gopher://agent.example/",
        "http:///nohost",
        "http://agent.example:99999/",
        "javascript:alert(1)",
    ],
)
def test_urls_refused(url: str) -> None:
    """Only http(s) URLs with a host and without credentials."""
    with pytest.raises(Refused):
        check_url(url)


def test_url_parts() -> None:
    """Scheme and host lower-cased, default ports filled in, the query kept."""
    target = check_url("HTTPS://Agent.Example/a2a?x=1")
    assert target.origin == ("https", "agent.example", 443)
    assert target.path == "/a2a?x=1"
    assert check_url("http://[::1]:8080").origin == ("http", "::1", 8080)


def test_one_bad_address_refuses_the_host() -> None:
    """A name that resolves to a public and an internal address is refused: the connection
    could go to either."""
    public, internal = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("127.0.0.1")
    with pytest.raises(Refused):
        check_addresses([public, internal], ())
    with pytest.raises(Refused):
        check_addresses([], ())
    assert check_addresses([public], ()) == public


def test_bad_network_setting() -> None:
    """A setting that is not a CIDR is an error, not ignored."""
    with pytest.raises(ValueError, match="not a network"):
        parse_networks(["10.0.0.0/33"])
