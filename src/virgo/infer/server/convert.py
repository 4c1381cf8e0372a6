"""From a validated `ChatCompletionRequest` to what the backend generates, and from its outputs to responses.

Images are checked here, in the request's thread, from their headers only (format, pixel count, path under the
image root): a bad image is a 400 before the request takes a place in the queue. The decoded pixels are made
later, by the backend, when the request's batch is encoded, so a waiting request holds its compressed bytes, not
a bitmap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput
from virgo.infer.server.errors import APIError
from virgo.infer.server.models import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ImagePart,
    ReasoningDetails,
    Usage,
    VirgoInfo,
)
from virgo.infer.split import split_reasoning
from virgo.modeling.images import ImageError, decode_data_url, image_size

# Below this a temperature only overflows the scaled logits; like vLLM, treat it as greedy.
GREEDY_BELOW = 1e-5
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class ChatParams:
    """One request, ready to queue: `virgo.prompts` messages, their images in order, and the decoding settings."""

    messages: list[dict[str, Any]]
    images: list[Any]
    cfg: GenerateConfig
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    seed: int | None = None
    max_tokens_given: bool = False  # the request set max_tokens / max_completion_tokens


def _local_image(path: str, image_root: Path | None) -> Path:
    if image_root is None:
        raise APIError(400, "local image paths are not allowed on this server (start it with --image-root); send "
                            "the image as a data URL", param="messages")
    try:
        p = Path(path)
        p = (p if p.is_absolute() else image_root / p).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL byte
        raise APIError(400, f"image path {path!r} cannot be resolved: {e}", param="messages") from None
    if not p.is_relative_to(image_root):
        raise APIError(403, f"image path {path!r} is outside the allowed image directory", param="messages")
    return p


def check_image(url: str, image_root: Path | None, max_pixels: int) -> bytes | Path:
    """The image an ``image_url`` names (bytes of a data URL, or a path under ``image_root``), header-checked."""
    if url.startswith("data:"):
        src: bytes | Path = _data(url)
    elif url.startswith("file://") or not _SCHEME.match(url):
        src = _local_image(url.removeprefix("file://"), image_root)
    else:
        raise APIError(400, "remote image URLs are not fetched; send the image as a data URL", param="messages")
    try:
        image_size(src, max_pixels=max_pixels)
    except ImageError as e:
        raise APIError(400, f"image: {e}", param="messages") from None
    return src


def _data(url: str) -> bytes:
    try:
        return decode_data_url(url)
    except ImageError as e:
        raise APIError(400, f"image: {e}", param="messages") from None


def convert_messages(messages: list[ChatMessage], image_root: Path | None,
                     max_pixels: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """OpenAI chat messages -> `virgo.prompts` messages with ``{"type": "image"}`` placeholders, and the images."""
    out, images = [], []
    for m in messages:
        role = "system" if m.role == "developer" else m.role
        if m.content is None or isinstance(m.content, str):
            out.append({"role": role, "content": m.content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for part in m.content:
            if isinstance(part, ImagePart):
                images.append(check_image(part.image_url.url, image_root, max_pixels))
                parts.append({"type": "image"})
            else:
                parts.append({"type": "text", "text": part.text})
        if role == "user":
            out.append({"role": role, "content": parts})
        else:  # the chat template renders only user turns as parts
            out.append({"role": role, "content": "".join(p["text"] for p in parts)})
    return out, images


def to_params(req: ChatCompletionRequest, base: GenerateConfig, image_root: Path | None,
              max_pixels: int) -> ChatParams:
    """The request's settings over the server's defaults (``base``); what it leaves out, ``base`` decides."""
    messages, images = convert_messages(req.messages, image_root, max_pixels)
    changes: dict[str, Any] = {"n": 1}
    for name, value in (("max_new_tokens", req.token_limit), ("temperature", req.temperature),
                        ("top_p", req.top_p), ("top_k", None if req.top_k is None else max(req.top_k, 0)),
                        ("min_p", req.min_p), ("repetition_penalty", req.repetition_penalty),
                        ("presence_penalty", req.presence_penalty), ("frequency_penalty", req.frequency_penalty),
                        ("thinking_budget", req.thinking_budget), ("force_wait", req.force_wait)):
        if value is not None:  # not `value or default`: 0 is a value (and max_tokens 0 never gets this far)
            changes[name] = value
    if "thinking_budget" in req.model_fields_set and req.thinking_budget is None:
        changes["thinking_budget"] = None  # an explicit null: no cap, whatever the server's default
    if "stop" in req.model_fields_set:  # even null or []: no stop strings, whatever the server's default
        changes["stop"] = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if changes.get("temperature", base.temperature) < GREEDY_BELOW:
        changes["temperature"] = 0.0
    try:
        cfg = base.replace(**changes)
    except ValueError as e:
        raise APIError(400, str(e)) from None
    opts = req.stream_options
    return ChatParams(messages, images, cfg, n=req.n or 1, stream=bool(req.stream),
                      include_usage=bool(opts is not None and opts.include_usage), seed=req.seed,
                      max_tokens_given=req.token_limit is not None)


# -- responses -------------------------------------------------------------------------------------------------

def usage(outs: list[GenOutput]) -> Usage:
    prompt = (outs[0].prompt_tokens or 0) if outs else 0
    completion = sum(o.completion_tokens or 0 for o in outs)
    reasoning = sum(o.thought_tokens or 0 for o in outs if split_reasoning(o.text)[0] is not None)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 completion_tokens_details=ReasoningDetails(reasoning_tokens=reasoning))


def virgo_info(o: GenOutput) -> VirgoInfo:
    return VirgoInfo(text=o.text, thought_tokens=o.thought_tokens, budget_forced=o.budget_forced, waits=o.waits,
                     interventions=o.interventions, seed=o.seed)


def choice(i: int, o: GenOutput) -> Choice:
    reasoning, content = split_reasoning(o.text)
    return Choice(index=i, message=AssistantMessage(content=content, reasoning_content=reasoning),
                  finish_reason=o.finish_reason, virgo=virgo_info(o))
