"""Chat templates and prompt prefixes, loaded from files by name.

Chat templates (``templates/chat/*.jinja``): each supported model family's official template, ``qwen2vl``
(the default: Qwen2-VL's, with its default system prompt and images before text), ``qwen2_5vl`` and ``qwen3vl``;
each model family names its own (`virgo.modeling.family.Family.chat_template`). Prompt prefixes
(``templates/prompts/*.txt``). A recipe or CLI names them; a path to a file works too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CHAT_TEMPLATE = "qwen2vl"
DEFAULT_SYSTEM = "You are a helpful assistant."
END_OF_TURN = "<|im_end|>"
# The chat template's structural tokens (Qwen2-VL's). They never belong inside a response: a model that emits
# one (a tiny model can sample <|image_pad|>) makes a sample the template cannot represent; an <|image_pad|> in
# a trained response even breaks the image-token count of its batch.
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", END_OF_TURN, "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")


def _templates_dir() -> Path:
    return Path(str(resources.files("virgo") / "templates"))


def available_prompts() -> list[str]:
    return sorted(p.stem for p in (_templates_dir() / "prompts").glob("*.txt"))


def available_chat_templates() -> list[str]:
    return sorted(p.stem for p in (_templates_dir() / "chat").glob("*.jinja"))


def _load_template(kind: str, suffix: str, name_or_path: str) -> str:
    """A packaged template ``templates/<kind>/<name><suffix>`` by name, or any file with that suffix by path."""
    p = Path(name_or_path)
    if p.suffix == suffix and p.exists():
        return p.read_text(encoding="utf-8")
    f = _templates_dir() / kind / f"{name_or_path}{suffix}"
    if not f.exists():
        known = ", ".join(sorted(q.stem for q in (_templates_dir() / kind).glob(f"*{suffix}")))
        raise ValueError(f"unknown {kind} template {name_or_path!r}; known: {known} (or a path to a {suffix} file)")
    return f.read_text(encoding="utf-8")


@cache
def load_prompt(name_or_path: str) -> str:
    """A prompt prefix by name (``think-boxed``) or by path to a text file."""
    return _load_template("prompts", ".txt", name_or_path)


@cache
def load_chat_template(name_or_path: str = DEFAULT_CHAT_TEMPLATE) -> str:
    """A chat template by name (``qwen2vl``, ``qwen2_5vl``, ``qwen3vl``) or by path to a .jinja file."""
    return _load_template("chat", ".jinja", name_or_path)


def user_content(question: str, num_images: int = 0, prompt: str = "plain") -> list[dict[str, Any]]:
    """User-turn content parts: every image first, then the prompt prefix and the question (as Virgo does)."""
    parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
    parts.append({"type": "text", "text": load_prompt(prompt) + question})
    return parts


def build_messages(question: str, num_images: int = 0, *, prompt: str = "plain", system: str | None = None,
                   response: str | None = None) -> list[dict[str, Any]]:
    """Chat messages for one problem; with ``response`` the assistant turn is included (for training)."""
    messages: list[dict[str, Any]] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user_content(question, num_images, prompt)})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


@cache
def _compiled_chat_template(name_or_path: str):
    # Compiling the template costs ~10 ms; rendering it ~0.1 ms. Training renders every example twice.
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(load_chat_template(name_or_path))


def render_chat(messages: list[dict[str, Any]], *, add_generation_prompt: bool = False,
                template: str = DEFAULT_CHAT_TEMPLATE) -> str:
    """Render messages with the named chat template (jinja2, like transformers' apply_chat_template)."""
    return _compiled_chat_template(template).render(messages=messages, add_generation_prompt=add_generation_prompt)
