"""Whole requests before a thread: the Flask (WSGI) app behind gunicorn's asyncio (ASGI) worker.

Why: with sync or gthread workers a client that sends its request one byte at a time holds a worker
(or a thread) until it is done, so a few slow connections starve every EHR. Here the event loop reads
each request (headers by gunicorn's ASGI protocol, the body by `BufferedWSGI`) while it costs only a
coroutine; the app runs in a small thread pool only once the whole body is in memory.

Limits while reading: a body larger than `max_body` bytes is answered 413 as soon as it passes the
limit, declared (Content-Length) or not (chunked); a body not complete within `body_timeout` seconds
is answered 408. Neither reaches the app.
"""
from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_to_bytes

import orjson

from .errors import PayloadTooLarge, RequestTimeout


class BufferedWSGI:
    """An ASGI application that buffers each HTTP request and hands it to a WSGI app in a thread."""

    def __init__(self, wsgi_app, *, max_body: int, body_timeout: float = 30.0, threads: int = 4):
        self.app = wsgi_app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _error(send, 413, f"the request body is larger than {self.max_body} bytes")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), timeout=self.body_timeout)
        except asyncio.TimeoutError:
            await _error(send, 408, f"the request body was not complete after {self.body_timeout:g} s")
            return
        except _TooLarge:
            await _error(send, 413, f"the request body is larger than {self.max_body} bytes")
            return
        except _Disconnected:
            return
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self.pool, self._run_wsgi, scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    async def _read_body(self, receive) -> bytes:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            body += message.get("body", b"")
            if len(body) > self.max_body:
                raise _TooLarge()
            if not message.get("more_body", False):
                return bytes(body)

    def _run_wsgi(self, scope, body: bytes):
        environ = _environ(scope, body)
        started: dict = {}

        def start_response(status, headers, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            chunks.extend(bytes(c) for c in result if c)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        return started["status"], started["headers"], chunks


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _path_info(scope) -> str:
    """PEP 3333: the path's bytes, percent-decoded, as a latin-1 str (any byte sequence survives the
    round trip; the ASGI `path` is UTF-8 decoded and may hold characters latin-1 cannot carry)."""
    raw = scope.get("raw_path")
    if raw is None:
        raw = scope["path"].encode("utf-8", "surrogateescape")
    return unquote_to_bytes(raw.split(b"?", 1)[0]).decode("latin-1")


def _environ(scope, body: bytes) -> dict:
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": _path_info(scope),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "80",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for key, value in scope.get("headers") or ():
        name = key.decode("latin-1").upper().replace("-", "_")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue   # the body is whole now: its length is what we hand over
        text = value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
            continue
        http_name = f"HTTP_{name}"
        environ[http_name] = f"{environ[http_name]},{text}" if http_name in environ else text
    return environ


async def _error(send, status: int, message: str) -> None:
    # The same OperationOutcome every other error of the service is (errors.py): too-costly for 413, timeout for 408.
    error = PayloadTooLarge(message, field="$") if status == 413 else RequestTimeout(message, field="$")
    body = orjson.dumps(error.to_json())
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

