"""HTTP to a team server (llama-server, vLLM, SGLang, Ollama): where to send, how, and what went wrong.

Only the endpoint's own host is ever contacted, and the API key (`GHOSTFRAME_API_KEY`) goes only
there, in one header: no redirect is followed, and neither the key nor a request's text is logged.
`http` is refused for any host but this machine unless the user allows it. Every failure ends in a
`RemoteError` whose `state` is what the status shows ("remote: unreachable" ...), so the engine
answers empty at once instead of hanging. A stream is closed as soon as its request is cancelled
(a newer keystroke): llama-server then stops generating and frees the slot.

The standard library only (http.client): httpx is not installed, and one connection kept alive per
engine (its one worker thread) is all a typist needs.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger("ghostframe.remote")

API_KEY_VARIABLE = "GHOSTFRAME_API_KEY"  # the extension passes VS Code's secret storage through it
ENDPOINT_APIS = ("llama-server", "openai", "ollama")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

OK = "remote: ok"
UNREACHABLE = "remote: unreachable"
AT_CAPACITY = "remote: at capacity"
BAD_ANSWER = "remote: bad answer"
UNAUTHORIZED = "remote: unauthorized"
TIMED_OUT = "remote: timed out"

CANCEL_POLL_SECONDS = 0.02  # how soon a cancelled request's stream is closed


class EndpointError(ValueError):
    """An endpoint that must not be used as given (the message says why and what to set)."""


class RemoteError(Exception):
    """A request that got no usable answer; `state` is what the status shows."""

    def __init__(self, state: str, detail: str):
        super().__init__(f"{state}: {detail}")
        self.state, self.detail = state, detail


@dataclass(frozen=True)
class Endpoint:
    """Where a team server listens and how to talk to it."""

    url: str
    api: str = "llama-server"          # llama-server: /completion; openai: /v1/completions; ollama: /api/generate
    model: str = ""                    # the `model` an OpenAI-compatible server or Ollama is asked for
    ca_file: str = ""                  # verify https with this CA bundle (else the system's)
    allow_insecure_http: bool = False  # http to a host other than this machine
    api_key: str = field(default="", repr=False, compare=False)
    connect_timeout: float = 3.0
    read_timeout: float = 10.0         # seconds without a byte from the server: "remote: timed out"
    retries: int = 2                   # more tries after a refused or reset connection

    @classmethod
    def from_settings(cls, url: str, api: str = "llama-server", model: str = "", ca_file: str = "",
                      allow_insecure_http: bool = False) -> Endpoint:
        """An endpoint with the API key from the environment, after `check`."""
        endpoint = cls(url.strip().rstrip("/"), (api or "llama-server").lower(), model, ca_file, allow_insecure_http,
                       api_key=os.environ.get(API_KEY_VARIABLE, ""))
        endpoint.check()
        return endpoint

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def check(self) -> None:
        """Refuse what would leak the prompt or the key: a scheme other than http(s), plain http to
        another machine (unless allowed), a CA file that does not exist, an unknown API."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointError(f"endpoint {self.url!r} is not an http(s) URL such as http://127.0.0.1:8012")
        if parts.username or parts.password:
            raise EndpointError("put the endpoint's API key in GHOSTFRAME_API_KEY (or the extension's "
                                "'ghostframe: Set API key'), not in the URL")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS and not self.allow_insecure_http:
            raise EndpointError(f"endpoint {self.url!r} is plain http to another machine: the prompt (your code) "
                                "and the API key would cross the network unencrypted. Use https, or set "
                                "ghostframe.allowInsecureHttp (--allow-insecure-http) on a network you trust.")
        if self.api not in ENDPOINT_APIS:
            raise EndpointError(f"endpoint API {self.api!r}: use one of {', '.join(ENDPOINT_APIS)}")
        if self.ca_file and not os.path.isfile(os.path.expanduser(self.ca_file)):
            raise EndpointError(f"CA file {self.ca_file} does not exist")


class RemoteClient:
    """Requests to one endpoint; one idle connection is kept for the next request."""

    def __init__(self, endpoint: Endpoint):
        endpoint.check()
        self.endpoint = endpoint
        parts = urlsplit(endpoint.url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._context = (ssl.create_default_context(cafile=os.path.expanduser(endpoint.ca_file) or None)
                         if self._https else None)
        self._idle: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # --- one request ---------------------------------------------------------------------

    def get_json(self, path: str, cancel: threading.Event | None = None) -> object:
        return self._json(*self._send("GET", path, None, cancel or threading.Event()))

    def post_json(self, path: str, body: dict, cancel: threading.Event | None = None) -> object:
        return self._json(*self._send("POST", path, body, cancel or threading.Event()))

    def stream(self, path: str, body: dict, cancel: threading.Event) -> Iterator[dict]:
        """The server-sent events of a streamed answer, as dicts, until `[DONE]` or the stream's end. The
        connection is shut as soon as `cancel` is set (then the iteration just ends), and when the
        caller stops iterating early."""
        connection, response, watch = self._send("POST", path, body, cancel)
        finished = events = 0
        try:
            while not cancel.is_set():  # events already received are not handed out after a cancel
                try:
                    line = response.readline()
                except (TimeoutError, socket.timeout):
                    raise RemoteError(TIMED_OUT, f"no answer within {self.endpoint.read_timeout:g} s") from None
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if cancel.is_set():
                        return
                    raise RemoteError(UNREACHABLE, f"the stream broke: {type(exc).__name__}") from None
                if not line:
                    if cancel.is_set():
                        return
                    if not events:
                        raise RemoteError(BAD_ANSWER, "an empty answer (not a stream of events)")
                    finished = 1  # a server that ends the stream without [DONE] (llama-server's /completion)
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text or text.startswith(":"):
                    continue  # keep-alive and comments
                if text.startswith("error"):
                    raise RemoteError(_state_of_error(text), text[:200])
                if text.startswith("{"):
                    data = text  # JSON lines (Ollama's /api/generate)
                elif text.startswith("data:"):
                    data = text[5:].strip()
                else:
                    raise RemoteError(BAD_ANSWER, f"not a server-sent event: {text[:80]!r}")
                if data == "[DONE]":
                    finished = 1
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise RemoteError(BAD_ANSWER, f"not JSON: {data[:80]!r}") from None
                if not isinstance(event, dict):
                    raise RemoteError(BAD_ANSWER, f"not a JSON object: {data[:80]!r}")
                if "error" in event:
                    raise RemoteError(_state_of_error(json.dumps(event["error"])), str(event["error"])[:200])
                events += 1
                yield event
        finally:
            watch.set()
            if finished and not cancel.is_set() and self._drained(response):
                self._keep(connection)  # read to the end: the connection serves the next request
            else:
                connection.close()

    # --- what every request shares ---------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            return idle
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.endpoint.connect_timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.endpoint.connect_timeout)

    def _keep(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            old, self._idle = self._idle, connection
        if old is not None:
            old.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        return headers

    def _send(self, method: str, path: str, body: dict | None, cancel: threading.Event):
        """(connection, a 200 response, the event that ends its cancel watch): after retrying a refused
        or reset connection with back-off (never a cancelled request, nor a slow one); RemoteError with
        the state otherwise. From before the request goes out, a cancel shuts the connection: a request
        waiting for the server (queued behind busy slots, or prefilling) ends at once, and the server
        drops it."""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(self.endpoint.retries + 1):
            if cancel.is_set():
                raise RemoteError(OK, "cancelled")
            connection = self._connection()
            reused = connection.sock is not None
            watch = self._watch(connection, cancel)
            try:
                connection.request(method, self._prefix + path, body=payload, headers=self._headers())
                connection.sock.settimeout(self.endpoint.read_timeout)
                response = connection.getresponse()
            except (TimeoutError, socket.timeout):
                watch.set()
                connection.close()
                raise RemoteError(TIMED_OUT, f"no answer within {self.endpoint.read_timeout:g} s") from None
            except ssl.SSLError as exc:
                watch.set()
                connection.close()
                raise RemoteError(UNREACHABLE, f"TLS failed: {exc.reason or type(exc).__name__}") from None
            except (OSError, http.client.HTTPException, AttributeError) as exc:  # AttributeError: shut meanwhile
                watch.set()
                connection.close()
                if cancel.is_set():
                    raise RemoteError(OK, "cancelled") from None
                if reused:  # the kept connection was closed by the server meanwhile: not a try
                    continue
                if attempt == self.endpoint.retries:
                    raise RemoteError(UNREACHABLE, f"{self.endpoint.host}: {type(exc).__name__}") from None
                cancel.wait(0.1 * 2 ** attempt)
                continue
            if response.status == 200:
                return connection, response, watch
            watch.set()
            detail = response.read()[:200].decode("utf-8", "replace")
            if self.endpoint.api_key:  # a server that echoes the request's headers must not put the key in a log
                detail = detail.replace(self.endpoint.api_key, "***")
            connection.close()
            raise RemoteError(_state_of_status(response.status), f"HTTP {response.status} {detail}")
        raise RemoteError(UNREACHABLE, self.endpoint.host)

    def _json(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
              watch: threading.Event) -> object:
        try:
            data = response.read()
            value = json.loads(data)
        except (TimeoutError, socket.timeout):
            connection.close()
            raise RemoteError(TIMED_OUT, f"no answer within {self.endpoint.read_timeout:g} s") from None
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            raise RemoteError(BAD_ANSWER, "not JSON") from None
        finally:
            watch.set()
        self._keep(connection)
        return value

    def _watch(self, connection: http.client.HTTPConnection, cancel: threading.Event) -> threading.Event:
        """Shut `connection` when `cancel` is set, until the returned event is set (the request is over)."""
        done = threading.Event()
        threading.Thread(target=self._close_on_cancel, args=(connection, cancel, done), daemon=True).start()
        return done

    @staticmethod
    def _drained(response: http.client.HTTPResponse) -> bool:
        """Whether the answer was read to its end and the server keeps the connection open."""
        try:
            return response.read() == b"" and not response.will_close
        except (OSError, http.client.HTTPException):
            return False

    @staticmethod
    def _close_on_cancel(connection: http.client.HTTPConnection, cancel: threading.Event,
                         done: threading.Event) -> None:
        while not done.is_set():
            if not cancel.wait(CANCEL_POLL_SECONDS):
                continue
            while not done.is_set():  # a connection still being made is shut once it has a socket
                sock = connection.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns; the server sees the close
                    except OSError:
                        pass
                    return
                done.wait(CANCEL_POLL_SECONDS)
            return

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            idle.close()


def _state_of_status(status: int) -> str:
    if status in (401, 403):
        return UNAUTHORIZED
    if status in (429, 503):
        return AT_CAPACITY
    return BAD_ANSWER


def _state_of_error(text: str) -> str:
    lowered = text.lower()
    if "unavailable" in lowered or "no slot" in lowered or "503" in lowered:
        return AT_CAPACITY
    if "401" in lowered or "unauthorized" in lowered or "invalid api key" in lowered:
        return UNAUTHORIZED
    return BAD_ANSWER
