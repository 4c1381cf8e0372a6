"""Thinking-budget control on the real tiny model, steered by logits processors that emit the markers.

The tiny model is random, so it never writes markers by itself: each test uses a small "script" (a logits
processor) to make it open a thought and try to close it at chosen points; the budget logic under test then
decides what actually gets generated.
"""

from __future__ import annotations

import pytest

from virgo.infer import GenerateConfig, GenRequest, make_backend
from virgo.infer.budget import Markers
from virgo.prompts import build_messages
from virgo.thought import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT, Status, parse_response

BIG = 1e9


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


class Script:
    """Open the thought first; then try to end it whenever the live output length hits a multiple of ``every``."""

    def __init__(self, tok, every: int | None = None, ban_end: bool = False):
        self.bt, self.et = tok.convert_tokens_to_ids(BEGIN_THOUGHT), tok.convert_tokens_to_ids(END_THOUGHT)
        # Never chosen by the model here: the end of turn (keep going), and the markers the script does not write.
        self.banned = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", BEGIN_THOUGHT, BEGIN_SOLUTION,
                                                               END_SOLUTION)]
        self.every, self.ban_end = every, ban_end

    def __call__(self, gens, scores):
        for b, g in enumerate(gens):
            scores[b, self.banned] = -BIG
            if not g:
                scores[b, self.bt] = BIG
            elif self.ban_end or self.et in g:
                scores[b, self.et] = -BIG
            elif self.every and len(g) % self.every == 0:
                scores[b, self.et] = BIG
        return scores


@pytest.fixture(scope="module")
def req():
    return GenRequest(build_messages("What is 12 + 7?", 0, prompt="think-boxed"), id="q")


def run(tiny_model, req, script, **cfg):
    be = make_backend("transformers", model=tiny_model, logits_processors=[script])
    return be.generate([req], GenerateConfig(repetition_penalty=1.3, **cfg))[0]


def thought_len(out, tok) -> int:
    """Tokens strictly between the opening and the closing marker, counted on the ids."""
    bt, et = tok.convert_tokens_to_ids(BEGIN_THOUGHT), tok.convert_tokens_to_ids(END_THOUGHT)
    return out.token_ids.index(et) - out.token_ids.index(bt) - 1


def test_budget_cap_closes_the_thought_at_the_budget(tiny_model, req):
    tok = tiny_model[1].tokenizer
    free = run(tiny_model, req, Script(tok, ban_end=True), max_new_tokens=30)
    assert parse_response(free.text).status is Status.TRUNCATED  # never closes on its own

    out = run(tiny_model, req, Script(tok, ban_end=True), max_new_tokens=30, thinking_budget=8)
    assert out.budget_forced and out.thought_tokens == 8 == thought_len(out, tok)
    assert f"{END_THOUGHT}\n\n{BEGIN_SOLUTION}" in out.text
    assert out.token_ids[:9] == free.token_ids[:9]  # identical up to the cap
    parsed = parse_response(out.text)
    assert parsed.status is Status.UNCLOSED_SOLUTION and parsed.solution  # the model writes on after the cap
    assert out.finish_reason == "length" and len(out.token_ids) == 30


def test_forcing_suppresses_early_ends_and_appends_wait(tiny_model, req):
    tok = tiny_model[1].tokenizer
    plain = run(tiny_model, req, Script(tok, every=6), max_new_tokens=40)
    assert plain.thought_tokens == 5 == thought_len(plain, tok) and plain.waits == 0

    forced = run(tiny_model, req, Script(tok, every=6), max_new_tokens=40, force_wait=2)
    assert forced.waits == 2 and forced.text.count(END_THOUGHT) == 1
    thought = parse_response(forced.text).thought
    assert thought.count("Wait") >= 2 and "Wait" not in parse_response(plain.text).thought
    assert forced.thought_tokens == thought_len(forced, tok) > plain.thought_tokens
    assert forced.token_ids[:6] == plain.token_ids[:6]  # same until the first suppressed end


def test_budget_caps_forced_extensions(tiny_model, req):
    tok = tiny_model[1].tokenizer
    out = run(tiny_model, req, Script(tok, every=6), max_new_tokens=40, force_wait=5, thinking_budget=9)
    assert out.budget_forced and out.thought_tokens == 9 == thought_len(out, tok)
    assert out.waits == 1  # one early end (after 5 thought tokens) was extended, then the cap closed it


def test_budget_in_a_batch_is_per_row(tiny_model, req):
    tok = tiny_model[1].tokenizer
    be = make_backend("transformers", model=tiny_model, logits_processors=[Script(tok, ban_end=True)])
    cfg = GenerateConfig(repetition_penalty=1.3, max_new_tokens=30, batch_size=3)
    reqs = [GenRequest(req.messages, id=str(b), cfg=cfg.replace(thinking_budget=b)) for b in (3, 7, 12)]
    outs = be.generate(reqs, cfg)
    assert [o.thought_tokens for o in outs] == [3, 7, 12]
    assert [thought_len(o, tok) for o in outs] == [3, 7, 12]


def test_taking_back_a_multi_token_end_marker_is_exact(tiny_model, req):
    """With a marker spanning two tokens, the fed first token is masked out: the result equals never emitting it."""
    tok = tiny_model[1].tokenizer
    x, y = ids(tok, " area")[0], ids(tok, " shape")[0]
    wait = ids(tok, "Wait")
    bt = tok.convert_tokens_to_ids(BEGIN_THOUGHT)

    def marker_script(gens, scores):  # writes the two-token "end" x y once, at output position 5
        for b, g in enumerate(gens):
            scores[b, bt] = -BIG
            if not g:
                scores[b, bt] = BIG
            elif len(g) == 5 and x not in g:
                scores[b, x] = BIG
            elif g[-1] == x:
                scores[b, y] = BIG
            scores[b, y] -= 0 if g and g[-1] == x else BIG  # y only ever right after x
        return scores

    def direct_script(gens, scores):  # writes "Wait" at position 5 directly, never x
        for b, g in enumerate(gens):
            scores[b, bt] = -BIG
            if not g:
                scores[b, bt] = BIG
            elif 5 <= len(g) < 5 + len(wait):
                scores[b, wait[len(g) - 5]] = BIG
            scores[b, y] = -BIG
            scores[b, x] = -BIG if len(g) >= 5 else scores[b, x]
        return scores

    cfg = GenerateConfig(repetition_penalty=1.3, max_new_tokens=20, force_wait=1)
    be = make_backend("transformers", model=tiny_model, logits_processors=[marker_script])
    be.decoder.markers = Markers(be.decoder.markers.begin_thought, (x, y), be.decoder.markers.close, tuple(wait))
    pieces: list[str] = []
    streamed = GenRequest(req.messages, id="q", on_text=pieces.append)
    taken_back = be.generate([streamed], cfg)[0]
    ref = make_backend("transformers", model=tiny_model, logits_processors=[direct_script])
    direct = ref.generate([req], cfg.replace(force_wait=0))[0]
    assert taken_back.waits == 1 and x not in taken_back.token_ids[5:6]
    assert taken_back.token_ids == direct.token_ids
    assert "".join(pieces) == taken_back.text  # the taken-back token was held back, never streamed
    # Sampled from here (greedy text of the random model ignores what it attends to); the reference is the row alone.
    cfg = cfg.replace(temperature=1.0)
    (alone,) = be.generate([GenRequest(req.messages, id="q")], cfg)
    assert alone.waits == 1 and x not in alone.token_ids[5:6]
    # Beside a row with a longer prompt that leaves at the step the marker's first token is fed: the batch then
    # drops that row's columns (this one's left padding), and the take-back masks the token's column by its
    # shifted index.
    wide = GenRequest(build_messages("Think about it. " * 12, 0), id="wide", cfg=cfg.replace(max_new_tokens=6))
    beside = be.generate([wide, GenRequest(req.messages, id="q")], cfg.replace(batch_size=2))[1]
    assert beside.token_ids == alone.token_ids
    # And with that wide row joining (continuous batching) right after the marker's first token is fed, in the
    # room a short row leaves: the batch is padded to the wide prompt, every column index moves.
    short = GenRequest(req.messages, id="short", cfg=cfg.replace(max_new_tokens=6))
    queue = [GenRequest(req.messages, id="q"), short, GenRequest(wide.messages, id="wide")]
    joined = dict(be.iter_generate_pull(lambda n: [queue.pop(0) for _ in range(min(n, len(queue)))],
                                        cfg.replace(batch_size=2)))[0]
    assert joined.token_ids == alone.token_ids


def test_the_points_where_forcing_and_the_budget_acted_are_recorded_exactly(tiny_model, req):
    """Each "Wait" and the forced close are located by character offset in the text (what `virgo view` marks)."""
    tok = tiny_model[1].tokenizer
    out = run(tiny_model, req, Script(tok, every=6), max_new_tokens=40, force_wait=5, thinking_budget=9)
    kinds = [m["kind"] for m in out.interventions]
    assert kinds == ["wait", "budget"]
    wait, close = (m["offset"] for m in out.interventions)
    assert out.text[wait:].startswith("Wait")
    assert out.text[close:].startswith(f"{END_THOUGHT}\n\n{BEGIN_SOLUTION}")
    forced = run(tiny_model, req, Script(tok, every=6), max_new_tokens=40, force_wait=2)
    offsets = [m["offset"] for m in forced.interventions]
    assert len(offsets) == forced.waits == 2 and all(forced.text[o:].startswith("Wait") for o in offsets)
    assert run(tiny_model, req, Script(tok, every=6), max_new_tokens=40).interventions == []
