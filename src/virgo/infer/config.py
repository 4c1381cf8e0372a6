"""Inference configs: how to decode (`GenerateConfig`, shared by every backend, stage and the server), where to
decode (`EngineConfig`), and the `virgo generate` / `virgo chat` commands' own configs that nest them.

`GenerateConfig` is the one place a decoding setting is declared: `virgo generate`, `chat`, `serve`, `eval`,
`distill` and the demo all nest it, so ``--thinking-budget`` means the same everywhere and takes effect in one
function (the budget state machine in `virgo.infer.budget`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from virgo.config.fields import opt, section
from virgo.prompts import load_chat_template

# `virgo chat` departs from the paper's decoding on purpose: a person waits for each streamed answer (2,048
# tokens, not 8,192), and a conversation wants no "\boxed{}" instruction on every turn. `virgo chat
# --max-new-tokens 8192 --prompt think-boxed` decodes as the paper does.
CHAT_MAX_NEW_TOKENS = 2048
CHAT_PROMPT = "plain"
# A long thought from a busy server takes minutes; the timeout bounds one attempt, retries come on top.
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 5
BACKENDS = ("transformers", "openai", "vllm")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class GenerateConfig:
    """How to generate. Defaults are the paper's: greedy, repetition penalty 1.05, up to 8,192 new tokens."""

    max_new_tokens: int = opt(8192, ge=1, help="Token limit per completion (finish_reason 'length' when reached); "
                              "the paper's is 8,192.")
    temperature: float = opt(0.0, ge=0, help="0 = greedy (the paper's setting); > 0 samples (with top_p).")
    top_p: float = opt(1.0, gt=0, le=1, help="Nucleus sampling mass (with a temperature > 0).")
    top_k: int = opt(0, ge=0, help="Sample among the k most probable tokens only (with a temperature > 0); 0 = off. "
                     "Qwen3's model cards recommend 20 for thinking mode.")
    min_p: float = opt(0.0, ge=0, le=1, help="Drop tokens less probable than min_p x the most probable one (with a "
                       "temperature > 0); 0 = off.")
    repetition_penalty: float = opt(1.05, gt=0, help="The paper's is 1.05; 1 = off.")
    presence_penalty: float = opt(0.0, ge=-2, le=2, help="OpenAI's: subtracted from the score of every token already "
                                  "in the output; 0 = off.")
    frequency_penalty: float = opt(0.0, ge=-2, le=2, help="OpenAI's: subtracted once for each time a token is already "
                                   "in the output; 0 = off.")
    stop: list[str] = opt([], help="Stop string (repeatable): the output ends where one first appears, without "
                          "it (OpenAI's and vLLM's stop; searched in the whole output, thought included).")
    n: int = opt(1, ge=1, help="Samples per problem (use a temperature > 0 for n > 1).")
    seed: int = opt(0, help="Base seed: each (problem, sample) draws from its own seed derived from it, so results "
                    "do not depend on batching, order or resumption.")
    prompt: str = opt("think-boxed", help="Prompt prefix by name (plain, think-boxed, still2) or path to a .txt "
                      "file; think-boxed is the paper's 'Please first think deeply ... \\boxed{}'.")
    system: str | None = opt(None, help="System prompt; null = the chat template's default.")
    chat_template: str = opt("auto", help="Chat template by name (templates/chat: qwen2vl, qwen2_5vl, qwen3vl), path "
                             "to a .jinja file, or auto (the model family's official template with the thought "
                             "markers; what `virgo train` uses by default). With the openai backend the server's "
                             "own template is used.")
    thinking_budget: int | None = opt(None, ge=0, help="Cap on thought tokens: at the cap <|end_of_thought|> is "
                                      "forced and the model writes its solution. null = no cap.")
    force_wait: int = opt(0, ge=0, help="s1-style budget forcing: an early end of thought is replaced by 'Wait', "
                          "up to K times.")
    batch_size: int = opt(8, ge=1, help="Rows decoded together (transformers backend); a finished row's place goes "
                          "to the next request at once (continuous batching).")
    dtype: str = opt("float32", choices=DTYPES, help="Weights dtype when a backend loads a model from a path.")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        from virgo.config.load import check_fields

        check_fields(self)  # bounds declared above; NaN refused: a NaN temperature passes every comparison
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop: every stop string must be non-empty text, got {self.stop!r}")
        if self.chat_template != "auto":
            try:
                load_chat_template(self.chat_template)  # cached: cheap on every replace()
            except ValueError as e:
                raise ValueError(f"chat_template: {e}") from None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes: Any) -> GenerateConfig:
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict[str, Any]:
        """The decoding settings a generation record carries (what determines its text)."""
        # Later settings only when set: outputs written before they existed keep resuming (no key in their identity)
        later = {"top_k": self.top_k, "min_p": self.min_p, "presence_penalty": self.presence_penalty,
                 "frequency_penalty": self.frequency_penalty, "stop": list(self.stop)}
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "prompt": self.prompt,
            "system": self.system,
            "chat_template": self.chat_template,
            "thinking_budget": self.thinking_budget,
            "force_wait": self.force_wait,
            **{k: v for k, v in later.items() if v},
        }


@dataclass
class ClientConfig:
    """How requests reach an OpenAI-compatible server (ignored by in-process backends)."""

    api_key: str | None = opt(None, env="VIRGO_API_KEY", secret=True, help="Key for the server (prefer the "
                              "environment variable).")
    concurrency: int = opt(4, ge=1, help="Requests in flight per endpoint.")
    replicas: list[str] = opt([], help="More endpoints serving the same model (repeatable), e.g. one `vllm serve` "
                              "per node: each request goes to the least busy of --base-url and these, a failed "
                              "attempt is retried at once on another, and one that stops answering rests.")
    timeout: float = opt(DEFAULT_TIMEOUT, gt=0, help="Seconds to wait for each HTTP response before the attempt "
                         "fails and is retried. A long thought on a busy server takes minutes.")
    max_retries: int = opt(DEFAULT_MAX_RETRIES, ge=0, help="Retries per request after a timeout, connection error, "
                           "429 or 5xx, with exponential backoff. 0 = one attempt.")

    sampling_extras: bool = opt(True, help="Send the decoding settings beyond OpenAI's API (repetition_penalty, "
                                "top_k, min_p: vLLM's; thinking_budget, force_wait: virgo serve's), off values "
                                "included, so no server default changes the text. Off for an API that rejects "
                                "unknown fields; then those settings must be off.")

    def kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "concurrency": self.concurrency, "timeout": self.timeout,
                "max_retries": self.max_retries, "sampling_extras": self.sampling_extras,
                **({"replicas": list(self.replicas)} if self.replicas else {})}


@dataclass
class EngineConfig:
    """Where generation runs: in this process (transformers) or behind an OpenAI-compatible server."""

    backend: str = opt("transformers", choices=BACKENDS, help="transformers (in-process), openai (any "
                       "OpenAI-compatible server such as `vllm serve` or `virgo serve`; needs --base-url) or vllm.")
    base_url: str | None = opt(None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (openai "
                               "backend).")
    client: ClientConfig = section(ClientConfig, help="HTTP client (openai backend)")

    def validate(self) -> None:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("the openai backend needs --base-url")
        if self.client.replicas and self.backend != "openai":
            raise ValueError("--replicas are endpoints of the openai backend (--backend openai --base-url ...)")

    def kwargs(self) -> dict[str, Any]:
        """Keywords for `run_generate` / `make_backend` (in-process backends ignore the HTTP ones)."""
        return {"backend": self.backend, "base_url": self.base_url, **self.client.kwargs()}


@dataclass
class GenerateRunConfig:
    """`virgo generate`: problems in, one Generation record per (problem, sample) out, resumable."""

    model: str = opt(short="-m", help="Checkpoint directory or hub id (transformers / vllm), or the served model "
                     "name (openai).")
    problems: str = opt(short="-p", path=True, help="JSONL of Problem records (id, question, answer, images...).")
    out: str = opt(short="-o", path=True, help="Append-only JSONL of Generation records; rerunning skips the "
                   "(problem, sample) pairs already in it.")
    limit: int | None = opt(None, ge=1, help="Only the first N problems.")
    force: bool = opt(False, help="Append to --out even when it was written with other settings (model, prompt, "
                      "decoding); without it such a rerun refuses.")
    progress: bool = opt(True, help="Show a progress bar with tokens/s.")
    generate: GenerateConfig = section(GenerateConfig, help="Decoding")
    engine: EngineConfig = section(EngineConfig, help="Backend")


@dataclass
class ChatConfig:
    """`virgo chat`: interactive defaults (shorter answers, the question as typed), greedy as the paper."""

    question: str | None = opt(None, positional=True, help="The question; without it, a conversation on stdin.")
    model: str | None = opt(None, short="-m", help="Checkpoint directory, or the served model name with "
                            "--base-url.")
    image: list[str] = opt([], short="-i", path=True, help="Image file for the (first) question; repeatable.")
    base_url: str | None = opt(None, help="Chat with an OpenAI-compatible server instead of loading --model.")
    api_key: str | None = opt(None, env="VIRGO_API_KEY", secret=True, help="Key for --base-url.")
    sampling_extras: bool = opt(True, help="With --base-url: send the settings beyond OpenAI's API, off values "
                                "included (see `virgo generate --help`); off for an API that rejects them.")
    generate: GenerateConfig = section(GenerateConfig, help="Decoding", factory=lambda: GenerateConfig(
        max_new_tokens=CHAT_MAX_NEW_TOKENS, prompt=CHAT_PROMPT))

    def validate(self) -> None:
        if self.model is None and self.base_url is None:
            raise ValueError("give --model (a checkpoint) or --base-url (a server)")


def sample_seed(seed: int, problem_id: str, sample: int) -> int:
    """A seed per (problem, sample): results do not depend on batch composition, order or resumption."""
    digest = hashlib.sha256(f"{seed}\0{problem_id}\0{sample}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
