"""Keep the UI process off the network: loopback only, unless a share link was asked for.

Gradio can reach out on its own: a version check and telemetry (off through
`GRADIO_ANALYTICS_ENABLED=False` and `analytics_enabled=False`), and a `/file=https://...` route
that fetches any public URL a visitor names. An artist running `bender ui` on a laptop expects
none of that, so `bender ui` installs this guard: every outbound `connect` to an address that is
not loopback (or a Unix socket) fails with `PermissionError`, and name lookups of non-local
hosts fail too. Incoming connections (a LAN browser when `--host 0.0.0.0`) are unaffected:
accepting is not connecting.

Tests install it in `record` mode to prove nothing tried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


def is_loopback(host: str) -> bool:
    """True for loopback IPs and 'localhost' (the only places the UI may connect to)."""
    host = str(host).strip("[]").split("%")[0].lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified


class NetGuard:
    """Patches socket connect/lookup; `attempts` lists every refused (or, in record mode, seen) target."""

    def __init__(self, enforce: bool = True):
        self.enforce = enforce
        self.attempts: list[str] = []
        self._lock = threading.Lock()
        self._saved: dict[str, object] | None = None

    def _check(self, host: str, what: str) -> None:
        if is_loopback(host):
            return
        with self._lock:
            self.attempts.append(f"{what} {host}")
        if self.enforce:
            raise PermissionError(f"bender ui makes no outbound connections (refused {what} to {host}); "
                                  "start it with --share if you want a public link")

    def install(self) -> NetGuard:
        if self._saved is not None:
            return self
        cls = socket.socket
        saved = {"connect": cls.connect, "connect_ex": cls.connect_ex, "getaddrinfo": socket.getaddrinfo}
        guard = self

        def target(address) -> str | None:
            return str(address[0]) if isinstance(address, tuple) and address else None

        def connect(sock, address):
            host = target(address)
            if host is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check(host, "connect")
            return saved["connect"](sock, address)

        def connect_ex(sock, address):
            host = target(address)
            if host is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check(host, "connect")
            return saved["connect_ex"](sock, address)

        def getaddrinfo(host, *args, **kwargs):
            if host is not None:
                name = host.decode() if isinstance(host, bytes) else str(host)
                guard._check(name, "lookup")
            return saved["getaddrinfo"](host, *args, **kwargs)

        cls.connect, cls.connect_ex = connect, connect_ex
        socket.getaddrinfo = getaddrinfo
        self._saved = saved
        return self

    def uninstall(self) -> None:
        if self._saved is None:
            return
        socket.socket.connect = self._saved["connect"]
        socket.socket.connect_ex = self._saved["connect_ex"]
        socket.getaddrinfo = self._saved["getaddrinfo"]
        self._saved = None


@contextlib.contextmanager
def guarded(enforce: bool = True) -> Iterator[NetGuard]:
    """Install a guard for the duration of a block (tests use `enforce=False` to record)."""
    guard = NetGuard(enforce).install()
    try:
        yield guard
    finally:
        guard.uninstall()
