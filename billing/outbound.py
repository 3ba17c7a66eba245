"""Delivery of outbound events: its workflow ids, timings, and which URLs may be called.

Every address an endpoint's host resolves to must be public unless private targets are
allowed (dev and test): a webhook must not become a way into the service's own network.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

from billing.errors import InvalidInput

MAX_URL_LENGTH = 2048
# Answers kept in the attempt log: enough to explain a failure, not a receiver's whole page.
MAX_ERROR_LENGTH = 500

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- ids ---------------------------------------------------------------------------


def delivery_id(event_id: str, endpoint_id: str) -> str:
    """One first delivery of an event to an endpoint, ever (REJECT_DUPLICATE)."""
    return f"webhook-{event_id}-{endpoint_id}"


def redelivery_id(event_id: str, endpoint_id: str, request_id: str) -> str:
    return f"webhook-{event_id}-{endpoint_id}-redeliver-{request_id}"


def dispatcher_id(task_queue: str) -> str:
    """One dispatcher per task queue: it starts deliveries on the queue whose worker runs it."""
    return f"webhook-dispatcher-{task_queue}"


def attempt_timeout(request_timeout: timedelta) -> timedelta:
    """Connect, send and wait for the answer may each take the request timeout."""
    return request_timeout * 3 + timedelta(seconds=10)


def attempt_queue(task_queue: str) -> str:
    """HTTP attempts poll their own queue: a slow receiver never takes a saga's worker slot."""
    return f"{task_queue}-webhooks"


# --- which URLs may be called --------------------------------------------------------


def is_public(address: Address) -> bool:
    """Globally routable and unicast: not private, loopback, link-local, reserved or shared."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """An http(s) URL with a host and no credentials; an IP literal host must be public
    unless `allow_private`. Host names are checked again, resolved, at every attempt."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url: at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"url: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url: only http and https URLs are called")
    host = parts.hostname
    if not host:
        raise InvalidInput("url: needs a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url: credentials in the URL are refused; verify the signature")
    if parts.fragment:
        raise InvalidInput("url: a fragment (#...) is never sent; leave it out")
    if port == 0:
        raise InvalidInput("url: port 0 cannot be called")
    if allow_private:
        return url
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise InvalidInput("url: loopback addresses are refused")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: resolved and checked at each attempt
    if not is_public(address):
        raise InvalidInput("url: private, loopback and reserved addresses are refused")
    return url


def refused_addresses(addresses: list[Address]) -> list[Address]:
    """The resolved addresses that may not be called; any one refuses the attempt."""
    return [a for a in addresses if not is_public(a)]
