"""The decoding loop: greedy equals transformers' generate (with and without its KV cache), batched equals
one-by-one, sampling is reproducible per (problem, sample), stop and length finish reasons."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from virgo.infer import GenerateConfig, GenRequest, make_backend
from virgo.infer.backends.base import GenerationFailures
from virgo.prompts import END_OF_TURN, build_messages, render_chat

MAX = 24


@pytest.fixture(scope="module")
def backend(tiny_model):
    return make_backend("transformers", model=tiny_model)


@pytest.fixture(scope="module")
def requests_mixed():
    red = Image.new("RGB", (40, 40), (200, 30, 30))
    wide = Image.new("RGB", (90, 30), (20, 200, 30))
    return [
        GenRequest(build_messages("What is 12 + 7?", 0, prompt="think-boxed"), id="a"),
        GenRequest(build_messages("What colour is the square?", 1), images=[red], id="b"),
        GenRequest(build_messages("Hi", 0), id="c"),
        GenRequest(build_messages("Compare the two pictures, then add 3 and 4.", 2), images=[wide, red], id="d"),
    ]


def hf_greedy(tiny_model, req: GenRequest, max_new_tokens: int, penalty: float, use_cache: bool = True) -> list[int]:
    model, processor = tiny_model
    text = render_chat(req.messages, add_generation_prompt=True)
    x = processor(text=[text], images=req.images or None, return_tensors="pt")
    with torch.no_grad():
        g = model.generate(**x, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=penalty,
                           use_cache=use_cache)
    return g[0, x["input_ids"].shape[1]:].tolist()


def with_stop(tokenizer, out) -> list[int]:
    return out.token_ids + ([tokenizer.convert_tokens_to_ids(END_OF_TURN)] if out.finish_reason == "stop" else [])


@pytest.mark.parametrize("penalty", [1.05, 1.3])
def test_greedy_equals_transformers_generate_with_and_without_cache(backend, tiny_model, requests_mixed, penalty):
    cfg = GenerateConfig(max_new_tokens=MAX, repetition_penalty=penalty)
    tok = tiny_model[1].tokenizer
    for req in requests_mixed[:2]:  # text only, and with an image
        mine = with_stop(tok, backend.generate([req], cfg)[0])
        assert mine == hf_greedy(tiny_model, req, MAX, penalty)
        assert mine == hf_greedy(tiny_model, req, MAX, penalty, use_cache=False)


def test_batched_equals_one_by_one(backend, requests_mixed):
    cfg = GenerateConfig(max_new_tokens=MAX, repetition_penalty=1.3, batch_size=4)
    batched = backend.generate(requests_mixed, cfg)
    single = [backend.generate([r], cfg.replace(batch_size=1))[0] for r in requests_mixed]
    assert [o.token_ids for o in batched] == [o.token_ids for o in single]
    assert len({tuple(o.token_ids) for o in batched}) == len(requests_mixed)  # distinct prompts, distinct outputs
    assert [o.prompt_tokens for o in batched] == [o.prompt_tokens for o in single]
    assert batched[1].prompt_tokens > batched[2].prompt_tokens  # image tokens are counted


def test_rows_leaving_the_batch_early_do_not_change_the_others(backend, requests_mixed):
    """Rows that finish first are dropped from the batch (and its KV cache); the rest must not notice."""
    cfg = GenerateConfig(max_new_tokens=MAX, repetition_penalty=1.3, batch_size=4)
    limits = [5, MAX, 9, 14]  # the image rows (1 and 3) outlive a text row, and row 3 outlives row 2
    reqs = [GenRequest(r.messages, r.images, id=r.id, cfg=cfg.replace(max_new_tokens=m))
            for r, m in zip(requests_mixed, limits)]
    batched = backend.generate(reqs, cfg)
    single = [backend.generate([r], cfg.replace(batch_size=1))[0] for r in reqs]
    assert [len(o.token_ids) for o in batched] == limits
    assert [o.token_ids for o in batched] == [o.token_ids for o in single]


def test_sampling_is_reproducible_per_problem_and_sample(backend, requests_mixed):
    cfg = GenerateConfig(max_new_tokens=MAX, temperature=1.0, top_p=0.95, seed=3, batch_size=4)
    reqs = [GenRequest(r.messages, r.images, id=r.id, sample=s) for r in requests_mixed[:2] for s in range(2)]
    first = backend.generate(reqs, cfg)
    # Another batch composition and order gives the same tokens for the same (id, sample).
    again = backend.generate(list(reversed(reqs)), cfg.replace(batch_size=3))[::-1]
    assert [o.token_ids for o in first] == [o.token_ids for o in again]
    assert first[0].token_ids != first[1].token_ids  # samples of one problem differ
    other_seed = backend.generate(reqs[:1], cfg.replace(seed=4))[0]
    assert other_seed.token_ids != first[0].token_ids and other_seed.seed != first[0].seed


def test_stop_at_end_of_turn_and_length(tiny_model, requests_mixed):
    tok = tiny_model[1].tokenizer
    eot = tok.convert_tokens_to_ids(END_OF_TURN)

    def end_after_three(gens, scores):
        for b, g in enumerate(gens):
            if len(g) == 3:
                scores[b, eot] = 1e9
        return scores

    be = make_backend("transformers", model=tiny_model, logits_processors=[end_after_three])
    stopped, cut = be.generate(requests_mixed[:1], GenerateConfig(max_new_tokens=10)) + \
        be.generate(requests_mixed[:1], GenerateConfig(max_new_tokens=2))
    assert stopped.finish_reason == "stop" and len(stopped.token_ids) == 3 and stopped.completion_tokens == 4
    assert END_OF_TURN not in stopped.text
    assert cut.finish_reason == "length" and len(cut.token_ids) == 2 == cut.completion_tokens


def test_streaming_callback_sees_the_whole_text(backend, requests_mixed):
    pieces: list[str] = []
    req = GenRequest(requests_mixed[0].messages, id="s", on_text=pieces.append)
    out = backend.generate([req], GenerateConfig(max_new_tokens=MAX, repetition_penalty=1.3))[0]
    assert len(pieces) > 1 and "".join(pieces) == out.text


def test_a_bad_request_fails_alone_with_a_clear_error(backend, requests_mixed, tmp_path):
    bad = [GenRequest(build_messages("Look", 1), images=[], id="count"),
           GenRequest(build_messages("Look", 1), images=[str(tmp_path / "missing.png")], id="missing")]
    good = requests_mixed[2]
    outs = []
    with pytest.raises(GenerationFailures) as e:
        for i, _ in backend.iter_generate([bad[0], good, bad[1]], GenerateConfig(max_new_tokens=2)):
            outs.append(i)
    assert outs == [1]  # the good request is answered
    assert "1 image placeholder(s) in the messages but 0 image(s)" in str(e.value.failures[0])
    assert "missing.png: no such file" in str(e.value.failures[2])
