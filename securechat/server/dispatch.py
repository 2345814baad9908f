"""Answering one request after login, whatever the transport (TLS frames or WebSocket).

Both connection kinds call :func:`answer_request` so that rate limiting and the mapping
of refusals to ``error`` events stay in one place.
"""

from __future__ import annotations

import logging
import time

from securechat.errors import ErrorCode, RateLimited, RequestError, SecureChatError
from securechat.protocol.messages import Error, Event, Request
from securechat.server.ratelimit import TokenBucket
from securechat.server.service import ChatService, Session

log = logging.getLogger("securechat.server")


def answer_request(
    service: ChatService, session: Session, bucket: TokenBucket, request: Request, *, who: str
) -> list[Event]:
    """The events that answer ``request``: its replies, or one ``error``.

    ``who`` names the connection in the log when the server itself failed.
    """
    ref = getattr(request, "ref", None)
    wait = bucket.take(time.monotonic())
    if wait:
        return [Error(
            code=ErrorCode.RATE_LIMITED, message="too many requests; slow down",
            ref=ref, retry_after=round(wait, 3),
        )]  # fmt: skip
    try:
        return service.handle(session, request)
    except RequestError as exc:
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        return [Error(code=exc.code, message=exc.message, ref=ref, retry_after=retry)]
    except SecureChatError as exc:
        log.error("request from %s failed: %s", who, exc.message)
        return [Error(code=ErrorCode.SERVER_ERROR, message=exc.message, ref=ref)]
