"""STILL-style JSONL (the STILL-2 long-thought release): ``question``, ``combined_text``, ``domain``.

``combined_text`` is the rendered response (``virgo.thought.render_response``). STILL rows carry no id, no
images and no answer; when writing, virgo adds ``id`` and, when set, ``images``, ``answer``, ``source``, ``kind``
(see ``common.optional_fields``) and the record's extras as further keys (readers of STILL data ignore keys they
do not know), so nothing is lost. A row without ``id`` gets a stable content id (see ``content_id``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from virgo.data.formats.common import Example, ResponseRows, example_from_response, optional_fields, portable_images
from virgo.records import ReadResult, RecordError, read_records, write_records


class StillRows(ResponseRows):
    def parse(self, data: dict[str, Any], base_dir: Path | None) -> Example:
        for name in ("question", "combined_text"):
            if name not in data:
                raise RecordError("missing required field", field=name)
        fields = {k: v for k, v in data.items() if k not in ("question", "combined_text")}
        return example_from_response(fields, data["question"], data["combined_text"], base_dir=base_dir,
                                     normalize=self.normalize, question_field="question",
                                     response_field="combined_text")


def to_row(rec: Example, out_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"question": rec.question, "combined_text": rec.response, "domain": rec.domain}
    fields = optional_fields(rec)
    fields.pop("domain", None)
    if "combined_text" in fields:
        raise RecordError(f"record {rec.id!r}: an extra field named 'combined_text' clashes with STILL's own",
                          field="combined_text")
    if rec.images:
        row["images"] = portable_images(rec.images, out_dir)
    return {**row, **fields}


def read(path: Path, *, normalize: bool = False) -> ReadResult:
    return read_records(path, StillRows(normalize), strict=False, check_images=False)  # type: ignore[arg-type]


def write(path: Path, records: Iterable[Example]) -> int:
    return write_records(path, [to_row(r, path.parent) for r in records])
