"""Optional LLM judge for what the rules leave undecided (extract, then judge; the paper's prompts).

Only two kinds of grade go to the judge: ``no_answer`` (no rule found a final answer: the judge extracts
one with the ``extract`` prompt, then scores it) and grades marked ``extra["undecided"]`` (the rules
could not really compare the answers: the judge scores the extracted answer with the ``score`` prompt).
Everything the rules decided stays as it is. The judge talks to any OpenAI-compatible endpoint:

* base URL: ``Judge(base_url=...)`` or ``$VIRGO_JUDGE_URL`` / ``$OPENAI_BASE_URL``
* API key: ``api_key=...`` or ``$VIRGO_JUDGE_API_KEY`` / ``$OPENAI_API_KEY`` (local servers need none)
* model: ``model=...`` or ``$VIRGO_JUDGE_MODEL``; else the first model the server lists

Replies are cached on disk (append-only JSONL, default ``$VIRGO_CACHE/judge-cache.jsonl``), keyed by
(judge model, question, gold, extracted answer) for scores and (judge model, question, response tail)
for extractions, so re-grading never asks twice. A failing endpoint leaves the rule grade in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from virgo.prompts import _load_template
from virgo.records import AppendWriter, Generation, Grade, Problem, RecordError
from virgo.records.jsonl import iter_lines, loads
from virgo.thought import FORMATS, strip_thought

RESPONSE_TAIL_CHARS = 2000  # how much of the answer region the extraction prompt sees


def default_cache_path() -> Path:
    return Path(os.environ.get("VIRGO_CACHE", Path.home() / ".cache" / "virgo")) / "judge-cache.jsonl"


def load_judge_prompt(name: str) -> str:
    """A judge prompt template (``extract`` or ``score``) by name, or a path to a .txt file."""
    return _load_template("judge", ".txt", name).strip()


class JudgeCache:
    """An append-only JSONL map from a key digest to a reply; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._data: dict[str, str | None] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            for _, text, err in iter_lines(self.path):
                if err is None and text:
                    try:
                        row = loads(text)
                        self._data[row["key"]] = row["value"]
                    except (RecordError, KeyError, TypeError):
                        continue  # a torn last line from a killed run
        self._writer: AppendWriter | None = None

    @staticmethod
    def key(*parts: str | None) -> str:
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()

    def get(self, k: str) -> tuple[bool, str | None]:
        with self._lock:
            return (k in self._data, self._data.get(k))

    def put(self, k: str, value: str | None, kind: str) -> None:
        with self._lock:
            self._data[k] = value
            if self._writer is None:
                self._writer = AppendWriter(self.path, fsync=False)
            self._writer.write({"key": k, "kind": kind, "value": value})

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


class Judge:
    """An LLM judge behind an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, base_url: str | None = None, *, api_key: str | None = None, model: str | None = None,
                 cache_path: str | Path | None = None, concurrency: int = 8, timeout: float = 60.0,
                 max_attempts: int = 3):
        self.base_url = base_url or os.environ.get("VIRGO_JUDGE_URL") or os.environ.get("OPENAI_BASE_URL")
        if not self.base_url:
            raise ValueError("no judge endpoint: pass base_url or set VIRGO_JUDGE_URL (or OPENAI_BASE_URL)")
        self.api_key = api_key or os.environ.get("VIRGO_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._model = model or os.environ.get("VIRGO_JUDGE_MODEL")
        self.cache = JudgeCache(cache_path or default_cache_path())
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.requests = 0  # chat requests actually sent (cache hits send none)
        self._client = None
        self._lock = threading.Lock()

    # --- endpoint ---------------------------------------------------------------------------------
    def _openai(self):
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                self._client = OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                                      max_retries=2)
            return self._client

    @property
    def model(self) -> str:
        if self._model is None:
            models = self._openai().models.list()
            ids = [m.id for m in models.data]
            if not ids:
                raise RuntimeError(f"judge endpoint {self.base_url} lists no models; pass a model name")
            self._model = ids[0]
        return self._model

    def _ask(self, prompt: str) -> str:
        with self._lock:
            self.requests += 1
        reply = self._openai().chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=256)
        return (reply.choices[0].message.content or "").strip()

    # --- the two prompts ----------------------------------------------------------------------------
    def extract(self, question: str, response: str) -> str | None:
        """The answer the judge reads in a response (None when it finds none)."""
        tail = response[-RESPONSE_TAIL_CHARS:]
        k = JudgeCache.key(self.model, "extract", question, tail)
        hit, value = self.cache.get(k)
        if not hit:
            reply = self._ask(load_judge_prompt("extract").format(response=tail))
            value = reply.replace("Extracted Answer:", "").replace("Extracted answer:", "").strip()
            value = None if value.lower() in ("", "null", "none") else value
            self.cache.put(k, value, "extract")
        return value

    def score(self, question: str, gold: str, extracted: str) -> bool | None:
        """Whether the judge finds ``extracted`` consistent with ``gold`` (None if it never answered 0/1)."""
        k = JudgeCache.key(self.model, "score", question, gold, extracted)
        hit, value = self.cache.get(k)
        if not hit:
            prompt = load_judge_prompt("score").format(question=question, gt=gold, extraction=extracted)
            value = None
            for _ in range(self.max_attempts):  # the original re-asks until the reply is exactly 0 or 1
                reply = self._ask(prompt).replace("Judgement:", "").strip()
                if reply[:1] in ("0", "1"):
                    value = reply[:1]
                    break
            if value is None:
                return None
            self.cache.put(k, value, "score")
        return None if value is None else value == "1"

    # --- grades ------------------------------------------------------------------------------------
    @staticmethod
    def wants(grade: Grade) -> bool:
        return grade.verdict == "no_answer" or bool(grade.extra.get("undecided"))

    def review_one(self, problem: Problem, generation: Generation, grade: Grade) -> Grade:
        """The judge's grade where the rules left ``grade`` undecided; else ``grade`` unchanged."""
        if not self.wants(grade):
            return grade
        try:
            extracted, extracted_by = grade.extracted, grade.extracted_by
            if grade.verdict == "no_answer":
                region = strip_thought(generation.text, FORMATS)  # never the thought, in any known layout
                if not region.strip():
                    return grade
                extracted = self.extract(problem.question, region)
                if extracted is None:
                    return dataclasses.replace(grade, detail=f"{grade.detail}; the judge found no answer either")
                extracted_by = "judge"
            ok = self.score(problem.question, problem.answer, extracted or "")
        except Exception as e:  # noqa: BLE001  (an unreachable judge, whatever the error, must not lose the rule grade)
            return dataclasses.replace(grade, detail=f"{grade.detail}; judge failed: {type(e).__name__}: {e}"[:500])
        if ok is None:
            return dataclasses.replace(grade, detail=f"{grade.detail}; the judge gave no 0/1 verdict")
        return dataclasses.replace(
            grade, verdict="correct" if ok else "wrong", extracted=extracted, extracted_by=extracted_by,
            graded_by="judge", detail=f"judge {self.model}; rules said {grade.verdict} ({grade.graded_by})",
            extra={k: v for k, v in grade.extra.items() if k != "undecided"})

    def review(self, items: Sequence[tuple[Problem, Generation]], grades: Sequence[Grade],
               progress: bool = False) -> list[Grade]:
        """Judge the undecided grades among ``grades`` (aligned with ``items``), concurrently."""
        todo = [i for i, g in enumerate(grades) if self.wants(g)]
        out = list(grades)
        if not todo:
            return out
        from tqdm import tqdm

        with ThreadPoolExecutor(max_workers=self.concurrency) as ex, \
                tqdm(total=len(todo), desc="judging", unit="item", disable=not progress) as bar:
            futures = {i: ex.submit(self.review_one, items[i][0], items[i][1], grades[i]) for i in todo}
            for i, fut in futures.items():
                out[i] = fut.result()
                bar.update(1)
        return out

    def close(self) -> None:
        self.cache.close()
