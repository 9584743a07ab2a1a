"""Pre-call checks: a prompt's token count, and which deployments can take the request.

**Tokenizer.** :func:`count_prompt_tokens` uses ``tiktoken`` with OpenAI's ``o200k_base`` encoding
(GPT-4o and later; for other vendors' models it is an estimate within a few percent for English
text, which is what a context-window check needs). tiktoken downloads its BPE files at run time;
Switchyard must work offline, so the file ships inside this package
(``data/o200k_base.tiktoken.gz``, 1.7 MB) and is checked at load against the SHA-256 tiktoken
itself pins for ``o200k_base`` (``446a9538…1a2d``). It is loaded once, on first use or at start
through :func:`load_encoding`: about 0.5 s and some 40-65 MB of memory (the 200k-entry vocabulary,
held by tiktoken's Rust core and its Python copy), so a router loads it only when it will count.
Counting follows OpenAI's chat accounting: 3 tokens per message, 1 per ``name``, 3 to prime the
reply; tool definitions, tool calls and a JSON-schema ``response_format`` count as their JSON text
plus a small overhead per tool; an image counts 85 tokens at ``detail: low`` and 765 otherwise
(a 1024x1024 image at high detail: the size is not known without fetching it). Text up to 64 KiB
is tokenized whole (~50 µs for a 2 KB prompt); longer prompts are tokenized on four evenly spaced
8 KiB samples and scaled (within 2 %; ~3 ms for 450 KB).

**Candidates.** :func:`filter_candidates` applies tag routing (LiteLLM's rules: a tagged request
goes to deployments that carry all its tags, else to deployments tagged ``default``; an untagged
request goes to the ``default``-tagged deployments when there are any, else to all) and, when
asked, drops deployments whose context window cannot hold the prompt plus the requested output.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from google.protobuf import struct_pb2

import switchyard_core.catalogue as catalogue
from switchyard.type.v1 import chat_pb2
from switchyard_router.deployments import Deployment

__all__ = ["context_limits", "count_prompt_tokens", "filter_candidates", "load_encoding"]

if TYPE_CHECKING:
    import tiktoken

_O200K_FILE = "o200k_base.tiktoken.gz"
_O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# o200k_base's pre-tokenizer pattern and special tokens, as tiktoken defines them.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3
_TOKENS_PER_TOOL = 8
_TOKENS_PER_TOOL_CALL = 3
_IMAGE_LOW = 85
_IMAGE_HIGH = 765
_EXACT_LIMIT = 64 * 1024
_SAMPLES = 4
_SAMPLE_CHARS = 8 * 1024

_ROLES = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_TOOL: "tool",
    chat_pb2.ROLE_DEVELOPER: "developer",
}


@cache
def load_encoding() -> tiktoken.Encoding:
    """The bundled ``o200k_base`` encoding; loaded once. Call at start to keep it off a request."""
    packed = resources.files("switchyard_router").joinpath("data", _O200K_FILE).read_bytes()
    raw = gzip.decompress(packed)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _O200K_SHA256:
        raise RuntimeError(f"bundled {_O200K_FILE} is damaged (sha256 {digest})")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    import tiktoken  # here, not at the top: routers without pre-call checks never load it

    return tiktoken.Encoding("o200k_base", pat_str=_O200K_PATTERN, mergeable_ranks=ranks, special_tokens=_O200K_SPECIAL)


def count_prompt_tokens(params: chat_pb2.ChatCompletionParams) -> int:
    """Estimated prompt tokens of a chat request, as the upstream will count them (see module doc)."""
    texts: list[str] = []
    extra = _REPLY_PRIMING
    for message in params.messages:
        extra += _TOKENS_PER_MESSAGE
        texts.append(_ROLES.get(message.role, "user"))
        if message.HasField("content"):
            texts.append(message.content)
        for part in message.parts:
            kind = part.WhichOneof("part")
            if kind == "text":
                texts.append(part.text)
            elif kind == "image_url":
                extra += _IMAGE_LOW if part.image_url.detail == "low" else _IMAGE_HIGH
        if message.HasField("name"):
            extra += _TOKENS_PER_NAME
            texts.append(message.name)
        for call in message.tool_calls:
            extra += _TOKENS_PER_TOOL_CALL
            texts.append(call.function.name)
            texts.append(call.function.arguments)
        if message.tool_call_id:
            texts.append(message.tool_call_id)
    for tool in params.tools:
        extra += _TOKENS_PER_TOOL
        function = tool.function
        texts.append(function.name)
        texts.append(function.description)
        if function.HasField("parameters"):
            texts.append(_json(function.parameters))
    if params.response_format.HasField("json_schema"):
        texts.append(_json(params.response_format.json_schema))
    return extra + _count(texts)


def filter_candidates(
    candidates: Sequence[Deployment],
    *,
    prompt_tokens: int,
    max_output: int,
    tags: Sequence[str],
    check_context: bool,
    use_tags: bool = True,
) -> list[Deployment]:
    """The candidates that can serve the request, in their given order.

    ``tags``: the request's tags (LiteLLM rules, module doc); ``use_tags`` False ignores tags
    entirely (``enable_tag_filtering`` off). ``check_context``: drop deployments whose known input
    limit is below ``prompt_tokens``, or whose context window is below ``prompt_tokens +
    max_output`` (``max_output`` 0: none requested); deployments with unknown limits stay.
    """
    chosen = _by_tags(candidates, tags) if use_tags else list(candidates)
    if not check_context:
        return chosen
    kept = []
    for deployment in chosen:
        max_input, window = context_limits(deployment)
        if max_input is not None and prompt_tokens > max_input:
            continue
        if window is not None and prompt_tokens + max(max_output, 0) > window:
            continue
        kept.append(deployment)
    return kept


def context_limits(deployment: Deployment) -> tuple[int | None, int | None]:
    """(max input tokens, context window) of a deployment; None where unknown.

    ``litellm_params.max_input_tokens`` / ``context_window`` (LiteLLM's ``model_info`` names) first,
    then the bundled catalogue. Cached per deployment: the catalogue is not searched per request.
    """
    config = deployment.config
    return _limits(
        config.id,
        config.provider,
        config.model,
        _int(config.params.get("max_input_tokens")),
        _int(config.params.get("context_window")),
    )


@cache
def _limits(
    deployment_id: str, provider: str, model: str, max_input: int | None, window: int | None
) -> tuple[int | None, int | None]:
    if window is None:
        info = catalogue.lookup(provider, model)
        window = info.context_window if info is not None else None
    return max_input, window


def _by_tags(candidates: Sequence[Deployment], tags: Sequence[str]) -> list[Deployment]:
    if tags:
        wanted = set(tags)
        matching = [d for d in candidates if wanted.issubset(_tags(d))]
        if matching:
            return matching
        return [d for d in candidates if "default" in _tags(d)]
    defaults = [d for d in candidates if "default" in _tags(d)]
    return defaults if defaults else list(candidates)


def _tags(deployment: Deployment) -> frozenset[str]:
    value = deployment.config.params.get("tags")
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(str(tag) for tag in value)


def _count(texts: Iterable[str]) -> int:
    pieces = [t for t in texts if t]
    total = sum(len(t) for t in pieces)
    if not total:
        return 0
    encoding = load_encoding()
    if total <= _EXACT_LIMIT:
        # Piece by piece, as the upstream sees them: joining would add separator tokens.
        return sum(len(encoding.encode_ordinary(piece)) for piece in pieces)
    # Sample evenly spaced windows and scale by length: a prompt's token density is nearly uniform,
    # and tokenizing megabytes on the request path would cost tens of milliseconds.
    text = "".join(pieces)
    step = (len(text) - _SAMPLE_CHARS) // (_SAMPLES - 1)
    sampled_chars = 0
    sampled_tokens = 0
    for i in range(_SAMPLES):
        sample = text[i * step : i * step + _SAMPLE_CHARS]
        sampled_chars += len(sample)
        sampled_tokens += len(encoding.encode_ordinary(sample))
    return round(sampled_tokens * len(text) / sampled_chars)


def _json(struct: struct_pb2.Struct) -> str:
    return orjson.dumps(_struct(struct)).decode()


def _struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
