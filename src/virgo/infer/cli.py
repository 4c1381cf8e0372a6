"""`virgo generate`, `virgo chat`, `virgo serve`. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from virgo.infer.backends.openai_backend import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from virgo.infer.config import CHAT_MAX_NEW_TOKENS, CHAT_PROMPT, GenerateConfig

BACKEND_HELP = "transformers (in-process), openai (any OpenAI-compatible server, needs --base-url) or vllm."
CHAT_TEMPLATE_HELP = ("Chat template by name (templates/chat: qwen2vl) or path to a .jinja file; use the one the "
                      "model was trained with (its train_config.yaml).")
# The paper's decoding (greedy, repetition penalty 1.05, 8,192 new tokens, think-boxed): every default below
# comes from GenerateConfig, so the CLI, the library and the server cannot drift apart.
PAPER = GenerateConfig()


def timeout_option() -> typer.models.OptionInfo:
    """``--timeout`` for any command that talks to an OpenAI-compatible server (pass it on as ``timeout=``)."""
    return typer.Option(DEFAULT_TIMEOUT, "--timeout", min=0.001,
                        help="Seconds to wait for each HTTP response (openai backend) before the attempt fails "
                             "and is retried. A long thought on a busy server can take minutes.")


def max_retries_option() -> typer.models.OptionInfo:
    """``--max-retries`` beside `timeout_option` (pass it on as ``max_retries=``)."""
    return typer.Option(DEFAULT_MAX_RETRIES, "--max-retries", min=0,
                        help="Retries per request after a timeout, connection error, 429 or 5xx, with exponential "
                             "backoff (openai backend). 0 = one attempt.")


def _config(**kw):
    try:
        return GenerateConfig(**{k: v for k, v in kw.items() if v is not None})
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def generate_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Checkpoint directory (transformers/vllm) or served "
                              "model name (openai)."),
    problems: Path = typer.Option(..., "--problems", "-p", help="JSONL of Problem records (id, question, answer, "
                                  "images...).", exists=True, dir_okay=False),
    out: Path = typer.Option(..., "--out", "-o", help="Append-only JSONL of Generation records; rerunning "
                             "skips the (problem, sample) pairs already in it."),
    n: int = typer.Option(PAPER.n, "--n", help="Samples per problem (use a temperature > 0 for n > 1)."),
    temperature: float = typer.Option(PAPER.temperature, help="0 = greedy (the paper's setting); > 0 samples."),
    top_p: float = typer.Option(PAPER.top_p, "--top-p", help="Nucleus sampling mass (with a temperature > 0)."),
    repetition_penalty: float = typer.Option(PAPER.repetition_penalty, "--repetition-penalty",
                                             help="1.05 in the paper; 1 = off."),
    max_new_tokens: int = typer.Option(PAPER.max_new_tokens, "--max-new-tokens", help="Token limit per completion "
                                       "(finish_reason 'length' when reached)."),
    thinking_budget: int | None = typer.Option(None, "--thinking-budget", help="Cap on thought tokens: at the cap "
                                               "<|end_of_thought|> is forced and the model writes its solution."),
    force_wait: int = typer.Option(PAPER.force_wait, "--force-wait", help="s1-style budget forcing: replace an "
                                   "early <|end_of_thought|> with 'Wait' up to K times."),
    prompt: str = typer.Option(PAPER.prompt, help="Prompt prefix by name (plain, think-boxed, still2) or path."),
    system: str | None = typer.Option(None, help="System prompt (default: the chat template's)."),
    chat_template: str = typer.Option(PAPER.chat_template, "--chat-template",
                                      help=CHAT_TEMPLATE_HELP + " With --backend openai the server's is used."),
    seed: int = typer.Option(PAPER.seed, help="Base seed; each (problem, sample) gets its own seed derived from it."),
    backend: str = typer.Option("transformers", help=BACKEND_HELP),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. "
                                        "http://127.0.0.1:8000/v1 (openai backend)."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="VIRGO_API_KEY", help="Key for --base-url."),
    concurrency: int = typer.Option(4, help="Parallel HTTP requests (openai backend)."),
    timeout: float = timeout_option(),
    max_retries: int = max_retries_option(),
    batch_size: int = typer.Option(PAPER.batch_size, "--batch-size", help="Rows decoded together (transformers "
                                   "backend)."),
    dtype: str = typer.Option(PAPER.dtype, help="Weights dtype when loading --model: float32, bfloat16, float16."),
    limit: int | None = typer.Option(None, help="Only the first N problems."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with tokens/s."),
) -> None:
    """Batched, resumable long generation: one Generation record per (problem, sample), flushed as it finishes."""
    from virgo.infer.runner import run_generate
    from virgo.records import Problem, RecordError, read_records

    if backend == "openai" and not base_url:
        raise typer.BadParameter("the openai backend needs --base-url", param_hint="--base-url")
    cfg = _config(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                  repetition_penalty=repetition_penalty, n=n, seed=seed, prompt=prompt, system=system,
                  chat_template=chat_template, thinking_budget=thinking_budget, force_wait=force_wait,
                  batch_size=batch_size, dtype=dtype)
    try:
        items = read_records(problems, Problem)
    except RecordError as e:
        raise typer.BadParameter(str(e), param_hint="--problems") from None
    if limit is not None:
        items = items[:limit]
    summary = run_generate(model, items, out, cfg, backend=backend, base_url=base_url, api_key=api_key,
                           concurrency=concurrency, timeout=timeout, max_retries=max_retries, progress=progress)
    typer.echo(json.dumps(summary))
    if summary.get("failed"):
        typer.echo(f"error: {summary['failed']} generation(s) failed, first: {summary['first_error']}. The others "
                   f"are written; rerun the same command to retry only the failed ones.", err=True)
        raise typer.Exit(1)


def chat_cmd(
    question: str | None = typer.Argument(None, help="The question; without it, a conversation on stdin."),
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint directory, or the served model name "
                                     "with --base-url."),
    image: list[Path] = typer.Option([], "--image", "-i", help="Image file for the (first) question; repeatable.",
                                     exists=True, dir_okay=False),
    prompt: str = typer.Option(CHAT_PROMPT, help=f"Prompt prefix by name (plain, think-boxed, still2) or path. "
                               f"{CHAT_PROMPT} here (a conversation); the paper's: {PAPER.prompt}."),
    system: str | None = typer.Option(None, help="System prompt."),
    chat_template: str = typer.Option(PAPER.chat_template, "--chat-template", help=CHAT_TEMPLATE_HELP),
    max_new_tokens: int = typer.Option(CHAT_MAX_NEW_TOKENS, "--max-new-tokens", help=f"Token limit of each answer. "
                                       f"{CHAT_MAX_NEW_TOKENS} here (someone is waiting); the paper's: "
                                       f"{PAPER.max_new_tokens}."),
    temperature: float = typer.Option(PAPER.temperature, help="0 = greedy."),
    top_p: float = typer.Option(PAPER.top_p, "--top-p", help="Nucleus sampling mass."),
    repetition_penalty: float = typer.Option(PAPER.repetition_penalty, "--repetition-penalty", help="1 = off."),
    thinking_budget: int | None = typer.Option(None, "--thinking-budget", help="Cap on thought tokens."),
    force_wait: int = typer.Option(PAPER.force_wait, "--force-wait", help="Extend an early end of thought with "
                                   "'Wait' K times."),
    base_url: str | None = typer.Option(None, "--base-url", help="Chat with an OpenAI-compatible server instead."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="VIRGO_API_KEY", help="Key for --base-url."),
    dtype: str = typer.Option(PAPER.dtype, help="Weights dtype when loading --model."),
) -> None:
    """Chat with a model: the thought streams dimmed, then the answer, each under its own rule.

    Interactive defaults, on purpose not the paper's: a shorter token limit, and the question goes in as typed
    (prompt plain, no boxed-answer instruction), because a person reads each answer as it streams. Greedy
    decoding and the repetition penalty are the paper's. For the paper's exact decoding, as `virgo generate`
    uses it: --max-new-tokens 8192 --prompt think-boxed.
    """
    from virgo.infer.chat import chat
    from virgo.infer.images import ImageError

    if model is None and base_url is None:
        raise typer.BadParameter("give --model (a checkpoint) or --base-url (a server)", param_hint="--model")
    cfg = _config(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                  repetition_penalty=repetition_penalty, prompt=prompt, system=system, chat_template=chat_template,
                  thinking_budget=thinking_budget, force_wait=force_wait, dtype=dtype)
    try:
        chat(model, question, images=[str(p) for p in image], cfg=cfg, base_url=base_url, api_key=api_key)
    except ImageError as e:
        raise typer.BadParameter(str(e), param_hint="--image") from None


def serve_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Checkpoint directory to serve."),
    host: str = typer.Option("127.0.0.1", help="Address to bind. Anything but loopback requires --api-key."),
    port: int = typer.Option(8000, help="Port to listen on."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="VIRGO_API_KEY", help="Clients must send "
                                       "'Authorization: Bearer <key>'."),
    image_root: Path | None = typer.Option(None, "--image-root", help="Directory from which image_url parts may "
                                           "name local files (otherwise only data URLs).", exists=True,
                                           file_okay=False),
    served_model_name: str | None = typer.Option(None, "--served-model-name", help="Name in /v1/models "
                                                 "(default: the directory name)."),
    batch_size: int = typer.Option(PAPER.batch_size, "--batch-size", help="Most requests decoded together."),
    max_new_tokens: int = typer.Option(PAPER.max_new_tokens, "--max-new-tokens", help="Default when a request "
                                       "sets no max_tokens."),
    repetition_penalty: float = typer.Option(PAPER.repetition_penalty, "--repetition-penalty",
                                             help="Default for requests."),
    thinking_budget: int | None = typer.Option(None, "--thinking-budget", help="Default thought-token cap."),
    force_wait: int = typer.Option(PAPER.force_wait, "--force-wait", help="Default s1-style forcing for requests "
                                   "that send no force_wait: an early end of thought becomes 'Wait' up to K times."),
    chat_template: str = typer.Option(PAPER.chat_template, "--chat-template", help=CHAT_TEMPLATE_HELP),
    max_body_mb: float = typer.Option(32.0, "--max-body-mb", help="Larger request bodies get 413."),
    max_image_pixels: int = typer.Option(50_000_000, "--max-image-pixels", help="Larger images get 400 "
                                         "(checked from the header, before decoding)."),
    dtype: str = typer.Option(PAPER.dtype, help="Weights dtype."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """OpenAI-compatible server: /v1/models and /v1/chat/completions, thought in reasoning_content."""
    from virgo.infer.server import check_bind, serve

    try:
        check_bind(host, api_key)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--host") from None
    cfg = _config(max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty,
                  thinking_budget=thinking_budget, force_wait=force_wait, chat_template=chat_template)
    serve(model, host=host, port=port, api_key=api_key, log_level=log_level, image_root=image_root,
          model_name=served_model_name, batch_size=batch_size, dtype=dtype,
          max_body_bytes=int(max_body_mb * 1024 * 1024), max_image_pixels=max_image_pixels, cfg=cfg)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
    app.command("chat")(chat_cmd)
    app.command("serve")(serve_cmd)
