"""The admin token: who may use admin-only features, and a log line for each refusal."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from starlette.requests import Request
from starlette.responses import Response

from reelsearch.errors import Forbidden
from reelsearch.http.responses import error_response

logger = logging.getLogger("reelsearch.http.admin")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def has_admin_token(request: Request) -> bool:
    """True when the request carries "Authorization: Bearer <REELSEARCH_ADMIN_TOKEN>"."""
    token: str = request.app.state.settings.admin_token
    if not token:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def require_admin(request: Request, feature: str) -> None:
    """Raise ``Forbidden`` (403) naming ``feature`` unless the admin token was sent.

    Every refusal that sent some credential is logged (a warning with the
    client address, never the credential): repeated guesses show in the log.
    """
    if has_admin_token(request):
        return
    if not request.app.state.settings.admin_token:
        raise Forbidden(
            f"{feature} is an admin feature and no admin token is configured "
            "(set REELSEARCH_ADMIN_TOKEN)",
            param=feature,
        )
    if "authorization" in request.headers:
        client = request.client.host if request.client else "unknown"
        logger.warning("refused a wrong admin token for %s from %s (%s %s)",
                       feature, client, request.method, request.url.path)  # fmt: skip
    raise Forbidden(
        f"{feature} needs the admin token: send 'Authorization: Bearer <token>'",
        param=feature,
    )


def admin_refusal(request: Request, feature: str, what: str) -> Response | None:
    """The answer to a request for ``what`` (an admin-only API) that lacks the admin
    token: a 401 without credentials, naming the scheme to use (RFC 9110 11.6.1);
    ``require_admin``'s 403 (raised) with wrong ones; None to go on."""
    if "authorization" not in request.headers:
        return _unauthorized(feature, what)
    require_admin(request, feature)
    return None


def _unauthorized(feature: str, what: str) -> Response:
    response = error_response(
        401,
        "unauthorized",
        f"{what} needs the admin token: send 'Authorization: Bearer <token>'",
        feature,
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="reelsearch"'
    return response


def parse_networks(spec: str) -> tuple[Network, ...]:
    """ "10.0.0.0/8, 127.0.0.1" -> networks; a bad entry raises ValueError naming it."""
    networks = []
    for part in spec.split(","):
        if part.strip():
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(networks)


def is_from(request: Request, networks: tuple[Network, ...]) -> bool:
    """True when the request's client address lies in one of ``networks``."""
    if not networks or request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:  # a Unix socket or a test client's name
        return False
    return any(address in network for network in networks)
