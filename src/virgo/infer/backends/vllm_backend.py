"""Optional in-process vLLM backend (GPU machines). The supported path to vLLM is ``vllm serve`` + the openai
backend; this one exists for single-process scripts and imports vLLM only when built.

The thinking budget and s1 forcing run as s1 does with vLLM: decode the thought with ``stop=[END_THOUGHT]`` and
at most the remaining budget; then either append "Wait" and decode again (forcing), or append the closing
sequence and decode the solution. Each phase continues from the text so far (prompt + output, re-tokenized).
The user's stop strings go to every phase (kept in vLLM's output, so the thought's own stop is told apart, then
cut off).
Not exercised on this CPU machine (vLLM's wheels are CUDA-only); its test skips where vLLM does not import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from virgo.infer.backends.base import Backend
from virgo.infer.budget import CLOSE_TEXT, WAIT_TEXT
from virgo.infer.config import GenerateConfig
from virgo.infer.requests import GenOutput, GenRequest
from virgo.modeling.family import resolve_chat_template
from virgo.modeling.images import open_image
from virgo.prompts import render_chat
from virgo.thought import BEGIN_THOUGHT, END_THOUGHT


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model: str, *, dtype: str = "auto", tensor_parallel_size: int = 1,
                 max_model_len: int | None = None, max_images: int = 8, **llm_kw: Any):
        try:
            from vllm import LLM
        except Exception as e:  # ImportError, or vLLM's own errors on a machine without its platform
            raise ImportError("the vllm backend needs a working vLLM (GPU); otherwise run `vllm serve` elsewhere "
                              "and use --backend openai --base-url ...") from e
        self.model_name = str(model)
        # float32 is this toolkit's CPU default; on a GPU vLLM's "auto" (the checkpoint's dtype) is the sane choice.
        self.llm = LLM(model=str(model), dtype="auto" if dtype == "float32" else dtype,
                       tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                       limit_mm_per_prompt={"image": max_images}, trust_remote_code=False, **llm_kw)
        self.tokenizer = self.llm.get_tokenizer()

    def _params(self, c: GenerateConfig, seed: int, max_tokens: int, stop: list[str] | None = None):
        from vllm import SamplingParams

        # top_k only when set: vLLM's "off" has been -1, and some versions refuse 0
        extra = {"top_k": c.top_k} if c.top_k else {}
        return SamplingParams(temperature=c.temperature, top_p=c.top_p, min_p=c.min_p,
                              presence_penalty=c.presence_penalty, frequency_penalty=c.frequency_penalty,
                              repetition_penalty=c.repetition_penalty, max_tokens=max(1, max_tokens), seed=seed,
                              stop=stop, include_stop_str_in_output=True, skip_special_tokens=False, **extra)

    def _run(self, prompts: list[dict], params: list, stops: list[list[str]]) -> list[tuple[str, int, str, bool]]:
        """(text, tokens, finish reason, whether one of the user's ``stops`` ended it, its text then cut off)."""
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for o, user in zip(outs, stops):
            c = o.outputs[0]
            hit = isinstance(c.stop_reason, str) and c.stop_reason in user  # a stop string, not a token id
            text = c.text[:len(c.text) - len(c.stop_reason)] if hit and c.text.endswith(c.stop_reason) else c.text
            results.append((text, len(c.token_ids), c.finish_reason or "stop", hit))
        return results

    def iter_generate(self, requests: Sequence[GenRequest], cfg: GenerateConfig) -> Iterator[tuple[int, GenOutput]]:
        cfgs = [r.settings(cfg) for r in requests]
        seeds = [r.resolved_seed(cfg) for r in requests]
        base = []
        for r, c in zip(requests, cfgs):
            template = resolve_chat_template(c.chat_template, self.model_name)  # auto: the model family's
            p: dict[str, Any] = {"prompt": render_chat(r.messages, add_generation_prompt=True, template=template)}
            if r.images:
                p["multi_modal_data"] = {"image": [open_image(im) for im in r.images]}
            base.append(p)
        text = [""] * len(requests)
        used = [0] * len(requests)
        waits = [0] * len(requests)
        forced = [False] * len(requests)
        marks: list[list[dict[str, Any]]] = [[] for _ in requests]  # where forced text starts (character offsets)
        finish = ["stop"] * len(requests)
        done: set[int] = set()
        # Thought phases, only for requests with a budget or forcing; the others go straight to the last phase.
        thinking = [i for i, c in enumerate(cfgs) if c.thinking_budget is not None or c.force_wait]
        while thinking:
            params = []
            for i in thinking:
                c = cfgs[i]
                room = c.max_new_tokens - used[i]
                if c.thinking_budget is not None:
                    room = min(room, c.thinking_budget + 1 - used[i])  # +1: the opening marker
                params.append(self._params(c, seeds[i], room, stop=[END_THOUGHT, *c.stop]))
            results = self._run([{**base[i], "prompt": base[i]["prompt"] + text[i]} for i in thinking], params,
                                [cfgs[i].stop for i in thinking])
            still = []
            for i, (t, n, why, hit) in zip(thinking, results):
                c = cfgs[i]
                text[i] += t
                used[i] += n
                if hit:
                    done.add(i)  # the user's stop string, inside the thought
                elif used[i] >= c.max_new_tokens:
                    finish[i] = "length"
                elif t.endswith(END_THOUGHT) and waits[i] < c.force_wait:
                    text[i] = text[i][: -len(END_THOUGHT)]
                    marks[i].append({"kind": "wait", "offset": len(text[i])})
                    text[i] += WAIT_TEXT
                    waits[i] += 1
                    still.append(i)
                elif not t.endswith(END_THOUGHT) and why == "length":
                    marks[i].append({"kind": "budget", "offset": len(text[i])})
                    text[i] += CLOSE_TEXT  # the budget is spent: close the thought, write the solution
                    forced[i] = True
                elif not t.endswith(END_THOUGHT):
                    done.add(i)  # the model ended its turn inside the thought
            thinking = still
        todo = [i for i in range(len(requests)) if finish[i] != "length" and i not in done]
        if todo:
            params = [self._params(cfgs[i], seeds[i], cfgs[i].max_new_tokens - used[i], stop=cfgs[i].stop or None)
                      for i in todo]
            results = self._run([{**base[i], "prompt": base[i]["prompt"] + text[i]} for i in todo], params,
                                [cfgs[i].stop for i in todo])
            for i, (t, n, why, _) in zip(todo, results):
                text[i] += t
                used[i] += n
                finish[i] = "length" if why == "length" else "stop"
        for i in range(len(requests)):
            thought = text[i].split(END_THOUGHT)[0].replace(BEGIN_THOUGHT, "")
            yield i, GenOutput(text=text[i], finish_reason=finish[i], completion_tokens=used[i],
                               prompt_tokens=len(self.tokenizer(base[i]["prompt"])["input_ids"]),
                               thought_tokens=len(self.tokenizer(thought, add_special_tokens=False)["input_ids"]),
                               seed=seeds[i], budget_forced=forced[i], waits=waits[i], interventions=marks[i])
