"""The browser client's static files, and the HTTP answers the web port gives.

Only what ships in the ``securechat.web`` package folder is served: :class:`StaticFiles`
reads it once, at start, into an allowlist keyed by exact URL path (``/`` is index.html).
Any other path, including ``..``, percent-encoded and backslash variants, is a 404 without
looking at the file system, so nothing outside the package can be reached and there is no
directory listing. Only GET and HEAD are answered. Every answer, errors included, carries
the same security headers (see docs/security.md, "Web client"). Pure: no sockets.
"""

from __future__ import annotations

import dataclasses
import http
import ipaddress
import re
from collections.abc import Iterable, Mapping
from importlib import resources

#: The only file types served, with their Content-Type. Anything else in the folder is not.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
PACKAGE = "securechat.web"
#: The WebSocket endpoint; the HTTP answers never serve it.
WEBSOCKET_PATH = "/ws"
HSTS_SECONDS = 365 * 24 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response: status, headers (Content-Length included) and body."""

    status: http.HTTPStatus
    headers: tuple[tuple[str, str], ...]
    body: bytes


def security_headers(connect_sources: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """Headers sent with every answer; ``connect_sources`` are added to CSP connect-src.

    'self' already allows a same-origin wss:// in browsers that implement CSP Level 3;
    the explicit wss:// origins are for those that do not. Images come from 'self' or from
    ``blob:`` URLs the page made itself (attachment previews fetched with a ticket); never
    from another origin or a data: URL.
    """
    connect = " ".join(["'self'", *connect_sources])
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'; object-src 'none'"
    )
    return (
        ("Content-Security-Policy", policy),
        ("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ("Cache-Control", "no-cache"),
    )


class StaticFiles:
    """The allowlist of shipped files and the answer to each request."""

    def __init__(self, files: Mapping[str, bytes], *, connect_sources: Iterable[str] = ()) -> None:
        """``files``: URL path (``/app.js``) -> content; see :func:`load_package_files`."""
        self._files = dict(files)
        if "/index.html" in self._files:
            self._files["/"] = self._files["/index.html"]
        self._headers = security_headers(connect_sources)

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._files)

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The security headers every answer carries (:func:`security_headers`)."""
        return self._headers

    def answer(self, method: str, target: str) -> Answer:
        """The response to ``method target`` (the raw request-target, query included)."""
        if method not in ("GET", "HEAD"):
            return self._error(http.HTTPStatus.METHOD_NOT_ALLOWED, ("Allow", "GET, HEAD"))
        path = target.split("?", 1)[0].split("#", 1)[0]
        body = self._files.get(path)
        if body is None:
            return self._error(http.HTTPStatus.NOT_FOUND)
        name = "/index.html" if path == "/" else path
        content_type = CONTENT_TYPES[name[name.rfind(".") :]]
        headers = (
            *self._headers,
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        )
        return Answer(http.HTTPStatus.OK, headers, b"" if method == "HEAD" else body)

    def error(self, status: http.HTTPStatus) -> Answer:
        """A plain-text answer for ``status``, with the security headers like every other."""
        return self._error(status)

    def forbidden(self, reason: str) -> Answer:
        return self._error(http.HTTPStatus.FORBIDDEN, text=reason)

    def bad_request(self, reason: str) -> Answer:
        return self._error(http.HTTPStatus.BAD_REQUEST, text=reason)

    def _error(
        self, status: http.HTTPStatus, *extra: tuple[str, str], text: str | None = None
    ) -> Answer:
        body = f"{status.value} {text or status.phrase}\n".encode()
        headers = (
            *self._headers,
            *extra,
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        )
        return Answer(status, headers, body)


class Origins:
    """The server's own origins, ``https://NAME:PORT`` for each name in its certificate.

    A WebSocket handshake from any other origin (another site's page trying to use a
    colleague's session: cross-site WebSocket hijacking), or with none, is refused.
    Port 443 is also matched without the port, as browsers send it; IPv6 goes in brackets;
    a wildcard name (``*.office.lan``, from a company CA) matches one label, with the port
    as for any other name (``https://x.office.lan`` is another site unless the port is 443).
    """

    def __init__(self, names: Iterable[str], port: int) -> None:
        exact: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        suffix = "" if port == 443 else f":{port}"
        for name in names:
            host = _origin_host(name)
            if host.startswith("*."):
                label = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
                port_part = f"(:{port})?" if port == 443 else f":{port}"
                patterns.append(re.compile(rf"https://{label}{re.escape(host[1:])}{port_part}"))
                continue
            exact.add(f"https://{host}:{port}")
            exact.add(f"https://{host}{suffix}")
        self.exact = frozenset(exact)
        self._patterns = tuple(patterns)

    def allows(self, origin: str | None) -> bool:
        if origin is None:
            return False
        origin = origin.lower()
        return origin in self.exact or any(p.fullmatch(origin) for p in self._patterns)

    def websocket_sources(self) -> list[str]:
        """The wss:// origins to name in CSP connect-src (CSP has no syntax for IPv6 hosts)."""
        return sorted(o.replace("https://", "wss://", 1) for o in self.exact if "[" not in o)


def _origin_host(name: str) -> str:
    try:
        address = ipaddress.ip_address(name.strip())
    except ValueError:
        return name.strip().rstrip(".").lower()
    return f"[{address}]" if address.version == 6 else str(address)


def load_package_files(package: str = PACKAGE) -> dict[str, bytes]:
    """Every servable file directly in ``package``'s folder or its ``vendor/`` folder (the
    page's vendored libraries), by URL path, read now."""
    files: dict[str, bytes] = {}
    root = resources.files(package)
    for prefix, folder in (("/", root), ("/vendor/", root / "vendor")):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            suffix = name[name.rfind(".") :] if "." in name else ""
            if entry.is_file() and suffix in CONTENT_TYPES and not name.startswith("."):
                files[f"{prefix}{name}"] = entry.read_bytes()
    return files
