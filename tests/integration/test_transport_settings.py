"""TLS verification and proxies from the environment, over real sockets on loopback."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import trustme

from airflow_provider_dynamiq.exceptions import DynamiqTransportError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.testing import EXAMPLE_USER_ID

from support import FAST_RETRIES, set_connection

COMPLETE = json.dumps({"status": "complete", "unsatisfied": []}).encode()


class _StatusHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server hook name)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(COMPLETE)))
        self.end_headers()
        self.wfile.write(COMPLETE)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_app():
    """An HTTPS App host on 127.0.0.1 whose certificate no default trust store accepts."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_untrusted_certificate_fails_at_once(monkeypatch, https_app):
    set_connection(monkeypatch, "dynamiq_default", {"conn_type": "dynamiq", "host": https_app, "password": "k"})
    waits = []
    with DynamiqHook(retry_policy=FAST_RETRIES) as hook:
        hook._sleep = waits.append
        with pytest.raises(DynamiqTransportError, match="TLS handshake") as raised:
            hook.get_requirements_status(EXAMPLE_USER_ID)
    assert "certificate" in str(raised.value).lower()
    assert "verify_ssl" in str(raised.value)
    assert waits == []  # not retried


def test_https_to_plain_http_names_the_scheme(monkeypatch, fake_server):
    host = fake_server.app_url().removeprefix("http://")  # no scheme: https:// is assumed
    set_connection(monkeypatch, "dynamiq_default", {"conn_type": "dynamiq", "host": host, "password": "k"})
    waits = []
    with DynamiqHook(retry_policy=FAST_RETRIES) as hook:
        hook._sleep = waits.append
        with pytest.raises(DynamiqTransportError, match="scheme of the host"):
            hook.get_requirements_status(EXAMPLE_USER_ID)
    assert waits == []


def test_verify_ssl_false_is_honoured(monkeypatch, https_app):
    set_connection(
        monkeypatch,
        "dynamiq_default",
        {"conn_type": "dynamiq", "host": https_app, "password": "k", "extra": {"verify_ssl": "false"}},
    )
    with DynamiqHook(retry_policy=FAST_RETRIES) as hook:
        assert hook.get_requirements_status(EXAMPLE_USER_ID).is_complete


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: takes absolute-form requests and relays them."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        self._relay()

    def do_POST(self):  # noqa: N802
        self._relay()

    def _relay(self):
        target = urlsplit(self.path)
        type(self).seen.append(f"{self.command} {target.path}")
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body=body, headers=headers)
        answer = upstream.getresponse()
        content = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        upstream.close()

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy():
    _ForwardingProxy.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _ForwardingProxy.seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_proxy_from_environment(monkeypatch, dynamiq_conn, fake_server, proxy):
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with DynamiqHook(retry_policy=FAST_RETRIES) as hook:
        assert not hook.get_requirements_status(EXAMPLE_USER_ID).is_complete
    assert seen == ["GET /v1/requirements/status"]


def test_no_proxy_bypasses_proxy(monkeypatch, dynamiq_conn, fake_server, proxy):
    proxy_url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with DynamiqHook(retry_policy=FAST_RETRIES) as hook:
        hook.get_requirements_status(EXAMPLE_USER_ID)
    assert seen == []
