"""pygls's LSP protocol, made to answer every request and to follow LSP's lifecycle and line rules.

What pygls 2 does not do, and this class does:
- a request whose params do not deserialize is answered InvalidParams (pygls only logs it,
  so the editor waits forever); a message that is no request gets InvalidRequest;
- every message that carries an id is answered, as JSON-RPC 2.0 asks: an id that is no
  integer or string (`{"a": 1}`, `1.5`, `true`, `null`: LSP allows only integer | string)
  gets InvalidRequest with `"id": null`, since its own id cannot be echoed; an LSP
  notification's method sent with an id gets MethodNotFound (see `_notification_with_id`);
- before `initialize` a request gets ServerNotInitialized (-32002) and a notification is
  dropped; after `shutdown` a request gets InvalidRequest;
- `exit` ends the serving loop with code 0 after `shutdown`, 1 without (pygls's own
  sys.exit is swallowed by its event loop);
- documents split lines as LSP does (see workspace.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

from ghostframe.server.lsp.framing import Damaged, leading_id
from ghostframe.server.lsp.workspace import LspWorkspace

log = logging.getLogger("ghostframe.server")

ALWAYS_ALLOWED = {types.INITIALIZE, types.EXIT}
# LSP's notifications (either direction): their lsprotocol message class has no id.
NOTIFICATION_METHODS = frozenset(method for method, (message, *_) in types.METHOD_TO_TYPES.items()
                                 if "id" not in attrs.fields_dict(message))


@dataclass
class Refused:
    """A message that could not be turned into a typed LSP message, and the error to answer.

    `answer`: the message carried an id, so it gets this error as its response (with
    `"id": null` when `request_id` is None: its id was no valid id, or it was no object).
    """

    request_id: int | str | None
    method: str | None
    error: JsonRpcException
    is_response: bool = False
    answer: bool = False


def _usable_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _why(exc: Exception) -> str:
    """cattrs' errors as one readable line ("required field missing @ $.params.context")."""
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        return "; ".join(cattrs.transform_error(exc, path="$"))[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


class GhostframeProtocol(LanguageServerProtocol):
    def __init__(self, server, converter):
        super().__init__(server, converter)
        self.initialize_received = False
        self.exit_code: int | None = None  # set by `exit`; the serving loop stops when it is

    # --- reading ------------------------------------------------------------------------

    def handle_body(self, body: bytes) -> None:
        """One frame's body: parse, type and dispatch it; answer ParseError where an id is known."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError; nesting too deep
            self.report_damaged(Damaged(f"the body is not JSON ({exc})", leading_id(body)))
            return
        self.handle_message(self.structure_message(data))

    def report_damaged(self, damaged: Damaged) -> None:
        log.error("ignored a damaged message: %s", damaged.reason)
        if damaged.request_id is not None:
            self._send_response(damaged.request_id, error=JsonRpcParseError(
                f"could not read this request: {damaged.reason}").to_response_error())

    def structure_message(self, data: Any):
        """A typed message, or a Refused saying what to answer (never an exception)."""
        if not isinstance(data, dict):  # JSON-RPC answers a non-object with "id": null
            return Refused(None, None, JsonRpcInvalidRequest(f"expected a JSON object, got {type(data).__name__}"),
                           answer=True)
        request_id, method = data.get("id"), data.get("method")
        has_id, is_response = "id" in data, "method" not in data and ("result" in data or "error" in data)
        if has_id and not _usable_id(request_id):
            if is_response:  # a response is never answered; a client's reply with "id": null is legal
                return Refused(None, None, JsonRpcInvalidRequest('a response whose "id" is no request of ours'), True)
            return Refused(None, method if isinstance(method, str) else None, JsonRpcInvalidRequest(
                f'"id" must be an integer or a string, not {json.dumps(request_id)[:40]}'), answer=True)
        answer = has_id and not is_response
        if data.get("jsonrpc") != self.VERSION:
            return Refused(request_id, None, JsonRpcInvalidRequest('"jsonrpc" must be "2.0"'), answer=answer)
        if "method" in data and not isinstance(method, str):
            return Refused(request_id, None, JsonRpcInvalidRequest('"method" must be a string'), answer=answer)
        if has_id and method in NOTIFICATION_METHODS:
            return self._notification_with_id(request_id, method)
        try:
            return self._converter.structure(data, self._message_type(data))
        except Exception as exc:  # pygls would log a traceback and answer nothing
            why = _why(exc)
            if method is None:
                return Refused(request_id, None, JsonRpcInvalidRequest(f"malformed response: {why}"), True)
            return Refused(request_id, method, JsonRpcInvalidParams(f"invalid params for {method}: {why}"),
                           answer=answer)

    @staticmethod
    def _notification_with_id(request_id: int | str, method: str) -> Refused:
        """An LSP notification's method sent as a request (with an id): refused, not applied.

        JSON-RPC answers every message with an id, and an error answer tells the client that
        nothing happened, so the notification's effect is not applied (a document is not
        opened, a request is not cancelled, `exit` does not exit). The code is MethodNotFound,
        as vscode-jsonrpc answers a request for a method it has no request handler for: LSP
        defines no request of that name. The message says how to send it instead.
        """
        return Refused(request_id, method, JsonRpcMethodNotFound(
            f"{method} is a notification in LSP: send it without an id (it was not applied)"), answer=True)

    def _message_type(self, data: dict) -> type:
        """The lsprotocol class for a message, as pygls picks it (its generic ones for unknown methods)."""
        if "method" in data:
            generic = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
            return self.get_message_type(data["method"]) or generic
        if "error" in data:
            return types.ResponseErrorMessage
        return self._result_types.pop(data.get("id"), None) or JsonRPCResponseMessage

    # --- dispatching --------------------------------------------------------------------

    def handle_message(self, message) -> None:
        if isinstance(message, Refused):
            self._refuse(message)
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if method is not None and method not in ALWAYS_ALLOWED:
            if not self.initialize_received:
                if is_request:
                    self._answer_error(message.id, JsonRpcServerNotInitialized(
                        f"{method} before initialize: send initialize first"))
                return  # a notification before initialize is dropped, as LSP says
            if self._shutdown:
                if is_request:
                    self._answer_error(message.id, JsonRpcInvalidRequest(f"{method} after shutdown"))
                return
        if method == types.INITIALIZE:
            if self.initialize_received:
                self._answer_error(message.id, JsonRpcInvalidRequest("initialize was already sent"))
                return
            self.initialize_received = True
        super().handle_message(message)

    def _refuse(self, refused: Refused) -> None:
        log.error("refused a message (%s): %s", refused.method or "no method", refused.error.message)
        if refused.is_response:
            if (future := self._request_futures.pop(refused.request_id, None)) is not None:
                future.set_exception(refused.error)
        elif refused.answer:
            self._answer_error(refused.request_id, refused.error)
        elif refused.method == types.EXIT:  # an exit notification with malformed params still exits
            self.lsp_exit_now()

    def _answer_error(self, request_id, error: JsonRpcException) -> None:
        if request_id is None:  # lsprotocol's ResponseErrorMessage would leave the null id out
            self._send_data({"jsonrpc": self.VERSION, "id": None, "error": error.to_response_error()})
            return
        self._send_response(request_id, error=error.to_response_error())

    # --- lifecycle ----------------------------------------------------------------------

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        """pygls's initialize, with a workspace whose documents follow LSP's line rules."""
        steps = super().lsp_initialize(params)
        try:
            request = next(steps)  # pygls has made its workspace; the user's handler comes next
        except StopIteration as done:
            self._workspace = LspWorkspace.like(self._workspace)
            return done.value
        self._workspace = LspWorkspace.like(self._workspace)
        while True:
            value = yield request
            try:
                request = steps.send(value)
            except StopIteration as done:
                return done.value

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.lsp_exit_now()

    def lsp_exit_now(self) -> None:
        self.exit_code = 0 if self._shutdown else 1
        log.info("exit %s shutdown", "after" if self._shutdown else "without")
        self._server.stop_serving()
