"""Where card verification may fetch from: the SSRF guard's rules, pure (no I/O).

A registration names a URL, and the registry then connects to it from inside its own network:
without rules, any agent could make the registry probe internal services or read a cloud
metadata endpoint. So, before anything is sent:

- only `http` and `https` URLs with a host, and never with credentials in them (`user@host`);
- a host that is an address in any spelling (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`,
  as C's `inet_aton` reads them) is read as that address here, so it is checked and never
  handed to a resolver that might read it differently;
- every address the host resolves to must be global (public), or inside one of the networks
  the operator allowed (`AGENTROSTER_VERIFY_NETWORKS`): loopback and private ranges only when
  listed;
- link-local (169.254.0.0/16, fe80::/10), the cloud metadata addresses (169.254.169.254,
  fd00:ec2::254, 100.100.100.200), unspecified, multicast and broadcast addresses never, even
  when a listed network contains them;
- an IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
  NAT64 `64:ff9b::/96`, 6to4, Teredo) is judged by the IPv4 address too: it may lead there.

The fetcher (`card_fetch.py`) then connects to the address it checked, never resolving again.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Never fetched from, whatever is allowed: link-local (cloud metadata lives there), the
#: metadata addresses outside it, "this network", unspecified, multicast and broadcast.
NEVER: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.0.0/16",
        "fe80::/10",
        "169.254.169.254/32",
        "fd00:ec2::254/128",
        "100.100.100.200/32",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "255.255.255.255/32",
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Characters of an IPv4 address in one of the spellings `inet_aton` reads (decimal, octal,
#: hexadecimal, with one to four parts).
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


class Refused(Exception):
    """The guard refuses a URL or an address; the message says why (for logs, not clients)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL's parts: what to connect to and what to call the host."""

    scheme: str
    #: The host as the URL names it, lower-cased, IPv6 without brackets (Host header, SNI).
    host: str
    port: int
    #: Path and query, at least `/`.
    path: str

    @property
    def origin(self) -> tuple[str, str, int]:
        """Scheme, host and port: a redirect may only stay within these."""
        return (self.scheme, self.host, self.port)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The allowed networks of a setting; ValueError naming one that is not a CIDR."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not a network (CIDR such as 10.0.0.0/8)") from None
    return tuple(networks)


def check_url(url: str) -> Target:
    """The parts of a URL the guard accepts; `Refused` for another scheme, no host, a port
    out of range, or credentials in it."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise Refused("the URL carries credentials (user@host)")
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, in any spelling `inet_aton` reads; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host) and not host.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    value = int(address)
    if 1 < value < 2**32:  # IPv4-compatible ::a.b.c.d (deprecated; not :: or ::1)
        return ipaddress.IPv4Address(value)
    return None


def check_address(address: IPAddress, allowed: Sequence[Network]) -> None:
    """`Refused` unless the guard lets the fetcher connect to `address` (module docstring)."""
    inner = embedded_ipv4(address)
    for candidate in (address, inner):
        if candidate is None:
            continue
        for network in NEVER:
            if candidate.version == network.version and candidate in network:
                raise Refused(f"{address} is in {network}, never fetched from")
    effective = inner or address
    if effective.is_global:
        return
    for network in allowed:
        for candidate in (address, effective):
            if candidate.version == network.version and candidate in network:
                return
    raise Refused(f"{address} is not a public address nor in AGENTROSTER_VERIFY_NETWORKS")


def check_addresses(addresses: Sequence[IPAddress], allowed: Sequence[Network]) -> IPAddress:
    """The address to connect to, once every one the host resolved to passed (a name that
    also resolves to an internal address is refused: the connection might go there)."""
    if not addresses:
        raise Refused("the host resolved to no address")
    for address in addresses:
        check_address(address, allowed)
    return addresses[0]
