"""The decoding loop: greedy equals transformers' generate (with and without its KV cache), batched equals
one-by-one, sampling is reproducible per (problem, sample), stop and length finish reasons."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from virgo.infer import GenerateConfig, GenRequest, make_backend, to_generation
from virgo.infer.backends.base import GenerationFailures
from virgo.infer.backends.openai_backend import image_data_url
from virgo.prompts import END_OF_TURN, build_messages, load_chat_template, render_chat

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


def test_requests_are_sorted_by_length_into_batches_and_answered_in_input_order(tiny_model, tmp_path):
    """Open PIL images, paths and data URLs all count their image tokens, so similar lengths share a batch."""
    be = make_backend("transformers", model=tiny_model)
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    big = Image.new("RGB", (120, 90), (20, 200, 30))  # an open image: ~40 image tokens
    reqs = [
        GenRequest(build_messages("Hi", 0), id="short"),
        GenRequest(build_messages("What is it?", 1), images=[big], id="pil"),
        GenRequest(build_messages("Add 3 and 4.", 0), id="short2"),
        GenRequest(build_messages("What is it?", 1), images=[str(tmp_path / "red.png")], id="path"),
        GenRequest(build_messages("What is it?", 1), images=[image_data_url(big)], id="data-url"),
        GenRequest(build_messages("Think step by step. " * 6, 0), id="long-text"),
    ]
    cfg = GenerateConfig(max_new_tokens=2, batch_size=2)
    lengths = [len(be.encode(r, cfg)) for r in reqs]
    assert [be.length_estimate(r, cfg) for r in reqs] == lengths  # exact, without decoding any pixels
    assert lengths[1] > lengths[5] > lengths[3] > lengths[2] > lengths[0]  # the open image is the longest

    batches: list[list[int]] = []  # the prompt lengths of each group of rows that joins the decoder
    admit = be.decoder._admit
    be.decoder._admit = lambda b, logits, new, first: (batches.append([len(e) for e, _ in new]),
                                                       admit(b, logits, new, first))[1]
    outs = be.generate(reqs, cfg)
    assert batches == [[lengths[1], lengths[4]], [lengths[5], lengths[3]], [lengths[2], lengths[0]]]
    assert [o.prompt_tokens for o in outs] == lengths  # results come back in input order


def test_an_image_over_the_backends_pixel_limit_sorts_as_empty_and_fails_alone(tiny_model):
    be = make_backend("transformers", model=tiny_model, max_pixels=5000)
    over = GenRequest(build_messages("What is it?", 1), images=[Image.new("RGB", (120, 90))], id="over")
    fine = GenRequest(build_messages("Hi", 0), id="fine")
    cfg = GenerateConfig(max_new_tokens=2)
    assert be.length_estimate(over, cfg) == 0
    with pytest.raises(GenerationFailures) as e:
        be.generate([over, fine], cfg)
    assert "10800 pixels is over the limit of 5000" in str(e.value.failures[0]) and list(e.value.failures) == [0]


def test_a_chat_template_by_path_renders_the_prompt_and_is_recorded(backend, tmp_path):
    custom = tmp_path / "slow.jinja"
    custom.write_text(load_chat_template().replace("You are a helpful assistant.", "You think slowly."))
    req = GenRequest(build_messages("Hi", 0), id="t")
    default = GenerateConfig(max_new_tokens=2)
    cfg = default.replace(chat_template=str(custom))
    text = backend.prompt_text(req, cfg)
    assert text.startswith("<|im_start|>system\nYou think slowly.<|im_end|>")
    assert "You think slowly." not in backend.prompt_text(req, default)
    out = backend.generate([req], cfg)[0]
    assert out.prompt_tokens == len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert out.prompt_tokens != backend.generate([req], default)[0].prompt_tokens
    record = to_generation(req, out, cfg, model="m", backend="transformers")
    assert record.settings["chat_template"] == str(custom)
    with pytest.raises(ValueError, match="unknown chat template 'nope'"):
        GenerateConfig(chat_template="nope")


def test_continuous_batching_rows_join_as_others_finish_and_each_is_what_it_is_alone(tiny_model):
    """Two rows at a time; a row that finishes early makes room, and the next one is prefilled and joins the running
    batch: a text prompt wider than the batch's cache (the batch is padded to it), a row with presence and
    frequency penalties beside rows without, an image row joining text rows (positions go 3-D). Each row's tokens
    are those it decodes alone."""
    be = make_backend("transformers", model=tiny_model)
    red = Image.new("RGB", (40, 40), (200, 30, 30))
    # sampled rows: the random model's greedy text repeats one token whatever it attends to
    base = GenerateConfig(max_new_tokens=24, repetition_penalty=1.05, temperature=1.0)
    reqs = [
        GenRequest(build_messages("Think step by step. " * 8, 0), id="a", cfg=base.replace(max_new_tokens=20)),
        GenRequest(build_messages("Hello", 0), id="b", cfg=base.replace(max_new_tokens=3, temperature=0.0)),
        GenRequest(build_messages("Add 3 and 4, then explain. " * 8, 0), id="c",
                   cfg=base.replace(max_new_tokens=8, temperature=1.0, presence_penalty=1.0, frequency_penalty=0.5)),
        GenRequest(build_messages("What colour is the square?", 1), images=[red], id="d",
                   cfg=base.replace(max_new_tokens=6, temperature=0.7, top_k=5)),
    ]
    joins: list[tuple[int, bool, bool]] = []  # (rows running, new prompt wider than the batch, new rows' images)
    admit = be.decoder._admit

    def watch(b, logits, new, first):
        width = b.attn.shape[1] if b is not None else 0
        joins.append((len(b.rows) if b is not None else 0, max(len(e) for e, _ in new) > width,
                      any(e.pixel_values is not None for e, _ in new)))
        return admit(b, logits, new, first)

    be.decoder._admit = watch
    queue = list(reqs)
    together = dict(be.iter_generate_pull(lambda n: [queue.pop(0) for _ in range(min(n, len(queue)))],
                                          GenerateConfig(batch_size=2)))
    be.decoder._admit = admit
    assert joins[0] == (0, True, False) and len(joins) == 3
    assert all(running > 0 for running, _, _ in joins[1:])  # each later row joined a batch mid-decode
    assert (1, True, False) in joins and (1, False, True) in joins  # a wider prompt; an image row
    for i, req in enumerate(reqs):
        (alone,) = be.generate([req], GenerateConfig(batch_size=1))
        got = together[i]
        assert (got.token_ids, got.text, got.finish_reason, got.completion_tokens) == \
               (alone.token_ids, alone.text, alone.finish_reason, alone.completion_tokens), req.id


def test_under_continuous_batching_the_cache_keeps_the_width_of_its_oldest_row(tiny_model):
    """Twelve requests through two rows: the batch never empties, and without cutting the columns of rows that
    left, its cache would grow by one column at every step of the run (about 70 here)."""
    be = make_backend("transformers", model=tiny_model)
    cfg = GenerateConfig(max_new_tokens=10, temperature=1.0, batch_size=2)
    reqs = [GenRequest(build_messages(f"What is {i} + {i}?", 0), id=str(i), cfg=cfg.replace(max_new_tokens=4 + i % 7))
            for i in range(12)]
    widths: list[int] = []
    admit = be.decoder._admit

    def watch(b, logits, new, first):
        widths.append(b.attn.shape[1] if b is not None else 0)
        return admit(b, logits, new, first)

    be.decoder._admit = watch
    outs = be.generate(reqs, cfg)
    be.decoder._admit = admit
    longest = max(len(be.encode(r, cfg)) for r in reqs) + 10
    assert len(widths) >= 10 and min(widths[1:]) > 0  # rows kept joining a running batch
    assert max(widths) <= longest  # the oldest live row's prompt and tokens, never the run's age
    assert [len(o.token_ids) for o in outs] == [4 + i % 7 for i in range(12)]
