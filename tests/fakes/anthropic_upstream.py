"""A fake Anthropic Messages API server that follows Anthropic's published wire format, for tests.

Sources: the Messages API reference, https://docs.anthropic.com/en/api/messages; streaming,
https://docs.anthropic.com/en/api/messages-streaming; errors, https://docs.anthropic.com/en/api/errors;
versioning, https://docs.anthropic.com/en/api/versioning; tool use,
https://docs.anthropic.com/en/docs/build-with-claude/tool-use; vision,
https://docs.anthropic.com/en/docs/build-with-claude/vision. Error bodies are
``{"type": "error", "error": {"type", "message"}, "request_id"}`` with Anthropic's status codes:
400 ``invalid_request_error``, 401 ``authentication_error``, 403 ``permission_error``, 404
``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error`` (with ``retry-after``),
500 ``api_error``, 529 ``overloaded_error``.

Endpoint: ``POST /v1/messages`` (plain and SSE streaming). Requests are validated as Anthropic
does: an ``x-api-key`` header (401) and an ``anthropic-version`` header (400); a JSON body with
``model`` (404 for unknown models), ``max_tokens`` (required, a positive integer) and
``messages``; no unknown top-level fields; ``system`` only at the top level (a ``system`` role in
``messages`` is refused); the first message from ``user`` and roles alternating
user/assistant; content as a string or typed blocks (non-empty ``text``, ``image`` with a base64
source of an accepted media type or a url source, ``document``, ``tool_use`` only from the
assistant, ``tool_result`` only from the user and only answering a ``tool_use`` of the previous
assistant turn, every ``tool_use`` answered in the next turn); ``temperature`` and ``top_p``
within 0..1; ``stop_sequences`` a list of strings; tools named ``^[a-zA-Z0-9_-]{1,64}$`` with an
object ``input_schema``; ``tool_choice`` of type auto/any/tool/none (``tool`` naming a given tool,
only with tools); ``metadata`` holding only ``user_id``; a context window
(400 "prompt is too long").

Answers follow the conventions of ``tests/conformance/cases.py`` via
:func:`tests.fakes._common.plan_answer`: "Echo: <last user text>" (+ " [images: N]"), "Tool
result: <content>" after ``tool_result`` blocks, ``call <tool> {json}`` phrases become ``tool_use``
blocks (tool_choice ``any``/``tool``/``none`` and ``disable_parallel_tool_use`` honoured),
``max_tokens`` truncates to that many words (``stop_reason`` ``max_tokens``), a stop sequence
in the reply cuts it (``stop_sequence``). Anthropic has no JSON mode of its own: a forced call
(``tool_choice`` ``tool``) of a tool whose schema declares no properties or an ``echo`` property,
with no ``call`` phrase for it, fills ``{"echo": <reply text>}`` — as a model fills the schema it
was forced to answer in. Token counts are words: input = words of the system prompt and all
message texts + 3 per message, of which :attr:`~tests.fakes._common.FakeServer.cached_tokens`
are reported as ``cache_read_input_tokens`` and :attr:`FakeAnthropic.cache_creation_tokens` as
``cache_creation_input_tokens`` (``input_tokens`` is the rest, as Anthropic counts it);
Anthropic reports no reasoning-token count, so ``reasoning_tokens`` is ignored.

Streams are named SSE events: ``message_start`` (usage with the input counts and
``output_tokens`` 1), then per content block ``content_block_start`` / ``content_block_delta``
(``text_delta`` one word each; ``input_json_delta`` in 4-character fragments after an empty
first one) / ``content_block_stop``, a ``ping`` after the first block start, ``message_delta``
(``stop_reason``, ``stop_sequence``, cumulative ``usage.output_tokens``) and ``message_stop``.

Fault injection: the :class:`~tests.fakes._common.FakeServer` knobs (``fail_next``,
``delay_next``, ``respond_raw_next``, ``drop_stream_next`` — counting only events that become
caller chunks: ``message_start``, deltas, tool-use block starts and ``message_delta``) plus
:meth:`FakeAnthropic.error_in_stream_next`, an ``error`` event after N such events.

Run standalone (end-to-end tests)::

    python -m tests.fakes.anthropic_upstream --port 8090 [--api-key sk-ant-test]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
from typing import Any

from aiohttp import web

from tests.fakes._common import ApiError, FakeServer, Fault, Plan, RecordedRequest, plan_answer, words

__all__ = ["DEFAULT_MODELS", "FakeAnthropic", "anthropic_error"]

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest")
VERSIONS = ("2023-06-01", "2023-01-01")

_PARAMS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
    }
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")

_DEFAULT_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(error_type: str, message: str, request_id: str = "req_fake") -> dict[str, Any]:
    """Anthropic's error body."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def _invalid(message: str) -> ApiError:
    return ApiError(400, anthropic_error("invalid_request_error", message))


class FakeAnthropic(FakeServer):
    """The fake server; an async context manager that serves on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] = DEFAULT_MODELS,
        context_window_tokens: int = 4096,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        """The only accepted key; None accepts any (one is still required)."""
        self.models = models
        self.context_window_tokens = context_window_tokens
        self.cache_creation_tokens = 0
        """Reported as usage.cache_creation_input_tokens."""
        self._stream_error: tuple[int, str] | None = None

    @property
    def base_url(self) -> str:
        """The ``api_base`` of this server (the Messages path is ``/v1/messages`` under it)."""
        return self.root_url

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.serve(self._messages))

    def reset(self) -> None:
        super().reset()
        self.cache_creation_tokens = 0
        self._stream_error = None

    def fail_with(self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with Anthropic's error body for ``status``."""
        error_type, default = _DEFAULT_MESSAGES.get(status, ("api_error", "Internal server error"))
        self.fail_next(status, anthropic_error(error_type, message or default), headers=headers)

    def error_in_stream_next(self, after_chunks: int, error_type: str = "overloaded_error") -> None:
        """Send an ``error`` event in the next stream after ``after_chunks`` caller-visible events."""
        self._stream_error = (after_chunks, error_type)

    # -- handling ---------------------------------------------------------------------------

    async def _messages(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        self._check_headers(recorded)
        body = recorded.json
        if not isinstance(body, dict):
            raise _invalid("There was an error parsing the body of your request as JSON.")
        unknown = sorted(set(body) - _PARAMS)
        if unknown:
            raise _invalid(f"{unknown[0]}: Extra inputs are not permitted")
        model = body.get("model")
        if not isinstance(model, str):
            raise _invalid("model: Field required")
        if "max_tokens" not in body:
            raise _invalid("max_tokens: Field required")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
        _validate_sampling(body)
        system_text = _validate_system(body.get("system"))
        messages = _validate_messages(body.get("messages"))
        tools = _validate_tools(body)
        _validate_metadata(body.get("metadata"))
        stop_sequences = _validate_stop(body.get("stop_sequences"))
        if model not in self.models:
            raise ApiError(404, anthropic_error("not_found_error", f"model: {model}"))
        prompt = words(system_text) + sum(_message_words(m) + 3 for m in messages)
        if prompt > self.context_window_tokens:
            raise _invalid(f"prompt is too long: {prompt} tokens > {self.context_window_tokens} maximum")
        plan = _plan(body, messages, tools, max_tokens)
        stop_reason, stop_sequence, plan = _apply_stop(plan, stop_sequences)
        output = words(plan.content or "") + sum(words(a) for _, a in plan.tool_calls)
        usage = self._usage(prompt, max(output, 1))
        message_id = self.next_id("msg")
        content = _content(plan, message_id)
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": stop_sequence,
                    "usage": usage,
                }
            )
        return await self._stream(request, message_id, model, content, stop_reason, stop_sequence, usage, fault)

    def _check_headers(self, recorded: RecordedRequest) -> None:
        key = recorded.headers.get("x-api-key", "").strip()
        if not key:
            raise ApiError(401, anthropic_error("authentication_error", "x-api-key header is required"))
        version = recorded.headers.get("anthropic-version")
        if version is None:
            raise _invalid("anthropic-version: header is required")
        if version not in VERSIONS:
            raise _invalid(f"anthropic-version: invalid version '{version}'")
        if self.api_key is not None and key != self.api_key:
            raise ApiError(401, anthropic_error("authentication_error", "invalid x-api-key"))

    def _usage(self, prompt: int, output: int) -> dict[str, Any]:
        cache_read = min(self.cached_tokens, prompt)
        cache_write = min(self.cache_creation_tokens, prompt - cache_read)
        return {
            "input_tokens": prompt - cache_read - cache_write,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output,
            "service_tier": "standard",
        }

    async def _stream(
        self,
        request: web.Request,
        message_id: str,
        model: str,
        content: list[dict[str, Any]],
        stop_reason: str,
        stop_sequence: str | None,
        usage: dict[str, Any],
        fault: Fault | None,
    ) -> web.StreamResponse:
        events: list[tuple[dict[str, Any], bool]] = []
        start_usage = {**usage, "output_tokens": 1}
        start: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        events.append(({"type": "message_start", "message": start}, True))
        for index, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    (
                        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                        False,
                    )
                )
                if index == 0:
                    events.append(({"type": "ping"}, False))
                for piece in re.findall(r"\S+\s*", block["text"]):
                    delta = {"type": "text_delta", "text": piece}
                    events.append(({"type": "content_block_delta", "index": index, "delta": delta}, True))
            else:
                header = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                events.append(({"type": "content_block_start", "index": index, "content_block": header}, True))
                if index == 0:
                    events.append(({"type": "ping"}, False))
                arguments = json.dumps(block["input"], separators=(",", ":"))
                fragments = [""] + [arguments[i : i + 4] for i in range(0, len(arguments), 4)]
                for fragment in fragments:
                    delta = {"type": "input_json_delta", "partial_json": fragment}
                    events.append(({"type": "content_block_delta", "index": index, "delta": delta}, bool(fragment)))
            events.append(({"type": "content_block_stop", "index": index}, False))
        final = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}}
        final["usage"] = {"output_tokens": usage["output_tokens"]}
        events.append((final, True))
        events.append(({"type": "message_stop"}, False))
        if self._stream_error is not None:
            after, error_type = self._stream_error
            self._stream_error = None
            counted = [i for i, (_, counts) in enumerate(events) if counts]
            cut = counted[after] if after < len(counted) else len(events)
            message = _DEFAULT_MESSAGES.get(529 if error_type == "overloaded_error" else 500, ("", "Error"))[1]
            events = [*events[:cut], ({"type": "error", "error": {"type": error_type, "message": message}}, False)]
        frames = [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event, _ in events]
        return await self.write_stream(
            request, frames, fault, content_type="text/event-stream; charset=utf-8", counts=[c for _, c in events]
        )


# -- validation -------------------------------------------------------------------------------


def _validate_sampling(body: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _invalid(f"{name}: Input should be a valid number")
        if not 0.0 <= value <= 1.0:
            raise _invalid(f"{name}: range: 0..1")
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise _invalid("top_k: Input should be a valid integer")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _invalid("stream: Input should be a valid boolean")


def _validate_system(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        texts = []
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise _invalid(f"system.{i}: Input should be a valid text block")
            texts.append(block["text"])
        return " ".join(texts)
    raise _invalid("system: Input should be a valid string or a list of text blocks")


def _validate_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    previous_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise _invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _invalid('messages: first message must use the "user" role')
        if i > 0 and messages[i - 1].get("role") == role:
            raise _invalid(
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" '
                "roles in a row"
            )
        if "content" not in message:
            raise _invalid(f"messages.{i}.content: Field required")
        content = message["content"]
        last = i == len(messages) - 1
        tool_uses, answered = _validate_content(content, i, role, allow_empty=last and role == "assistant")
        if role == "user":
            unexpected = sorted(answered - previous_tool_uses)
            if unexpected:
                raise _invalid(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {unexpected[0]}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
            missing = sorted(previous_tool_uses - answered)
            if missing:
                raise _invalid(
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{missing[0]}. Each `tool_use` block must have a corresponding `tool_result` block in the "
                    "next message."
                )
        previous_tool_uses = tool_uses
        if previous_tool_uses and last:
            raise _invalid(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{sorted(previous_tool_uses)[0]}."
            )
    return messages


def _validate_content(content: Any, i: int, role: str, *, allow_empty: bool) -> tuple[set[str], set[str]]:
    """(tool_use ids, answered tool_use ids) of one message's content."""
    if isinstance(content, str):
        if not content and not allow_empty:
            raise _invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        return set(), set()
    if not isinstance(content, list):
        raise _invalid(f"messages.{i}.content: Input should be a valid string or list")
    if not content and not allow_empty:
        raise _invalid(
            f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
        )
    tool_uses: set[str] = set()
    answered: set[str] = set()
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict):
            raise _invalid(f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise _invalid(f"{where}.text: Field required")
            if not block["text"]:
                raise _invalid(f"{where}.text: text content blocks must be non-empty")
        elif kind == "image":
            _validate_image_source(block.get("source"), where)
        elif kind == "document":
            source = block.get("source")
            if not isinstance(source, dict) or source.get("type") not in ("base64", "url", "text"):
                raise _invalid(f"{where}.source: Field required")
        elif kind == "tool_use":
            if role != "assistant":
                raise _invalid(f"{where}: `tool_use` blocks can only be in `assistant` messages")
            if not isinstance(block.get("id"), str) or not block["id"]:
                raise _invalid(f"{where}.id: Field required")
            if not isinstance(block.get("name"), str):
                raise _invalid(f"{where}.name: Field required")
            if not isinstance(block.get("input"), dict):
                raise _invalid(f"{where}.input: Input should be a valid dictionary")
            tool_uses.add(block["id"])
        elif kind == "tool_result":
            if role != "user":
                raise _invalid(f"{where}: `tool_result` blocks can only be in `user` messages")
            if not isinstance(block.get("tool_use_id"), str):
                raise _invalid(f"{where}.tool_use_id: Field required")
            result = block.get("content")
            if result is not None and not isinstance(result, (str, list)):
                raise _invalid(f"{where}.content: Input should be a valid string or list")
            answered.add(block["tool_use_id"])
        else:
            raise _invalid(
                f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
            )
    return tool_uses, answered


def _validate_image_source(source: Any, where: str) -> None:
    if not isinstance(source, dict):
        raise _invalid(f"{where}.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            raise _invalid(
                f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                "'image/webp'"
            )
        if not isinstance(source.get("data"), str) or not source["data"]:
            raise _invalid(f"{where}.source.base64.data: Field required")
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise _invalid(f"{where}.source.url.url: Field required")
    else:
        raise _invalid(
            f"{where}.source.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        )


def _validate_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise _invalid("tool_choice: tool_choice may only be specified while providing tools.")
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _invalid(f"tools.{i}.name: Field required")
        if not _TOOL_NAME.fullmatch(tool["name"]):
            raise _invalid(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        extra = sorted(set(tool) - {"name", "description", "input_schema", "cache_control", "type"})
        if extra:
            raise _invalid(f"tools.{i}.{extra[0]}: Extra inputs are not permitted")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _invalid(f"tools.{i}.input_schema: Field required")
        if schema.get("type") != "object":
            raise _invalid(f"tools.{i}.input_schema.type: Input should be 'object'")
        names.append(tool["name"])
    if len(set(names)) != len(names):
        raise _invalid("tools: Tool names must be unique.")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            raise _invalid("tool_choice: Input tag found using 'type' does not match any of the expected tags")
        allowed = {"type", "disable_parallel_tool_use"} | ({"name"} if choice["type"] == "tool" else set())
        if choice["type"] == "none":
            allowed = {"type"}
        extra = sorted(set(choice) - allowed)
        if extra:
            raise _invalid(f"tool_choice.{choice['type']}.{extra[0]}: Extra inputs are not permitted")
        if choice["type"] == "tool" and choice.get("name") not in names:
            raise _invalid(f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in the provided tools")
    return tools


def _validate_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _invalid("metadata: Input should be a valid dictionary")
    extra = sorted(set(metadata) - {"user_id"})
    if extra:
        raise _invalid(f"metadata.{extra[0]}: Extra inputs are not permitted")
    user_id = metadata.get("user_id")
    if user_id is not None and (not isinstance(user_id, str) or len(user_id) > 256):
        raise _invalid("metadata.user_id: String should have at most 256 characters")


def _validate_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _invalid("stop_sequences: Input should be a valid list of strings")
    if any(not s.strip() for s in stop):
        raise _invalid("stop_sequences: each stop sequence must contain non-whitespace")
    return stop


# -- answers ------------------------------------------------------------------------------------


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _text(blocks: list[dict[str, Any]]) -> str:
    return " ".join(b["text"] for b in blocks if b.get("type") == "text")


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else _text(content)


def _message_words(message: dict[str, Any]) -> int:
    blocks = _blocks(message["content"])
    return words(_text(blocks)) + sum(words(_result_text(b)) for b in blocks if b.get("type") == "tool_result")


def _plan(body: dict[str, Any], messages: list[dict[str, Any]], tools: list[dict[str, Any]], max_tokens: int) -> Plan:
    last = messages[-1]
    last_blocks = _blocks(last["content"])
    results = [b for b in last_blocks if b.get("type") == "tool_result"]
    text = _text(last_blocks)
    if last["role"] == "user" and results and not text:
        last_role, last_text = "tool", _result_text(results[-1])
    else:
        last_role, last_text = last["role"], text
    last_user = next(m for m in reversed(messages) if m["role"] == "user")
    user_blocks = _blocks(last_user["content"])
    images = sum(1 for b in user_blocks if b.get("type") == "image")
    choice = body.get("tool_choice") or {"type": "auto"}
    names = [t["name"] for t in tools]
    modes = {"auto": None, "any": "required", "none": "none", "tool": None}
    forced = choice.get("name") if choice["type"] == "tool" else None
    common: dict[str, Any] = {
        "last_role": last_role,
        "last_text": last_text,
        "last_user_text": _text(user_blocks),
        "images": images,
    }
    plan = plan_answer(
        **common,
        tools=names,
        tool_choice=modes[choice["type"]],
        forced_tool=forced,
        parallel_tool_calls=not choice.get("disable_parallel_tool_use", False),
        max_words=max_tokens,
    )
    if forced is not None and plan.tool_calls == [(forced, "{}")]:
        schema = next(t for t in tools if t["name"] == forced)["input_schema"]
        properties = schema.get("properties") or {}
        if not properties or "echo" in properties:
            reply = plan_answer(**common).content or ""
            plan = Plan(None, "tool_calls", [(forced, json.dumps({"echo": reply}, separators=(",", ":")))])
    return plan


def _apply_stop(plan: Plan, stop_sequences: list[str]) -> tuple[str, str | None, Plan]:
    reasons = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
    if plan.content:
        hits = [(plan.content.find(s), s) for s in stop_sequences if s in plan.content]
        if hits:
            position, sequence = min(hits)
            return "stop_sequence", sequence, Plan(plan.content[:position], "stop", [])
    return reasons[plan.finish], None, plan


def _content(plan: Plan, message_id: str) -> list[dict[str, Any]]:
    if plan.tool_calls:
        return [
            {
                "type": "tool_use",
                "id": "toolu_" + hashlib.sha256(f"{message_id}:{i}".encode()).hexdigest()[:24],
                "name": name,
                "input": json.loads(arguments),
            }
            for i, (name, arguments) in enumerate(plan.tool_calls)
        ]
    return [{"type": "text", "text": plan.content}] if plan.content else []


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.anthropic_upstream", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=None, help="the only accepted key (default: any)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    fake = FakeAnthropic(api_key=args.api_key, host=args.host, port=args.port)
    web.run_app(
        fake.app(),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        access_log=None,
        print=lambda *_: log.info("fake Anthropic listening on %s", fake.base_url),
    )


if __name__ == "__main__":
    main()
