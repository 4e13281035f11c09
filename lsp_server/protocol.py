"""JSON-RPC rules pygls leaves out: every request gets an answer.

pygls drops a request whose params do not validate, and every request after ``shutdown``,
without a response (the client waits for good), and answers a cancelled request with its own
message, where llm-vscode only stays quiet for llm-ls's exact ``Canceled``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cattrs import transform_error
from lsprotocol.types import EXIT, INITIALIZE, SHUTDOWN, ResponseError
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import MsgId, RPCRequest

log = logging.getLogger(__name__)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
REQUEST_CANCELLED = -32800
# llm-ls (tower-lsp) answers a cancelled request {"code": -32800, "message": "Canceled"};
# llm-vscode hides exactly that message and shows a popup for any other.
LLM_LS_CANCELED = "Canceled"
LLM_LS_PREFIX = "llm-ls/"
SETTLE_STEPS = 1000  # x 10 ms: how long shutdown waits for a pending initialize


def valid_id(value: Any) -> bool:
    """JSON-RPC ids are strings or integers (bool is an int to Python, not to JSON)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _why(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is not None:
        try:
            return "; ".join(transform_error(cause, path="$")[:3])
        except Exception:  # cattrs can only describe its own errors
            return str(cause) or type(cause).__name__
    return str(exc) or type(exc).__name__


class StacklensProtocol(LanguageServerProtocol):
    """pygls's protocol with an answer for every request, whatever arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._methods: dict[MsgId, str] = {}  # request id -> method, until it is answered

    def reply_error(self, msg_id: MsgId | None, code: int, message: str) -> None:
        """An error response; ``msg_id`` None answers with ``"id": null`` (JSON-RPC's rule for a
        request whose id could not be read)."""
        if msg_id is None:
            self._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})
            return
        self._send_response(msg_id, error=ResponseError(code=code, message=message))

    def receive(self, data: Any) -> None:
        """One decoded JSON value from the transport: structure it and handle it, answering
        a request that cannot be handled with InvalidRequest or InvalidParams."""
        if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
            rid = data.get("id") if isinstance(data, dict) else None
            self.reply_error(rid if valid_id(rid) else None, INVALID_REQUEST, "not a JSON-RPC 2.0 message")
            return
        is_request = "method" in data and "id" in data
        if is_request and not (valid_id(data["id"]) and isinstance(data["method"], str)):
            self.reply_error(None, INVALID_REQUEST, "a request needs a string or integer id and a method")
            return
        try:
            message = self.structure_message(data)
        except JsonRpcException as exc:
            if is_request:
                why = _why(exc)
                log.warning("invalid params for %s (id %s): %s", data["method"], data["id"], why)
                self.reply_error(data["id"], INVALID_PARAMS, f"invalid params for {data['method']}: {why}")
            else:
                log.warning("ignoring a message that does not validate: %s", _why(exc))
            return
        try:
            self.handle_message(message)
        except Exception:  # one bad message must not end the read loop
            log.exception("unable to handle message %s", data.get("method"))

    async def settle(self, data: Any) -> None:
        """Before ``shutdown``/``exit``: let a pending ``initialize`` finish. A client may send
        the whole session at once; pygls's shutdown cancels every other request in flight."""
        if not (isinstance(data, dict) and data.get("method") in (SHUTDOWN, EXIT)):
            return
        for _ in range(SETTLE_STEPS):
            if INITIALIZE not in self._methods.values():
                return
            await asyncio.sleep(0.01)

    def handle_message(self, message: Any) -> None:
        if self._shutdown and isinstance(message, RPCRequest) and message.method != EXIT:
            # LSP: after `shutdown`, requests fail with InvalidRequest (not silence).
            self.reply_error(
                message.id, INVALID_REQUEST, "the server is shutting down: only `exit` is accepted"
            )
            return
        super().handle_message(message)

    def _handle_request(self, msg_id: MsgId, method_name: str, params: Any) -> None:
        self._methods[msg_id] = method_name
        super()._handle_request(msg_id, method_name, params)

    def _send_response(
        self, msg_id: MsgId, result: Any | None = None, error: ResponseError | None = None
    ) -> None:
        method = self._methods.pop(msg_id, "")
        if error is not None and error.code == REQUEST_CANCELLED and method.startswith(LLM_LS_PREFIX):
            error = ResponseError(code=REQUEST_CANCELLED, message=LLM_LS_CANCELED)
        super()._send_response(msg_id, result, error)
