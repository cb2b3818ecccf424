"""A stand-in for Anthropic's and OpenAI's HTTP APIs on loopback, for trying things without a key.

It speaks just enough of each wire format for the real SDKs to talk to it:
``POST /v1/messages`` (Anthropic Messages API) and ``POST /v1/chat/completions``
(OpenAI Chat Completions). It answers a coalesced request (a user message
holding ``{"tasks": [...]}``) with a JSON array giving each task its own
response, and any other request with a response to its last user message, as
a batch-processing model would. Token counts are a rough four characters per
token, and a reply longer than ``max_tokens`` is cut short and says so. A
coalesced request that sends a response schema (Anthropic's ``output_config``,
OpenAI's ``json_schema`` response format) is answered as the schema asks: one
JSON object, each of the schema's required keys in turn holding the next
task's response. A request with ``"stream": true`` gets the same reply as server-sent events, in
each API's streaming format, its text in deltas of :data:`CHARS_PER_DELTA`
characters.

Run it in a trio nursery and point an SDK client at it::

    async with serve_fake_llm() as server:
        sdk = anthropic.AsyncAnthropic(api_key="unused", base_url=server.anthropic_base_url)
        ...

or from a shell: ``python examples/fake_llm_server.py`` (port 8765).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import h11
import trio

__all__ = ["FakeLLMServer", "answer_by_echo", "serve_fake_llm", "stream_of"]

CHARS_PER_TOKEN = 4
"""How the fake counts tokens: one per four characters, rounded up."""

CHARS_PER_DELTA = 8
"""How much of the reply's text each streamed delta carries."""


def answer_by_echo(text: str) -> str:
    """Answer a task by quoting its last user message: deterministic and easy to check."""
    return f"You said: {text}"


def _tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _text_of(content: Any) -> str:
    """Return the text of a message's content, a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [message for message in messages if message.get("role") == "user"]
    return _text_of(users[-1]["content"]) if users else ""


@attrs.define
class FakeLLMServer:
    """A running fake API server: where it listens and what it was asked."""

    port: int
    """The loopback port it listens on."""
    answer: Callable[[str], str] = answer_by_echo
    """Maps a task's last user message to the task's response."""
    requests: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    """Every request received, as ``(path, JSON body)``, in arrival order."""

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.AsyncAnthropic``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.AsyncOpenAI``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reply_text(
        self, messages: list[dict[str, Any]], schema: dict[str, Any] | None = None
    ) -> str:
        """Return what the fake model says to a conversation (its last user message).

        A batch is answered with a JSON array of entries, or, given a response
        *schema*, with the object it asks for.
        """
        last = _last_user_text(messages)
        try:
            batch = json.loads(last)
        except ValueError:
            return self.answer(last)
        if not isinstance(batch, dict) or not isinstance(batch.get("tasks"), list):
            return self.answer(last)
        tasks = sorted(batch["tasks"], key=lambda task: task["task_index"])
        responses = [self.answer(_last_user_text(task["messages"])) for task in tasks]
        if schema is not None:
            return json.dumps(dict(zip(schema.get("required", []), responses, strict=False)))
        return json.dumps(
            [
                {"task_index": task["task_index"], "response": response}
                for task, response in zip(tasks, responses, strict=True)
            ]
        )

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Return ``(status, JSON body)`` for a request to *path* with *body*."""
        self.requests.append((path, body))
        messages = list(body.get("messages", []))
        text = self.reply_text(messages, _response_schema(body))
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 4096
        truncated = _tokens(text) > limit
        if truncated:
            text = text[: limit * CHARS_PER_TOKEN]
        prompt = [_text_of(message["content"]) for message in messages]
        prompt.append(_text_of(body.get("system", "")))
        usage = (_tokens("".join(prompt)), _tokens(text))
        if path == "/v1/messages":
            return 200, _anthropic_message(body["model"], text, truncated, usage)
        if path == "/v1/chat/completions":
            return 200, _openai_completion(body["model"], text, truncated, usage)
        return 404, _error("not_found_error", f"no route {path}")


def _response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request constrains its reply to, in either API's words, if any."""
    anthropic_format = (body.get("output_config") or {}).get("format") or {}
    openai_format = (body.get("response_format") or {}).get("json_schema") or {}
    schema = anthropic_format.get("schema") or openai_format.get("schema")
    return schema if isinstance(schema, dict) else None


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic_message(
    model: str, text: str, truncated: bool, usage: tuple[int, int]
) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if truncated else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def _openai_completion(
    model: str, text: str, truncated: bool, usage: tuple[int, int]
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "length" if truncated else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def _deltas(text: str) -> list[str]:
    return [text[start : start + CHARS_PER_DELTA] for start in range(0, len(text), CHARS_PER_DELTA)]


def _event(name: str | None, data: Any) -> str:
    head = f"event: {name}\n" if name is not None else ""
    return f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def _anthropic_events(message: dict[str, Any]) -> str:
    """A Messages API reply as its stream: ``message_start`` to ``message_stop``."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}}
    (block,) = message["content"]
    events = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        *(
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": d},
                },
            )
            for d in _deltas(block["text"])
        ),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(events)


def _openai_events(completion: dict[str, Any], include_usage: bool) -> str:
    """A Chat Completions reply as its stream: ``chat.completion.chunk`` lines, then ``[DONE]``."""
    (choice,) = completion["choices"]
    head = {key: completion[key] for key in ("id", "created", "model")}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        step = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _event(None, {**head, "object": "chat.completion.chunk", "choices": [step]})

    events = [chunk({"role": "assistant", "content": ""})]
    events.extend(chunk({"content": d}) for d in _deltas(choice["message"]["content"]))
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        usage = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": completion["usage"],
        }
        events.append(_event(None, usage))
    events.append(_event(None, "[DONE]"))
    return "".join(events)


def stream_of(path: str, body: dict[str, Any], reply: dict[str, Any]) -> str:
    """The server-sent events that stream *reply*, the answer to *body* at *path*."""
    if path == "/v1/messages":
        return _anthropic_events(reply)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return _openai_events(reply, include_usage)


async def _next_request(
    conn: h11.Connection, stream: trio.SocketStream
) -> tuple[h11.Request, bytes] | None:
    """Read one whole request from *stream*, or return ``None`` when the client hangs up."""
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request, body
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _send(
    conn: h11.Connection,
    stream: trio.SocketStream,
    status: int,
    payload: Any,
    content_type: str = "application/json",
) -> None:
    data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    headers = [("content-type", content_type), ("content-length", str(len(data)))]
    await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
    await stream.send_all(conn.send(h11.Data(data=data)) or b"")
    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")


async def _serve_connection(server: FakeLLMServer, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while (received := await _next_request(conn, stream)) is not None:
                request, raw = received
                path = request.target.decode()
                try:
                    body = json.loads(raw)
                    status, payload = server.respond(path, body)
                except (ValueError, KeyError, TypeError, IndexError) as error:
                    status, payload = 400, _error("invalid_request_error", repr(error))
                if status == 200 and body.get("stream"):
                    events = stream_of(path, body, payload)
                    await _send(conn, stream, status, events, "text/event-stream")
                else:
                    await _send(conn, stream, status, payload)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, trio.BrokenResourceError):
            # The client sent garbage or vanished: this connection is over, the server is not.
            return


@asynccontextmanager
async def serve_fake_llm(
    *, port: int = 0, answer: Callable[[str], str] = answer_by_echo
) -> AsyncIterator[FakeLLMServer]:
    """Serve the fake API on 127.0.0.1 for the duration of the ``async with`` block.

    Args:
        port: The port to listen on; 0 (the default) picks a free one.
        answer: Maps a task's last user message to its response.

    Yields:
        The running server, with its port, base URLs and the requests it got.
    """
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    sockname = listeners[0].socket.getsockname()
    server = FakeLLMServer(port=sockname[1], answer=answer)

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_connection(server, stream)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, handler, listeners)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Only the block's own exception can be here (the server's tasks catch
        # theirs), so show it as it was raised rather than wrapped in a group.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _main() -> None:
    async with serve_fake_llm(port=8765) as server:
        print(f"Anthropic base_url: {server.anthropic_base_url}")
        print(f"OpenAI base_url:    {server.openai_base_url}")
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(_main)
