"""Who may use the HTTP control surface: a middleware and one access flag per route.

Playback is public, like RTMP on :1935; control is closed by default (docs/security.md,
"The HTTP control surface"). Each route has an :class:`Access` flag, set where the route is
added (:func:`mark`); a route nobody marked is :attr:`Access.CONTROL`, so a route added
later is closed until someone decides otherwise.

A request to a ``CONTROL`` route (``/api/*``, ``/control/*``, ``/metrics``) passes only if:

1. no browser mark says it comes from another site (:func:`cross_site_mark`): an
   ``Origin`` or ``Referer`` that is not this server, or ``Sec-Fetch-Site`` other than
   ``same-origin`` / ``none``. This holds for trusted clients and token holders alike:
   loopback is no defence against a page open in the operator's own browser, and it is
   what keeps livego's state-changing ``GET /control/reset`` out of reach of an ``<img>``;
2. with ``http.api_token`` set, it carries ``Authorization: Bearer <token>`` (401
   otherwise), whoever sends it; without a token, the client is trusted
   (:func:`is_trusted`: loopback while ``http.trust_loopback``), 403 otherwise;
3. a ``POST``/``PUT``/``PATCH`` (or a ``DELETE`` with a body) is
   ``Content-Type: application/json`` (415 otherwise), a type no HTML form can send and
   that a cross-origin ``fetch`` can send only after a CORS preflight, which this server
   never grants.

Refusals name no stream: a client that is not allowed learns nothing but the reason.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from ..config import HTTPConfig
from .keys import SERVICE_KEY

__all__ = [
    "ACCESS_KEY",
    "Access",
    "control_guard",
    "cross_site_mark",
    "is_trusted",
    "mark",
]

logger = logging.getLogger("aiortmp.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(enum.Enum):
    """The access flag of a route."""

    #: Anyone: playback (the apps' ``play`` rules decide) and the dashboard's files.
    PUBLIC = "public"
    #: Token holders, or trusted clients when there is no token; never cross-site.
    CONTROL = "control"


#: ``app[ACCESS_KEY]``: resource → its flag (resources not in it are ``CONTROL``).
ACCESS_KEY: web.AppKey[dict[web.AbstractResource, Access]] = web.AppKey("aiortmp.http.access")

# A request relayed by a proxy on this host comes from loopback on behalf of someone else.
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
# Methods whose body carries the change (DELETE usually has none).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Fetch Metadata (W3C): "same-origin" from our own pages, "none" typed or bookmarked.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def mark(
    app: web.Application, target: web.AbstractRoute | web.AbstractResource, access: Access
) -> None:
    """Give a route (all the methods of its resource) an access flag.

    Args:
        app: the application the route belongs to.
        target: what ``router.add_get`` / ``add_static`` returned.
        access: its flag.
    """
    resource = target.resource if isinstance(target, web.AbstractRoute) else target
    assert resource is not None, "only aiohttp's own system routes have no resource"
    if ACCESS_KEY not in app:
        app[ACCESS_KEY] = {}
    app[ACCESS_KEY][resource] = access


def _origin_of(value: str) -> tuple[str, str, int | None] | None:
    try:
        url = URL(value)
    except ValueError:
        return None
    if not url.scheme or not url.host:
        return None
    return url.scheme.lower(), url.host.lower(), url.port


def _own_origin(request: web.Request, scheme: str) -> tuple[str, str, int | None] | None:
    # The origin the client addressed: its Host header, with the scheme the browser used
    # (a TLS proxy in front makes it https while we see http).
    return _origin_of(f"{scheme}://{request.host}")


def cross_site_mark(request: web.Request) -> str | None:
    """What says a browser sent this request on behalf of another site, if anything.

    Fetch Metadata (``Sec-Fetch-Site``, W3C Fetch Metadata Request Headers §2.1) is sent by
    current browsers on every request; ``Origin`` (RFC 6454 §7) on every POST and on
    cross-origin requests; ``Referer`` by older browsers on most requests. ``same-site``
    counts as foreign: every port of ``localhost`` is the same site.

    Args:
        request: the request.

    Returns:
        The header that marks it, or None for a request from our own pages or from a
        program (curl, a Prometheus scraper) that sends none of them.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in _OWN_FETCH_SITES:
        return f"Sec-Fetch-Site: {site.strip()[:20]}"
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value is None:
            continue
        origin = _origin_of(value.strip())  # "null" (sandboxed, file:) parses as None
        if origin is None or origin != _own_origin(request, origin[0]):
            return f"foreign {header}"
    return None


def _host_name(request: web.Request) -> str | None:
    origin = _origin_of(f"http://{request.host}")
    return origin[1] if origin is not None else None


def is_trusted(request: web.Request, config: HTTPConfig) -> bool:
    """Whether a request without a token may use the control surface.

    Trusted: a loopback peer (127.0.0.0/8, ::1) while ``http.trust_loopback``, that was not
    relayed by a proxy on this host (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``) and
    that names this host as an IP address or ``localhost`` in ``Host`` (a page whose own
    name was re-pointed at 127.0.0.1, "DNS rebinding", sends its own name there).

    Args:
        request: the request.
        config: the ``[http]`` configuration.

    Returns:
        True if the client is trusted.
    """
    if not config.trust_loopback:
        return False
    try:
        address = ipaddress.ip_address((request.remote or "").partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_loopback:
        return False
    if any(header in request.headers for header in _PROXY_HEADERS):
        return False
    host = _host_name(request)
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: the token is a secret.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def _refuse(status: int, message: str) -> web.Response:
    response = web.json_response(
        {"error": message}, status=status, dumps=lambda v: json.dumps(v, separators=(",", ":"))
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(request: web.Request, config: HTTPConfig) -> web.Response | None:
    where = cross_site_mark(request)
    if where is not None:
        return _refuse(403, f"cross-site request refused ({where})")
    if config.api_token:
        if not _bearer_ok(request, config.api_token):
            response = _refuse(401, "missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="aiortmp"'
            return response
    elif not is_trusted(request, config):
        return _refuse(
            403, "the control API answers local clients only; set http.api_token to use it"
        )
    if request.method in _BODY_METHODS or (request.method == "DELETE" and request.body_exists):
        if request.content_type != "application/json":
            return _refuse(415, "a change needs a JSON body (Content-Type: application/json)")
    return None


@web.middleware
async def control_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The aiohttp middleware applying the rules above to every ``CONTROL`` route.

    Requests that match no route go on to their 404/405, which reveal nothing.
    """
    resource = request.match_info.route.resource
    if resource is None:
        return await handler(request)
    access = request.app.get(ACCESS_KEY, {}).get(resource, Access.CONTROL)
    if access is Access.PUBLIC:
        return await handler(request)
    # Read per request: a SIGHUP that sets or changes the token applies at once.
    config = request.app[SERVICE_KEY].server.config.http
    refusal = _refusal(request, config)
    if refusal is not None:
        logger.debug(
            "%s %s from %s refused: %s",
            request.method,
            request.rel_url.path,
            request.remote,
            refusal.status,
        )
        return refusal
    response = await handler(request)
    # Keys and stream lists are not for shared caches or the browser's history.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
