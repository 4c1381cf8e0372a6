"""LLaMA-Factory ShareGPT-style JSON, the format the Virgo paper trained from.

One item per example (a JSON array, as LLaMA-Factory's ``data/*.json``; JSONL is read too)::

    {"messages": [{"role": "user", "content": "<image>question"},
                  {"role": "assistant", "content": "<|begin_of_thought|>...<|end_of_solution|>"}],
     "images": ["images/0001.png"], "id": "...", "domain": "math", ...}

One ``<image>`` placeholder per image, all before the question text (Virgo and the Qwen2-VL template put images
first). A system turn, if any, is kept as the record's ``system`` extra and written back as a system turn. The
original ShareGPT layout (``conversations`` with ``from``/``value``, roles human/gpt) is read as well. Other
top-level keys (id, answer, domain, source, anything else) are record fields or extras, and ``"kind": "sft"``
keeps a generic response that looks like a rendered long thought generic (see ``common.optional_fields``);
LLaMA-Factory ignores columns its ``dataset_info.json`` entry does not map. Image paths are relative to the file's
directory, which is LLaMA-Factory's default ``media_dir`` when ``dataset_info.json`` sits next to the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from virgo.data.formats.common import (
    Example,
    ResponseRows,
    atomic_write_text,
    collect,
    example_from_response,
    first_char,
    iter_json_array,
    optional_fields,
    portable_images,
)
from virgo.records import ReadResult, RecordError, read_records, write_records

IMAGE = "<image>"
ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}
LAYOUTS = {"messages": ("role", "content"), "conversations": ("from", "value")}


class LlamaFactoryRows(ResponseRows):
    def parse(self, data: dict[str, Any], base_dir: Path | None) -> Example:
        key = next((k for k in LAYOUTS if k in data), None)
        if key is None:
            raise RecordError("missing required field (a chat: user turn, assistant turn)", field="messages")
        role_key, content_key = LAYOUTS[key]
        turns = data[key]
        if not isinstance(turns, list):
            raise RecordError(f"expected a list of turns, got {type(turns).__name__}", field=key)
        roles = []
        for i, t in enumerate(turns):
            if not isinstance(t, dict):
                raise RecordError(f"expected an object, got {type(t).__name__}", field=f"{key}[{i}]")
            for k in (role_key, content_key):
                if not isinstance(t.get(k), str):
                    got = "nothing" if k not in t else type(t[k]).__name__
                    raise RecordError(f"expected a string, got {got}", field=f"{key}[{i}].{k}")
            if t[role_key] not in ROLES:
                raise RecordError(f"unknown role {t[role_key]!r}; expected one of {sorted(ROLES)}",
                                  field=f"{key}[{i}].{role_key}")
            roles.append(ROLES[t[role_key]])
        fields = {k: v for k, v in data.items() if k != key}
        first = 0
        if roles[:1] == ["system"]:
            if "system" in fields:
                raise RecordError("given both as a top-level field and as a system turn", field="system")
            fields["system"] = turns[0][content_key]
            first = 1
        if roles[first:] != ["user", "assistant"]:
            raise RecordError(f"expected one user turn then one assistant turn (after an optional system turn), "
                              f"got roles {roles}", field=key)
        images = fields.get("images", [])
        if not isinstance(images, list):
            raise RecordError(f"expected a list, got {type(images).__name__}", field="images")
        qfield = f"{key}[{first}].{content_key}"
        question = _strip_placeholders(turns[first][content_key], len(images), qfield)
        return example_from_response(fields, question, turns[first + 1][content_key], base_dir=base_dir,
                                     normalize=self.normalize, question_field=qfield,
                                     response_field=f"{key}[{first + 1}].{content_key}")


def _strip_placeholders(content: str, n_images: int, field: str) -> str:
    k = content.count(IMAGE)
    if k != n_images:
        raise RecordError(f"has {k} {IMAGE} placeholder(s) but 'images' lists {n_images}", field=field)
    if not content.startswith(IMAGE * n_images):
        raise RecordError(f"{IMAGE} placeholders between text are not supported: virgo puts every image before "
                          f"the question (as the Qwen2-VL template does)", field=field)
    return content[len(IMAGE) * n_images:]


def to_row(rec: Example, out_dir: Path) -> dict[str, Any]:
    if IMAGE in rec.question:
        raise RecordError(f"record {rec.id!r}: the question contains {IMAGE!r}, which LLaMA-Factory reads as an "
                          f"image placeholder", field="question")
    fields = optional_fields(rec)
    for k in ("messages", "images"):
        if k in fields:
            raise RecordError(f"record {rec.id!r}: an extra field named {k!r} clashes with LLaMA-Factory's own",
                              field=k)
    messages = []
    if isinstance(fields.get("system"), str):
        messages.append({"role": "system", "content": fields.pop("system")})
    messages.append({"role": "user", "content": IMAGE * len(rec.images) + rec.question})
    messages.append({"role": "assistant", "content": rec.response})
    return {"messages": messages, "images": portable_images(rec.images, out_dir), **fields}


def read(path: Path, *, normalize: bool = False) -> ReadResult:
    parser = LlamaFactoryRows(normalize)
    if first_char(path) == "[":
        return collect(iter_json_array(path), parser, path, path.parent)
    return read_records(path, parser, strict=False, check_images=False)  # type: ignore[arg-type]


def write(path: Path, records: Iterable[Example]) -> int:
    """A JSON array (LLaMA-Factory's usual layout); JSON lines when the file name ends in ``.jsonl``."""
    rows = [to_row(r, path.parent) for r in records]
    if path.suffix.lower() == ".jsonl":
        return write_records(path, rows)
    atomic_write_text(path, json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    return len(rows)


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry that makes LLaMA-Factory read a file written here."""
    return {"file_name": file_name, "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}}


def write_dataset_info(data_file: Path, name: str) -> Path:
    """Add (or replace) ``name`` in the ``dataset_info.json`` next to ``data_file``; other entries are kept."""
    info_path = data_file.parent / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[name] = dataset_info_entry(data_file.name)
    atomic_write_text(info_path, json.dumps(info, ensure_ascii=False, indent=2) + "\n")
    return info_path
