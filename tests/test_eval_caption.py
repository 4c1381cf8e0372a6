"""Perception ablation, pure parts: caption files are read with located errors and replace images in order."""

from __future__ import annotations

import json

import pytest

from virgo.eval.caption import apply_captions, caption_requests, read_captions
from virgo.records import Problem, RecordError


def _problems(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    return [Problem(id="p1", question="In [image 2], compare with [image 1].", answer="A", images=[str(a), str(b)]),
            Problem(id="p2", question="No picture.", answer="3"),
            Problem(id="p3", question="What is shown?", answer="B", images=[str(b)])]


def test_captions_by_image_name_and_by_item(tmp_path):
    probs = _problems(tmp_path)
    (tmp_path / "caps.jsonl").write_text(
        json.dumps({"image": "a.png", "caption": "a red square"}) + "\n"
        + json.dumps({"image": str(tmp_path / "b.png"), "caption": "a blue circle"}) + "\n"
        + json.dumps({"id": "p3", "captions": ["an override for p3"]}) + "\n")
    out = apply_captions(probs, read_captions(tmp_path / "caps.jsonl"))
    assert out[0].images == [] and out[0].meta["captioned"] is True
    assert "[image 1]: a red square\n[image 2]: a blue circle\n\nIn [image 2], compare" in out[0].question
    assert out[1] is probs[1]  # no images: unchanged
    assert "[image 1]: an override for p3" in out[2].question
    assert probs[0].images  # the originals are untouched


def test_missing_caption_is_an_error_naming_the_item(tmp_path):
    probs = _problems(tmp_path)
    (tmp_path / "caps.jsonl").write_text(json.dumps({"image": "a.png", "caption": "only a"}) + "\n")
    with pytest.raises(KeyError, match="image 2 of item p1"):
        apply_captions(probs, read_captions(tmp_path / "caps.jsonl"))
    lenient = apply_captions(probs, read_captions(tmp_path / "caps.jsonl"), strict=False)
    assert "(no description available)" in lenient[0].question


def test_bad_caption_line_is_located(tmp_path):
    (tmp_path / "caps.jsonl").write_text(json.dumps({"image": "a.png", "caption": "ok"}) + "\n{\"caption\": 3}\n")
    with pytest.raises(RecordError, match=r"caps.jsonl:2"):
        read_captions(tmp_path / "caps.jsonl")


def test_one_caption_request_per_distinct_image(tmp_path):
    reqs = caption_requests(_problems(tmp_path))
    assert len(reqs) == 2 and all(len(r.images) == 1 for r in reqs)
