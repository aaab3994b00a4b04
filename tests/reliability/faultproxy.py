"""A loopback HTTP reverse proxy that injects faults, in front of one emulator or OpenBao.

Connectors are pointed at the proxy the way they are pointed at any endpoint (``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST``, the Azure connection string's ``BlobEndpoint``, ``VAULT_ADDR``). Each
request is, with probability ``rate`` (decided by a ``random.Random(seed)``; the seed is
printed), answered by a fault instead of (or after) being forwarded:

- ``error``: a 5xx with the service's own error body (S3 ``InternalError`` XML, GCS JSON error,
  Azure ``InternalError`` with ``x-ms-error-code``, Vault ``{"errors": [...]}``);
- ``throttle``: S3 ``503 SlowDown`` (XML body), GCS ``429 rateLimitExceeded``, Azure ``503
  ServerBusy``, Vault ``429``;
- ``drop``: the connection is closed without an answer, before the request is forwarded;
- ``lost``: the request is forwarded (the server acts on it) and the connection is closed
  before the answer reaches the client: the client must retry safely;
- ``slow``: the answer is delayed by ``slow_seconds``.

Faults are transient: one request (same method and path with query) is faulted at most
``MAX_IN_A_ROW`` times in a row; its next attempt goes through. Every client here retries at
least four times, so a seed that happened to fault one request five times over (as one did:
the 10% draw and the guaranteed kinds landing on one upload's retries) no longer fails a run
for a reason no real outage resembles; a guaranteed kind that meets the cap moves to the next
request.

``rules`` answer chosen requests deterministically (a permanent 403 on every delete: the rule
returns an :class:`Answer`; or ``"lost"`` / ``"drop"`` for that fault on that request), and every
request is logged (method, path, query, status, fault) in ``log``. Nothing here knows a
connector: it speaks HTTP/1.1 with keep-alive, ``Expect: 100-continue`` and chunked bodies.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Flavour = Literal["s3", "gcs", "azure", "vault"]
KINDS = ("error", "throttle", "drop", "lost", "slow")
MAX_IN_A_ROW = 3  # faults of one request in a row; the next attempt goes through
HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> str:
        return urlsplit(self.path).query


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _error_answer(flavour: Flavour, kind: str) -> Answer:
    throttle = kind == "throttle"
    if flavour == "s3":
        code, status = ("SlowDown", 503) if throttle else ("InternalError", 500)
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>injected {code}</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        return Answer(status, body, {"Content-Type": "application/xml"})
    if flavour == "gcs":
        status, reason = (429, "rateLimitExceeded") if throttle else (503, "backendError")
        body = json.dumps(
            {"error": {"code": status, "message": f"injected {reason}",
                       "errors": [{"reason": reason, "message": "injected"}]}}
        ).encode()  # fmt: skip
        return Answer(status, body, {"Content-Type": "application/json"})
    if flavour == "azure":
        code, status = ("ServerBusy", 503) if throttle else ("InternalError", 500)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>injected {code}</Message></Error>"
        ).encode()
        return Answer(status, body, {"Content-Type": "application/xml", "x-ms-error-code": code})
    status = 429 if throttle else 503
    body = json.dumps({"errors": [f"injected {status}"]}).encode()
    return Answer(status, body, {"Content-Type": "application/json"})


class FaultProxy:
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        upstream: str,
        flavour: Flavour,
        *,
        rate: float = 0.1,
        seed: int | None = None,
        kinds: tuple[str, ...] = KINDS,
        slow_seconds: float = 0.3,
        name: str = "",
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.flavour = flavour
        self.rate = rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.kinds = kinds
        self.slow_seconds = slow_seconds
        self.name = name or flavour
        self.rules: list[Callable[[Request], Answer | str | None]] = []
        # request number (1-based) -> fault kind: each kind met at least once whatever the seed
        self.guaranteed: dict[int, str] = {}
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.log: list[tuple[str, str, int, str]] = []  # (method, path, status, fault)
        self.enabled = True
        self._random = random.Random(self.seed)
        self._in_a_row: dict[tuple[str, str], int] = {}  # faults of one request, consecutive
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        print(
            f"fault proxy {self.name} -> {self.upstream.netloc}: seed {self.seed}, "
            f"rate {self.rate}, kinds {','.join(self.kinds)}"
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.injected.items())) or "none"
        return (
            f"{self.name}: seed {self.seed}, {self.requests} requests, "
            f"{sum(self.injected.values())} faults injected ({faults})"
        )

    # -- decisions

    def _decide(self, request: Request) -> tuple[str | None, Answer | None]:
        with self._lock:
            self.requests += 1
            for rule in self.rules:
                answer = rule(request)
                if isinstance(answer, str):
                    self.injected[f"rule {answer}"] += 1
                    return answer, None
                if answer is not None:
                    self.injected["rule"] += 1
                    return "rule", answer
            if not self.enabled:
                return None, None
            draw = self._random.random()
            same = (request.method, request.path)
            if self._in_a_row.get(same, 0) >= MAX_IN_A_ROW:  # transient: this attempt passes
                self._in_a_row.pop(same)
                if self.requests in self.guaranteed:
                    self.guaranteed[self.requests + 1] = self.guaranteed.pop(self.requests)
                return None, None
            if self.requests in self.guaranteed:
                kind = self.guaranteed[self.requests]
            elif draw >= self.rate:
                self._in_a_row.pop(same, None)
                return None, None
            else:
                kind = self._random.choice(self.kinds)
            self._in_a_row[same] = self._in_a_row.get(same, 0) + 1
            self.injected[kind] += 1
        if kind in ("error", "throttle"):
            return kind, _error_answer(self.flavour, kind)
        return kind, None

    def _rewrite(self, data: bytes, own: str) -> bytes:
        """Upstream URLs in answers (resumable-upload sessions, links) point back at us."""
        up = f"{self.upstream.scheme}://{self.upstream.netloc}".encode()
        return data.replace(up, own.encode())


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, answer: Answer, *, head: bool, length: str | None = None) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", length if head and length else str(len(answer.body)))
        self.end_headers()
        if not head and answer.body:
            self.wfile.write(answer.body)

    def _handle(self) -> None:
        proxy = self.owner
        body = self._read_body()
        request = Request(self.command, self.path, dict(self.headers.items()), body)
        fault, answer = proxy._decide(request)
        head = self.command == "HEAD"
        if fault == "drop":
            proxy.log.append((self.command, self.path, 0, fault))
            return self._drop()
        if answer is not None:
            proxy.log.append((self.command, self.path, answer.status, fault or ""))
            return self._send(answer, head=head)
        if fault == "slow":
            time.sleep(proxy.slow_seconds)
        up = proxy.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            got = Answer(response.status, proxy._rewrite(data, proxy.url), {})
            for name, value in response.getheaders():
                if name.lower() == "location":
                    value = proxy._rewrite(value.encode(), proxy.url).decode()
                got.headers[name] = value
            length = response.getheader("Content-Length")
        except OSError as exc:
            got, length = Answer(502, f"proxy: upstream failed: {exc}".encode()), None
        finally:
            conn.close()
        if fault == "lost":
            proxy.log.append((self.command, self.path, got.status, fault))
            return self._drop()
        proxy.log.append((self.command, self.path, got.status, fault or ""))
        self._send(got, head=head, length=length)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle
    do_LIST = _handle  # Vault's LIST verb
