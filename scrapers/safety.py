"""The SSRF guard: which URLs may be fetched, and an HTTP adapter that connects only where we checked.

Search results point at hosts nobody vetted. A bad index entry (or a redirect) can aim at cloud
metadata (169.254.169.254), localhost or a private network, so every request, API or image, goes
through `check_url`:

1. only `http`/`https`, no `user:pass@`, only ports 80/443;
2. resolve the host and require **every** address to be globally routable (after unwrapping
   IPv4-mapped, NAT64, 6to4 and Teredo forms, which can smuggle a private IPv4 inside an IPv6);
3. return a `Target` that pins one checked address. `PinnedAdapter` then connects to exactly that
   address while keeping the hostname for the `Host` header, TLS SNI and certificate checks, so DNS
   cannot answer differently between the check and the connection (DNS rebinding).

The one bypass is an explicit allow-list of `(host, port)` pairs (`--allow-host HOST:PORT`): it lifts
the address and port rules for exactly that host name and port. Tests use it for their loopback
servers; nothing disables the guard.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from bender.errors import BenderError

Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}

# IPv6 prefixes that embed an IPv4 address in their last 32 bits (NAT64 well-known and local-use).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class BlockedURL(Exception):
    """The URL may not be fetched; `reason` is a short manifest reason such as 'private address'."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DNSFailure(Exception):
    """The host name did not resolve (no network, or a typo)."""


@dataclass(frozen=True)
class SafetyPolicy:
    """What the guard lets through. `allow_hosts` holds lower-case `(host, port)` pairs."""

    allow_hosts: frozenset[tuple[str, int]] = frozenset()
    allowed_ports: frozenset[int] = field(default_factory=lambda: frozenset({80, 443}))

    @classmethod
    def from_strings(cls, allow_hosts: Iterable[str] = ()) -> SafetyPolicy:
        return cls(allow_hosts=frozenset(parse_allow_host(h) for h in allow_hosts))

    def allows(self, host: str, port: int) -> bool:
        return (host.lower(), port) in self.allow_hosts


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`ip`) and what to call the host (`host_header`)."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if DEFAULT_PORTS[self.scheme] == self.port else f"{name}:{self.port}"


def parse_allow_host(text: str) -> tuple[str, int]:
    """'127.0.0.1:8000', 'localhost:80' or '[::1]:8080' → (host, port). The port is required."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BenderError(f"--allow-host {text!r}: write it as HOST:PORT, e.g. 127.0.0.1:8000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.lower(), int(port)


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 wrappers of IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4-mapped and NAT64 addresses reach exactly the embedded IPv4: that one decides.
        if ip.ipv4_mapped is not None:
            return _is_public(ip.ipv4_mapped)
        if any(ip in net for net in _NAT64):
            return _is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        embedded = []
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if any(not _is_public(e) for e in embedded):
            return False
    return _is_public(ip)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global already excludes RFC 1918, loopback, link-local, CGNAT 100.64/10 and reserved
    # ranges; multicast and unspecified are spelled out because is_global does not cover them all.
    return ip.is_global and not (ip.is_multicast or ip.is_unspecified or ip.is_loopback
                                 or ip.is_link_local or ip.is_private or ip.is_reserved)


def system_resolve(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for `host` (IP literals resolve to themselves)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise DNSFailure(f"cannot resolve {host}: {e.args[-1] if e.args else e}") from None
    out: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in out:
            out.append(sockaddr[0])
    return out


def check_url(url: str, policy: SafetyPolicy, resolve: Resolver = system_resolve) -> Target:
    """Check `url` against the policy and pin one checked address; raise `BlockedURL` if refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BlockedURL("bad url", url) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BlockedURL("bad scheme", scheme or "(none)")
    if parts.username is not None or parts.password is not None:
        raise BlockedURL("userinfo in url")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedURL("bad url", "no host")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip(host) else host.lower()
    except UnicodeError:
        raise BlockedURL("bad url", "host name") from None
    port = port if port is not None else DEFAULT_PORTS[scheme]
    allowed = policy.allows(host, port)
    if not allowed and port not in policy.allowed_ports:
        raise BlockedURL("port not allowed", str(port))
    addresses = resolve(host, port)
    if not addresses:
        raise DNSFailure(f"cannot resolve {host}")
    if not allowed:
        for a in addresses:
            if not is_public_address(a):
                raise BlockedURL("private address", f"{host} -> {a}")
    return Target(url=url, scheme=scheme, host=host, port=port, ip=addresses[0])


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that connects to the address pinned on the request, never re-resolving.

    The caller sets `prepared.pinned_target = Target(...)` (from `check_url`) and the `Host`
    header. Connection pools are keyed by (scheme, ip, port, SNI name), so keep-alive still works.
    A request without a pin is refused, so nothing can bypass the check by accident.
    """

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        target: Target | None = getattr(request, "pinned_target", None)
        if target is None:
            raise BlockedURL("unchecked request", request.url)
        host_params["host"] = target.ip
        host_params["port"] = target.port
        if target.scheme == "https":
            pool_kwargs["server_hostname"] = target.host
            pool_kwargs["assert_hostname"] = target.host
        return host_params, pool_kwargs
