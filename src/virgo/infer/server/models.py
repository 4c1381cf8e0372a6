"""The OpenAI chat-completions wire format as pydantic models: what `virgo serve` accepts and what it returns.

Field names are OpenAI's (https://platform.openai.com/docs/api-reference/chat). Every number is strict (no
strings, no booleans, no ``5.0`` for an integer), finite (a NaN temperature passes every comparison and yields
garbage) and bounded, so a request either fits the decoder or gets a 400 that names the field. Fields this server
does not use (``user``, ``metadata``, ``logprobs``, ...) are ignored, as OpenAI-compatible servers do;
``logit_bias`` and a ``response_format`` other than text are refused, because ignoring them would silently change
the output. ``stop`` strings end the output before them, as vLLM's and OpenAI's do. Our extensions sit beside
OpenAI's fields: ``repetition_penalty``, ``top_k`` and ``min_p`` (as vLLM takes them), ``thinking_budget`` and
``force_wait`` (`virgo.infer.budget`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

INT32_MAX = 2**31 - 1
MAX_N = 16  # choices per request: each one is a row in the decoder
# Stop strings per request and their length: each is searched in every row's new text at every step.
MAX_STOPS = 16
MAX_STOP_CHARS = 256
# Outside these the float32 logits overflow (a penalty of 1e-300 divides a logit into inf); no use lies beyond.
MIN_PENALTY, MAX_PENALTY = 0.01, 100.0


def _valid_unicode(s: str) -> str:
    # JSON can spell a lone surrogate ("\ud800"); it is not text, and the tokenizer cannot encode it.
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (not valid Unicode)") from None
    return s


Text = Annotated[str, Strict(), AfterValidator(_valid_unicode)]
StopText = Annotated[Text, Field(min_length=1, max_length=MAX_STOP_CHARS)]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageURL(_In):
    url: Text = Field(min_length=1, description="A data URL (data:image/png;base64,...), or with --image-root a "
                                                "path under it.")
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_In):
    type: Literal["text"]
    text: Text


class ImagePart(_In):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_In):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[ContentPart] | None = None
    name: Text | None = None

    @model_validator(mode="after")
    def _images_only_from_the_user(self) -> ChatMessage:
        if self.role != "user" and isinstance(self.content, list) and any(
                isinstance(p, ImagePart) for p in self.content):
            raise ValueError("images are only allowed in user messages")
        return self


class StreamOptions(_In):
    include_usage: Bool | None = None


class ChatCompletionRequest(_In):
    """A ``POST /v1/chat/completions`` body. ``None`` (or absent) means the server's default."""

    model: Text = Field(description="The served model name or one of its aliases (--served-model-name).")
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: Int | None = Field(None, ge=1, le=INT32_MAX)
    max_completion_tokens: Int | None = Field(None, ge=1, le=INT32_MAX, description="Takes precedence over "
                                                                                    "max_tokens.")
    temperature: Float | None = Field(None, ge=0, le=2)
    top_p: Float | None = Field(None, gt=0, le=1)
    top_k: Int | None = Field(None, ge=-1, le=INT32_MAX, description="Sample among the k most probable tokens; "
                                                                     "0 or -1 (vLLM's off) = all.")
    min_p: Float | None = Field(None, ge=0, le=1, description="Drop tokens below min_p x the most probable one.")
    n: Int | None = Field(None, ge=1, le=MAX_N)
    stream: Bool | None = None
    stream_options: StreamOptions | None = None
    stop: StopText | Annotated[list[StopText], Field(max_length=MAX_STOPS)] | None = Field(
        None, description="Stop strings: the output ends where one first appears, without it (null or []: none, "
                          "whatever the server's --stop).")
    seed: Int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    repetition_penalty: Float | None = Field(None, ge=MIN_PENALTY, le=MAX_PENALTY)
    presence_penalty: Float | None = Field(None, ge=-2, le=2)
    frequency_penalty: Float | None = Field(None, ge=-2, le=2)
    thinking_budget: Int | None = Field(None, ge=0, le=INT32_MAX, description="Cap on thought tokens; null = no cap "
                                                                                "(left out: the server's default).")
    force_wait: Int | None = Field(None, ge=0, le=INT32_MAX, description="s1-style forcing: an early end of "
                                                                         "thought becomes 'Wait', up to K times.")
    # Read only to refuse them (`_refused`)
    logit_bias: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("logit_bias", "response_format")
    @classmethod
    def _refused(cls, value: Any, info: ValidationInfo) -> Any:
        """OpenAI fields this server does not implement and that would change the answer if honoured: refused (a
        400 naming the field), not ignored, so a client never gets text made without what it asked for. Their
        no-op values (an empty bias, the text format) pass."""
        if info.field_name == "response_format":
            kind = (value or {}).get("type", "text")
            if kind != "text":
                raise ValueError(f"{kind!r} is not supported by this server (only 'text')")
        elif value:
            raise ValueError("not supported by this server")
        return value

    @property
    def token_limit(self) -> int | None:
        """The completion's token limit, if the request sets one (``max_completion_tokens`` first)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# -- responses -------------------------------------------------------------------------------------------------

def _none(value: object) -> bool:
    return value is None


class ReasoningDetails(BaseModel):
    reasoning_tokens: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: ReasoningDetails


class VirgoInfo(BaseModel):
    """The raw output beside OpenAI's fields: what `virgo.infer.backends.openai_backend` reads back."""

    text: str
    thought_tokens: int | None
    budget_forced: bool
    waits: int
    interventions: list[dict[str, Any]] = []  # {"kind": "wait" | "budget", "offset": character offset in text}
    seed: int | None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None  # the thought, as reasoning servers return it


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None
    virgo: VirgoInfo


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = Field(None, exclude_if=_none)
    content: str | None = Field(None, exclude_if=_none)
    reasoning_content: str | None = Field(None, exclude_if=_none)


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    virgo: VirgoInfo | None = Field(None, exclude_if=_none)


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = Field(None, exclude_if=_none)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "virgo"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error this server answers, in OpenAI's shape."""

    error: ErrorDetail


class Health(BaseModel):
    """``GET /health``: ready = a request now would be admitted; busy = the queue is full (it would get 429)."""

    status: Literal["ready", "busy", "down"]
    queued: int  # completions waiting for a decoding slot
    active: int  # completions being decoded
    max_queue: int
    batch_size: int
    stats: dict[str, float]
