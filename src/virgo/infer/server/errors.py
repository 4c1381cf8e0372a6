"""Every error in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``), and the guard in front of
the app: the API key, then the body limit.

The guard is a plain ASGI middleware rather than FastAPI's ``max_body_size`` or a dependency: the key must be
checked before the body is even read (a 401, not a 400 about the body), and Starlette's body limit answers in
plain text on some paths, which OpenAI clients cannot read. It reads the body once, up to the limit, and replays
it to the app; after that the app's ``receive`` reports the client's disconnect, which is how an abandoned request
is noticed (`virgo.infer.server.app`).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
         429: "rate_limit_error", 503: "server_error", 504: "timeout_error"}
# The OpenAI SDK retries 408, 409, 429 and 5xx twice by default; where a retry cannot help (the same request
# would time out again) the header tells it not to.
NO_RETRY = {"x-should-retry": "false"}


class APIError(Exception):
    """A request answered with ``status`` and an OpenAI error body."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind or KINDS.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# -- validation errors as one readable line ---------------------------------------------------------------------

_UNION_TAG = re.compile(r"^[a-z_-]+\[.*\]$|^(str|int|float|bool|list|dict|none)$")


def _where(loc: Sequence[Any]) -> str:
    """('body', 'messages', 0, 'content', 'str') -> 'messages[0].content' (pydantic's union tags dropped)."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_TAG.match(str(part)):
            out += ("." if out else "") + str(part)
    return out


def _explain(errors: Sequence[dict[str, Any]]) -> APIError:
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        pos = first["loc"][1] if len(first.get("loc", ())) > 1 else "?"
        return APIError(400, f"the request body is not valid JSON: {detail} (at character {pos})",
                        code="invalid_json")
    if tuple(first.get("loc", ())) == ("body",):
        if first.get("type") == "missing":
            return APIError(400, "the request body is empty: send a JSON object", code="invalid_json")
        return APIError(400, "the request body must be a JSON object, sent with Content-Type: application/json",
                        code="invalid_json")
    by_place: dict[str, list[str]] = {}
    for e in errors:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        by_place.setdefault(_where(e.get("loc", ())), []).append(msg)
    place, msgs = next(iter(by_place.items()))
    text = " or ".join(dict.fromkeys(msgs))
    more = f" (and {len(by_place) - 1} more problem(s))" if len(by_place) > 1 else ""
    return APIError(400, f"{place}: {text}{more}" if place else text + more, param=place or None)


def _parse_failure(cause: BaseException | None) -> APIError:
    """FastAPI's "error parsing the body" (anything but a JSON syntax error) with its cause named."""
    if isinstance(cause, RecursionError):
        why = "it is nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        why = "it is not valid UTF-8"
    elif isinstance(cause, ValueError) and "digits" in str(cause):
        why = "it has an integer with too many digits"
    else:
        why = type(cause).__name__ if cause is not None else "unknown error"
    return APIError(400, f"the request body could not be parsed as JSON: {why}", code="invalid_json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError) -> JSONResponse:
        return e.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return _explain(list(e.errors())).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        if e.status_code == 400 and e.__cause__ is not None:
            return _parse_failure(e.__cause__).response()
        return APIError(e.status_code, str(e.detail), headers=getattr(e, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> JSONResponse:
        return APIError(500, f"internal server error ({type(e).__name__}); see the server log").response()


# -- the guard --------------------------------------------------------------------------------------------------

class Guard:
    """ASGI middleware: 401 without the API key (paths under /v1/), 413 for a body over ``max_body_bytes``."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    def _authorized(self, scope: dict[str, Any]) -> bool:
        if self.key is None or not scope["path"].startswith("/v1/"):
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        given = header[7:] if header[:7].lower() == b"bearer " else b""
        return hmac.compare_digest(given, self.key)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self._authorized(scope):
            error = APIError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')",
                             code="invalid_api_key")
            return await error.response()(scope, receive, send)
        too_big = APIError(413, f"the request body is larger than the server's limit of {self.max_body_bytes} "
                                "bytes", code="request_too_large")
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return await too_big.response()(scope, receive, send)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # gone before the body arrived: nothing to answer
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                return await too_big.response()(scope, receive, send)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: waits for the client's disconnect

        await self.app(scope, replay, send)
        return None

