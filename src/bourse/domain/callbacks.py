"""Which callback URLs the server may POST to: the SSRF policy, pure.

A callback URL is chosen by a caller but fetched by the server, from inside
the operator's network. So the server refuses anything that could reach an
internal service: non-http(s) schemes, user-info, hosts that are (or resolve
to) loopback, private, link-local, metadata, CGNAT, multicast or reserved
addresses, and the numeric host spellings (``2130706433``, ``0x7f000001``,
``0177.0.0.1``, ``127.1``) that URL parsers and ``inet_aton`` read as IPv4
although they do not look like it. Operators can allow chosen ``host[:port]``
pairs (an internal receiver, a test server).

The URL is checked when it is registered (syntax and literal addresses) and
again at each delivery, against every address the name resolves to; the
delivery then connects to the checked address itself, so a second DNS answer
cannot switch it (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bourse.domain.errors import InvalidInput
from bourse.domain.outbox import DeliveryState

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

_BLOCKED_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_BLOCKED_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    # IPv4-mapped and IPv4-compatible forms reach IPv4 hosts through an IPv6 spelling.
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/8", "reserved"),
    ("100::/64", "reserved"),
    ("2001::/32", "reserved (Teredo)"),
    ("2001:10::/28", "reserved"),
    ("2001:20::/28", "reserved"),
    ("2001:db8::/32", "reserved"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in _BLOCKED_V4 + _BLOCKED_V6)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


class UnsafeCallbackUrl(InvalidInput):
    """A callback URL the server will not call."""


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why the server must not connect to ``ip``, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # NAT64 and 6to4 carry an IPv4 address inside; judge the one actually reached.
        # (NAT64 lies inside ::/8, so this comes before the table.)
        if ip in _NAT64:
            inner = forbidden_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"{inner} (via NAT64)" if inner else None
        if ip in _SIX_TO_FOUR and ip.sixtofour is not None:
            inner = forbidden_reason(ip.sixtofour)
            return f"{inner} (via 6to4)" if inner else None
    for network, why in _NETWORKS:
        if ip.version == network.version and ip in network:
            return why
    # Second opinion from the standard library, in case a range is missing above.
    if ip.is_private or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_multicast:
        return "not public"
    if ip.is_unspecified:
        return "unspecified"
    return None


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """A parsed, syntactically safe callback URL."""

    url: str
    scheme: str
    host: str  # lower-case name, or the canonical text of an IP literal
    port: int
    target: str  # path and query, at least "/"
    ip: IPAddress | None  # set when the URL names an address, not a name

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        return host if DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    def url_for(self, ip: IPAddress) -> str:
        """The URL with the host replaced by the address to connect to."""
        host = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
        return f"{self.scheme}://{host}:{self.port}{self.target}"


def _refuse(message: str, field: str) -> UnsafeCallbackUrl:
    return UnsafeCallbackUrl(f"{field}: {message}", field=field)


def parse_host(host: str, field: str = "callbackUrl") -> tuple[str, IPAddress | None]:
    """(normalised host, literal address or None); refuses every ambiguous spelling."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise _refuse("malformed IPv6 literal", field)
        literal = host[1:-1]
        if "%" in literal:
            raise _refuse("IPv6 zone identifiers are not allowed", field)
        try:
            v6 = ipaddress.IPv6Address(literal)
        except ValueError:
            raise _refuse("malformed IPv6 literal", field) from None
        return str(v6), v6
    if not host.isascii():
        raise _refuse("host must be ASCII (use the punycode form of a name)", field)
    name = host.lower().removesuffix(".")
    if not name or len(name) > 253:
        raise _refuse("host is missing or too long", field)
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        # Only the canonical dotted quad: no 127.1, no 2130706433, no leading zeros (octal).
        if len(labels) == 4 and all(label == str(int(label)) and int(label) <= 255 for label in labels):
            v4 = ipaddress.IPv4Address(name)
            return str(v4), v4
        raise _refuse("numeric host is not a dotted-quad IPv4 address", field)
    if _NUMERIC_LABEL.match(labels[-1]):
        # URL parsers read a host ending in a number (0x7f000001, 0x7f.1) as an IPv4 address.
        raise _refuse("host ending in a number is not a valid name", field)
    if not all(_LABEL.match(label) for label in labels):
        raise _refuse("host is not a valid DNS name", field)
    return name, None


def _parse_port(text: str, scheme: str, field: str) -> int:
    if text == "":
        return DEFAULT_PORTS[scheme]
    if not text.isdigit() or not text.isascii() or not 0 < int(text) < 65536:
        raise _refuse("invalid port", field)
    return int(text)


def parse_callback_url(url: str, field: str = "callbackUrl") -> CallbackTarget:
    """Parse ``url`` strictly; refuses anything two URL parsers could read differently."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise _refuse(f"must be 1-{MAX_URL_LENGTH} characters", field)
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise _refuse("must be ASCII without spaces, control characters or backslashes", field)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _refuse("malformed URL", field) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse("must be an http or https URL", field)
    if not url[len(scheme) :].startswith("://"):
        raise _refuse("must be an absolute URL", field)
    netloc = parts.netloc
    if "@" in netloc:
        raise _refuse("user information in the URL is not allowed", field)
    if "%" in netloc:
        raise _refuse("percent-encoded hosts are not allowed", field)
    if netloc.startswith("["):
        end = netloc.find("]")
        host_text, rest = netloc[: end + 1], netloc[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise _refuse("malformed IPv6 literal", field)
        port_text = rest[1:] if rest else ""
        if rest == ":":
            raise _refuse("invalid port", field)
    else:
        host_text, colon, port_text = netloc.partition(":")
        if colon and not port_text:
            raise _refuse("invalid port", field)
    host, ip = parse_host(host_text, field)
    port = _parse_port(port_text, scheme, field)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CallbackTarget(url=url, scheme=scheme, host=host, port=port, target=target, ip=ip)


class CallbackPolicy:
    """The SSRF policy with the operator's allow-list of ``host[:port]`` entries.

    An entry without a port allows every port of that host. An allowed host is
    trusted whatever it resolves to; numeric spellings are refused even then.
    """

    def __init__(self, allowlist: Iterable[str] = ()) -> None:
        self._allowed: set[tuple[str, int | None]] = set()
        for entry in allowlist:
            self._allowed.add(self._parse_entry(entry.strip()))

    @staticmethod
    def _parse_entry(entry: str) -> tuple[str, int | None]:
        try:
            if entry.startswith("["):
                end = entry.find("]")
                host_text, rest = entry[: end + 1], entry[end + 1 :]
                port_text = rest.removeprefix(":") if rest.startswith(":") else rest
            else:
                host_text, _, port_text = entry.partition(":")
            host, _ = parse_host(host_text, "callback_allowlist")
            if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
                raise ValueError(f"bad port in callback allow-list entry {entry!r}")
        except InvalidInput as e:
            raise ValueError(f"bad callback allow-list entry {entry!r}: {e.message}") from None
        return host, int(port_text) if port_text else None

    def is_allowlisted(self, target: CallbackTarget) -> bool:
        return (target.host, target.port) in self._allowed or (target.host, None) in self._allowed

    def check_url(self, url: str, field: str = "callbackUrl") -> CallbackTarget:
        """Registration-time check: syntax, and the address when the URL names one."""
        target = parse_callback_url(url, field)
        if target.ip is not None and not self.is_allowlisted(target):
            why = forbidden_reason(target.ip)
            if why:
                raise _refuse(f"address {target.ip} is {why}", field)
        if target.ip is None and not self.is_allowlisted(target) and _is_local_name(target.host):
            raise _refuse(f"host {target.host} is loopback", field)
        return target

    def pick_address(self, target: CallbackTarget, addresses: Sequence[str]) -> IPAddress:
        """Delivery-time check after resolution: every address must be allowed; returns the one
        to connect to. Refusing on any bad answer means a mixed DNS reply cannot smuggle one in."""
        if not addresses:
            raise UnsafeCallbackUrl(f"{target.host} did not resolve", field="callbackUrl")
        allowlisted = self.is_allowlisted(target)
        checked: list[IPAddress] = []
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                raise UnsafeCallbackUrl(f"{target.host} resolved to {text!r}", field="callbackUrl") from None
            why = None if allowlisted else forbidden_reason(ip)
            if why:
                raise UnsafeCallbackUrl(
                    f"{target.host} resolves to {ip}, which is {why}", field="callbackUrl", address=str(ip)
                )
            checked.append(ip)
        return checked[0]


def _is_local_name(host: str) -> bool:
    # RFC 6761: localhost and *.localhost always mean this machine.
    return host == "localhost" or host.endswith(".localhost")


# --- delivery (the outbox's retry policy and states: domain/outbox.py) ---------------------------


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What one POST attempt came to: an HTTP status, or an error before any status."""

    status_code: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        # Redirects are not followed, so a 3xx is a failed attempt like any other non-2xx.
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class CallbackDelivery:
    """One status-change POST waiting to be (re)tried."""

    id: int
    transfer_id: str
    url: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    delivery_id: int
    attempt: int
    attempted_at: datetime
    address: str | None
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery with its attempts, for operators and tests."""

    id: int
    transfer_id: str
    url: str
    body: str
    state: DeliveryState
    attempts: tuple[CallbackAttempt, ...]
    next_attempt_at: datetime
    last_error: str | None
