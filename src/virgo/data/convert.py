"""``virgo data convert``: move long-thought examples between formats without losing anything.

Usage::

    virgo data convert train.jsonl lf/virgo_5k.json --dataset-name virgo_5k   # -> LLaMA-Factory + dataset_info
    virgo data convert still_5k.jsonl train.jsonl --from still                 # STILL-2 release -> virgo records
    virgo data convert train.jsonl hf_dir/                                     # -> datasets.save_to_disk
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from virgo.data.formats import read_dataset, resolve_format
from virgo.data.formats.llamafactory import write_dataset_info
from virgo.records import RecordError, SFTExample
from virgo.thought import Status, parse_response, split_response


@dataclass
class ConvertResult:
    source_format: str
    target_format: str
    read: int
    written: int
    errors: list[RecordError] = field(default_factory=list)
    dataset_info: Path | None = None
    verbatim: int = 0  # complete long thoughts kept as exact text (not in render_response's exact layout)


def convert(src: str | Path, dst: str | Path, *, src_format: str | None = None, dst_format: str | None = None,
            normalize: bool = False, dataset_name: str | None = None) -> ConvertResult:
    """Read ``src``, write its good records to ``dst``; bad items come back as located errors (never dropped
    silently: the caller reports them). ``dataset_name`` also registers the output in LLaMA-Factory's
    ``dataset_info.json`` next to it (llamafactory output only)."""
    src, dst = Path(src), Path(dst)
    fin, result = read_dataset(src, src_format, normalize=normalize)
    fout = resolve_format(dst, dst_format, output=True)
    if dataset_name and fout.name != "llamafactory":
        raise ValueError(f"--dataset-name registers a LLaMA-Factory dataset; the output format is {fout.name}")
    written = fout.write(dst, result.records)
    info = write_dataset_info(dst, dataset_name) if dataset_name else None
    # (One in the exact layout is generic on purpose: its row said "kind": "sft".)
    verbatim = sum(1 for r in result.records if isinstance(r, SFTExample)
                   and parse_response(r.response).status is Status.COMPLETE and split_response(r.response) is None)
    return ConvertResult(fin.name, fout.name, len(result.records) + len(result.errors), written, result.errors, info,
                         verbatim)
