"""HTTP plumbing of the fake Dynamiq server: listeners, request parsing, faults and responses.

Each listener is a :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 with a role
(``app``, ``management`` or ``storage``). The request handler reads the whole request
and applies a matching fault. Without a fault, the role's dispatch function builds a
:class:`Response`. The handler then records the request and sends the response.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape as xml_escape

from airflow_provider_dynamiq.testing._model import Artifact, Fault, RecordedRequest

if TYPE_CHECKING:
    from airflow_provider_dynamiq.testing._state import FakeState

logger = logging.getLogger("airflow_provider_dynamiq.testing")

# Largest request body accepted, the documented limit of the Runs API upload endpoints.
MAX_REQUEST_BODY = 128 * 1024 * 1024
# Seconds between checks of serve_forever() for a shutdown request. stop_serving()
# wakes it at once, so this bounds only the wait if that wake-up fails.
_POLL_INTERVAL = 0.5

# Error codes of the JSON envelope by HTTP status. The reference documents only
# bad_request, unauthorized and not_found, so the others are chosen for the fake.
_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    411: "length_required",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

# S3-style error codes for the storage role, by the envelope code they replace.
_STORAGE_ERROR_CODES = {
    "bad_request": "InvalidRequest",
    "not_found": "NoSuchKey",
    "method_not_allowed": "MethodNotAllowed",
    "too_many_requests": "SlowDown",
    "service_unavailable": "ServiceUnavailable",
    "internal_error": "InternalError",
}


def error_code_for(status: int) -> str:
    """Return the envelope error code for an HTTP status."""
    return _ERROR_CODES.get(status, "error")


def reason_phrase(status: int) -> str:
    """Return the standard reason phrase of an HTTP status, or ``"Error"``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class HttpError(Exception):
    """An error response raised by a route handler.

    :param status: HTTP status code.
    :param message: human-readable message of the envelope.
    :param code: envelope code. Defaults to the code for ``status``.
    :param details: map of field name to message, sent as ``details``.
    :param headers: extra response headers.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or error_code_for(status)
        self.message = message or reason_phrase(status)
        self.details = details
        self.headers = headers or {}
        super().__init__(f"{status} {self.code}: {self.message}")


@dataclasses.dataclass
class Response:
    """A response to send. ``artifact`` streams an artifact's content in place of ``body``."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    artifact: Artifact | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """Build a JSON response."""
        body = json.dumps(payload).encode()
        return cls(status, body, "application/json", dict(headers or {}))

    @classmethod
    def html(cls, status: int, page: str) -> Response:
        """Build an HTML response."""
        return cls(status, page.encode(), "text/html; charset=utf-8")

    @classmethod
    def error_envelope(
        cls,
        status: int,
        code: str,
        message: str,
        details: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Build a JSON error response: ``{"error": {"code", "message", "details"?}}``."""
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["details"] = details
        return cls.json(status, {"error": error}, headers)

    @classmethod
    def storage_error(cls, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """Build an XML error response like the ones object stores send."""
        storage_code = _STORAGE_ERROR_CODES.get(code, code)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{xml_escape(storage_code)}</Code><Message>{xml_escape(message)}</Message></Error>\n"
        )
        return cls(status, body.encode(), "application/xml", dict(headers or {}))

    @property
    def content_length(self) -> int:
        """Number of body bytes announced in ``Content-Length``."""
        return self.artifact.size if self.artifact is not None else len(self.body)


@dataclasses.dataclass
class Request:
    """A fully read request, as route handlers see it."""

    role: str
    app_id: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def query_value(self, name: str) -> str | None:
        """Return the first value of a query parameter, or None when it is absent."""
        values = self.query.get(name)
        return values[0] if values else None

    def bearer_token(self) -> str | None:
        """Return the credential of an ``Authorization: Bearer`` header, or None."""
        header = self.headers.get("authorization")
        if header is None:
            return None
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        return credential

    def json_object(self) -> dict[str, Any]:
        """Parse the body as a JSON object.

        :raises HttpError: 400 with ``details.body`` when the body is empty, invalid JSON
            or not an object.
        """
        if not self.body.strip():
            raise HttpError(400, details={"body": "must be a JSON object"})
        try:
            payload = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HttpError(400, details={"body": "is not valid JSON"}) from None
        if not isinstance(payload, dict):
            raise HttpError(400, details={"body": "must be a JSON object"})
        return payload

    def to_record(self, status: int | None) -> RecordedRequest:
        """Return the recorded form of this request with the status it got."""
        return RecordedRequest(
            role=self.role,
            app_id=self.app_id,
            method=self.method,
            path=self.path,
            query={name: list(values) for name, values in self.query.items()},
            headers=dict(self.headers),
            body=self.body,
            status=status,
        )


RouteHandler = Callable[[Request, "re.Match[str]"], Response]


class Router:
    """Map (method, path pattern) to handlers and resolve 404 and 405 the usual way."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []

    def add(self, method: str, pattern: str, handler: RouteHandler) -> None:
        """Register ``handler`` for ``method`` on paths that fully match ``pattern``."""
        self._routes.append((method, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> tuple[RouteHandler, re.Match[str]]:
        """Return the handler and path match for a request.

        :raises HttpError: 404 when no pattern matches the path, 405 with ``Allow``
            when patterns match but none for this method.
        """
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, match
            allowed.append(route_method)
        if allowed:
            raise HttpError(
                405,
                f"method {method} is not allowed on {path}",
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise HttpError(404, f"no route for {path}")


Dispatcher = Callable[[Request], Response]


class Listener(ThreadingHTTPServer):
    """One role of the fake on its own 127.0.0.1 port.

    Handler threads are daemons, but the listener tracks them and their sockets so that
    :meth:`close_connections` can end open keep-alive connections and join the threads.
    """

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, *, role: str, app_id: str | None, state: FakeState, dispatch: Dispatcher) -> None:
        self.role = role
        self.app_id = app_id
        self.state = state
        self.dispatch = dispatch
        self._active: dict[threading.Thread, socket.socket] = {}
        self._active_lock = threading.Lock()
        self._serve_thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host name with socket.getfqdn(), a reverse
        # DNS lookup that the fake must not make.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def port(self) -> int:
        """TCP port the listener is bound to."""
        return self.server_port

    @property
    def url(self) -> str:
        """Base URL of the listener, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve requests in a daemon thread."""
        name = f"fake-dynamiq-{self.role}-{self.port}"
        self._serve_thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": _POLL_INTERVAL}, name=name, daemon=True
        )
        self._serve_thread.start()
        logger.debug("started %s listener on %s", self.role, self.url)

    def stop_serving(self) -> None:
        """Stop accepting connections and end the serve_forever() thread."""
        if self._serve_thread is not None:
            # shutdown() alone waits for the next poll of serve_forever(). Shutting down
            # the listening socket first makes the poll return at once. The failed
            # accept() that follows is ignored by socketserver.
            try:
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.shutdown()
            self._serve_thread.join()
        self.server_close()

    def close_connections(self, timeout: float) -> list[threading.Thread]:
        """Shut down open connections, join their threads and return those still alive."""
        with self._active_lock:
            active = dict(self._active)
        for connection in active.values():
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in active:
            thread.join(timeout)
        return [thread for thread in active if thread.is_alive()]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-dynamiq-{self.role}-connection",
            daemon=True,
        )
        with self._active_lock:
            self._active[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints these tracebacks to stderr. They are almost always a client
        # that went away, so they go to the debug log instead.
        logger.debug("%s listener: connection error", self.role, exc_info=True)


class RequestHandler(BaseHTTPRequestHandler):
    """Read a request, apply faults, dispatch it, record it and send the response."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeDynamiq/1.0"
    # Headers and body go out in two writes. Without TCP_NODELAY the body waits for the
    # client's delayed ACK of the headers, about 40 ms per response on Linux.
    disable_nagle_algorithm = True
    server: Listener

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - name fixed by the base class
        # The base class writes every request line to stderr, query string included, and
        # query strings carry connect tokens and URL signatures. Requests are logged in
        # _handle() without the query string instead.
        return

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

    def _handle(self) -> None:
        listener = self.server
        state = listener.state
        split = urlsplit(self.path)
        path = split.path or "/"
        headers = self._header_dict()

        try:
            body = self._read_body(headers)
        except HttpError as error:
            # The rest of the body may still be unread, so the connection cannot be reused.
            self.close_connection = True
            request = Request(listener.role, listener.app_id, self.command, path, {}, headers, b"")
            response = self._error_response(error)
            state.record(request.to_record(response.status))
            self._send(response, truncate=False)
            return

        query = parse_qs(split.query, keep_blank_values=True)
        request = Request(listener.role, listener.app_id, self.command, path, query, headers, body)
        # Test-control routes neither consume faults nor appear in the recorded requests.
        is_control = listener.role == "management" and path.startswith("/_fake/")

        fault = None if is_control else state.take_fault(listener.role, self.command, path)
        response: Response | None = None
        truncate = False
        if fault is not None:
            if fault.delay > 0:
                state.stopping.wait(fault.delay)
            if fault.reset:
                state.record(request.to_record(None))
                logger.debug("%s %s %s -> connection reset by fault", listener.role, self.command, path)
                self._reset_connection()
                return
            truncate = fault.truncate
            if fault.status is not None:
                response = self._fault_response(fault)

        if response is None:
            response = self._dispatch(request)

        if not is_control:
            # Recorded before sending, so a client that has received its response can
            # already find the record.
            state.record(request.to_record(response.status))
        logger.debug("%s %s %s -> %d", listener.role, self.command, path, response.status)
        self._send(response, truncate=truncate)

    def _header_dict(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked_body()
        length_header = headers.get("content-length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise HttpError(400, f"invalid Content-Length {length_header!r}") from None
        if length < 0:
            raise HttpError(400, f"invalid Content-Length {length_header!r}")
        if length > MAX_REQUEST_BODY:
            raise HttpError(413, f"request body of {length} bytes exceeds the limit of {MAX_REQUEST_BODY} bytes")
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        chunks = bytearray()
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "invalid chunk size in a chunked request body") from None
            if size == 0:
                # Skip optional trailers up to the empty line that ends the body.
                while self.rfile.readline(8192).strip():
                    pass
                return bytes(chunks)
            if len(chunks) + size > MAX_REQUEST_BODY:
                raise HttpError(413, f"request body exceeds the limit of {MAX_REQUEST_BODY} bytes")
            chunks += self.rfile.read(size)
            self.rfile.readline(8)

    def _dispatch(self, request: Request) -> Response:
        try:
            return self.server.dispatch(request)
        except HttpError as error:
            # Error messages carry ids and paths but never credentials or query strings.
            logger.debug("%s %s %s rejected: %s", self.server.role, request.method, request.path, error)
            return self._error_response(error)
        except Exception:
            logger.exception(
                "%s listener: internal error on %s %s", self.server.role, request.method, request.path
            )
            return self._error_response(HttpError(500, "internal error in the fake Dynamiq server"))

    def _error_response(self, error: HttpError) -> Response:
        if self.server.role == "storage":
            return Response.storage_error(error.status, error.code, error.message, error.headers)
        return Response.error_envelope(error.status, error.code, error.message, error.details, error.headers)

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            content_type = fault.content_type or "text/plain; charset=utf-8"
            return Response(fault.status, fault.body.encode(), content_type, headers)
        message = f"{reason_phrase(fault.status)} (injected fault)"
        response = self._error_response(HttpError(fault.status, message, headers=headers))
        if fault.content_type is not None:
            response.content_type = fault.content_type
        return response

    def _send(self, response: Response, *, truncate: bool) -> None:
        length = response.content_length
        try:
            self.send_response(response.status)
            if response.content_type is not None:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return

            # A truncating fault announces the full length and sends half of it.
            limit = length // 2 if truncate else length
            if response.artifact is None:
                self.wfile.write(response.body[:limit])
            else:
                self._stream_artifact(response.artifact, limit)
        except OSError as error:
            # The client went away mid-response, for example after its own timeout.
            logger.debug("%s listener: sending the response failed: %s", self.server.role, error)
            self.close_connection = True
        if truncate:
            self.close_connection = True

    def _stream_artifact(self, artifact: Artifact, limit: int) -> None:
        sent = 0
        for chunk in artifact.iter_chunks():
            if sent >= limit:
                return
            if sent + len(chunk) > limit:
                chunk = chunk[: limit - sent]
            self.wfile.write(chunk)
            sent += len(chunk)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN, so the
        # client sees "connection reset by peer" and no response.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile, made by socket.makefile(), holds a reference to the socket, so the socket
        # closes for real, and sends the RST, only once both are closed.
        self.rfile.close()
        self.connection.close()


# Page size when a list request has no page_size, and the largest accepted; larger
# values are clamped. The reference documents neither (its examples use 25 and 20).
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


def parse_pagination(request: Request) -> tuple[int, int]:
    """Return the 1-based ``page`` and the clamped ``page_size`` of a list request.

    :raises HttpError: 400 with ``details`` when either is not an integer >= 1.
    """
    details: dict[str, str] = {}
    values: dict[str, int] = {}
    for name, default in (("page", 1), ("page_size", DEFAULT_PAGE_SIZE)):
        text = request.query_value(name)
        if text is None:
            values[name] = default
            continue
        value = int(text) if re.fullmatch(r"[0-9]{1,9}", text) else 0
        if value < 1:
            details[name] = "must be an integer >= 1"
        values[name] = value
    if details:
        raise HttpError(400, details=details)
    return values["page"], min(values["page_size"], MAX_PAGE_SIZE)


def paginate(items: list[Any], page: int, page_size: int) -> tuple[list[Any], dict[str, int]]:
    """Return one page of ``items`` and its ``pagination`` object.

    A page past the end is empty. ``page_count`` is 0 when there are no items.
    """
    total_count = len(items)
    page_count = -(-total_count // page_size)
    start = (page - 1) * page_size
    pagination = {"page": page, "page_size": page_size, "page_count": page_count, "total_count": total_count}
    return items[start : start + page_size], pagination


def make_dispatcher(router: Router) -> Dispatcher:
    """Return a dispatch function that resolves a request with ``router`` and calls the handler."""

    def dispatch(request: Request) -> Response:
        handler, match = router.resolve(request.method, request.path)
        return handler(request, match)

    return dispatch
