"""Who may talk to the server, checked before any route runs (a plain ASGI middleware, so it also
covers unknown paths):

- bound to a loopback address, only loopback names are accepted in the Host header: a web page on
  another origin can point its own DNS name at 127.0.0.1 (DNS rebinding), and the browser then
  sends that name as Host, so refusing it keeps such pages away from the server;
- with an API key configured, every request but GET /health must carry it as a bearer token,
  compared in constant time.
"""
from __future__ import annotations

import hmac
import ipaddress
import json

OPEN_PATHS = {"/health"}      # liveness probes carry no credentials


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1', 'localhost' -> 'localhost'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _refuse(send, status: int, message: str, code: str, extra_headers=()) -> None:
    kind = "authentication_error" if status == 401 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, *, loopback_only: bool, api_key: str | None):
        self.app = app
        self.loopback_only = loopback_only
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.loopback_only:
            host = headers.get(b"host", b"").decode("latin-1")
            if host and not is_loopback(_host_name(host)):
                return await _refuse(send, 400, "this server listens on a loopback address and accepts only "
                                     "loopback Host names (localhost, 127.0.0.1, ::1)", "invalid_host")
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS:
            auth = headers.get(b"authorization", b"")
            scheme, _, token = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                return await _refuse(send, 401, "a valid API key is required (header 'Authorization: Bearer KEY')",
                                     "invalid_api_key", [(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)
