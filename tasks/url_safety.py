"""Where a webhook may post, and how a URL is shown (issue 12, item 10).

A webhook URL is chosen by an admin over the API (subscriptions) or by the operator (IMN_WEBHOOK_URL),
and the service then makes requests to it from inside the hospital network: pointed at loopback, a
private range or the cloud metadata service (169.254.169.254), it would turn the notifier into a probe
of internal services (server-side request forgery). So:

- `check_url` (on creation and at start-up): an absolute http(s) URL with a host and no credentials
  (deliveries are authenticated by their HMAC signature; a password in a URL ends up in listings and
  logs); an IP literal must be a public address, and a name must not resolve to a non-public one,
  unless private targets are allowed (IMN_WEBHOOK_ALLOW_PRIVATE=1, receivers inside the hospital).
- `pin` (at every delivery): the host is resolved again and *every* address it resolves to is
  checked; the request then connects to the checked address (Host header and TLS SNI/certificate name
  stay the original host). Re-resolving in the HTTP client instead would let a name answer with a
  public address for the check and a private one for the connection (DNS rebinding).
- `redact`: a URL as shown to people (API, logs): without user:password and with query values masked.

Redirects are never followed (httpx's default), so a public receiver cannot bounce a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_HINT = "set IMN_WEBHOOK_ALLOW_PRIVATE=1 to allow receivers on private networks"


class UnsafeUrl(ValueError):
    """A URL a webhook may not post to; the message says why (and never repeats credentials)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver). Tests replace this function."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(ip: IpAddress) -> str | None:
    """Why an address is not a public internet address (None: it is)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return refusal(ip.ipv4_mapped)
    for kind, test in (("loopback", ip.is_loopback),
                       ("link-local (cloud metadata lives here)", ip.is_link_local),
                       ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if test:
            return kind
    return None if ip.is_global else "not publicly routable"


def _parse(url: str) -> httpx.URL:
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeUrl("not a valid URL") from None
    if u.scheme not in ("http", "https") or not u.raw_host:
        raise UnsafeUrl("the URL must be an absolute http(s) URL with a host")
    if u.userinfo:
        raise UnsafeUrl("the URL must not contain a user name or password (deliveries are authenticated "
                        "by their HMAC signature)")
    return u


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _check_address(host: str, address: str, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    why = None if allow_private else refusal(ip)
    if why is not None:
        shown = host if host.strip("[]") == address else f"{host} ({address})"
        raise UnsafeUrl(f"the host {shown} is not a public address ({why}); {ALLOW_HINT}")


def check_url(url: str, allow_private: bool, resolve_names: bool = False) -> httpx.URL:
    """The static checks (scheme, host, credentials, IP literals, localhost); with resolve_names,
    also the addresses the host resolves to now (a name that does not resolve passes: delivery checks
    again and fails with the reason)."""
    u = _parse(url)
    host = u.raw_host.decode("ascii").lower()
    ip = _literal(host)
    if ip is not None:
        _check_address(host, host.strip("[]"), allow_private)
    elif not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UnsafeUrl(f"the host {host} is not a public address (loopback); {ALLOW_HINT}")
    elif resolve_names and not allow_private:
        try:
            addresses = resolve(host, u.port or (443 if u.scheme == "https" else 80))
        except (OSError, UnicodeError):
            return u
        for address in addresses:
            _check_address(host, address, allow_private)
    return u


@dataclass(frozen=True)
class Target:
    """A checked request target: connect to `url` (the host replaced by a checked address), send
    `headers` (Host) and `extensions` (TLS server name) so the receiver sees the original host."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, allow_private: bool) -> Target:
    """Resolve the URL's host now, check every address, and aim the request at the first of them."""
    u = check_url(url, allow_private)
    host = u.raw_host.decode("ascii").lower()
    if _literal(host) is not None:
        return Target(u)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise UnsafeUrl(f"the host {host} does not resolve")
    for address in addresses:
        _check_address(host, address, allow_private)
    chosen = addresses[0].split("%", 1)[0]
    return Target(u.copy_with(host=chosen), headers={"Host": u.netloc.decode("ascii")},
                  extensions={"sni_hostname": host} if u.scheme == "https" else {})


def redact(url: str | None) -> str | None:
    """The URL without user:password and with every query value masked, for listings and logs."""
    if url is None:
        return None
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(invalid URL)"
    if u.userinfo:
        u = u.copy_with(userinfo=b"")
    if u.query:
        masked = "&".join(f"{quote(k, safe='')}=***" for k, _ in u.params.multi_items())
        u = u.copy_with(query=masked.encode("ascii"))
    return str(u)


def scrub(text: str, url: str) -> str:
    """An error message with the URL (and any password in it) replaced by its redacted form."""
    shown = redact(url) or ""
    out = text.replace(url, shown)
    try:
        password = httpx.URL(url).password
    except (httpx.InvalidURL, TypeError, ValueError):
        password = ""
    return out.replace(password, "***") if password else out
