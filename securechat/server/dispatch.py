"""Answering one request after login, whatever the transport (TLS frames or WebSocket).

Both connection kinds call :func:`answer_request` so that the mapping of refusals to
``error`` events stays in one place. Metering happens before: every frame (or WebSocket
message) is charged to the connection's token bucket before it is even decoded.
"""

from __future__ import annotations

import logging

from securechat.errors import ErrorCode, RateLimited, RequestError, SecureChatError
from securechat.protocol.messages import Error, Event, Request
from securechat.server.service import ChatService, Session

log = logging.getLogger("securechat.server")


def answer_request(
    service: ChatService, session: Session, request: Request, *, who: str
) -> list[Event]:
    """The events that answer ``request``: its replies, or one ``error``.

    ``who`` names the connection in the log when the server itself failed.
    """
    ref = getattr(request, "ref", None)
    try:
        return service.handle(session, request)
    except RequestError as exc:
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        return [Error(code=exc.code, message=exc.message, ref=ref, retry_after=retry)]
    except SecureChatError as exc:
        log.error("request from %s failed: %s", who, exc.message)
        return [Error(code=ErrorCode.SERVER_ERROR, message=exc.message, ref=ref)]
