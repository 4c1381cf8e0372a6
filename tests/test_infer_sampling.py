"""Next-token sampling (`virgo.infer.sampling`): inverse-CDF draws follow the distribution after temperature, top-k,
top-p and min-p, never take a token of probability 0, and each row's draw depends on its own generator and scores
only. Top-k and min-p keep what transformers' own warpers keep.

Frequencies are checked over 20,000 seeded draws against 5 standard errors, so the checks are deterministic and
far from their bounds when the sampler is right (a token off by a tenth of its probability fails them)."""

from __future__ import annotations

import pytest
import torch

from virgo.infer.sampling import choose, inverse_cdf, min_p_filter, top_k_filter

DRAWS = 20_000


def _frequencies(tokens: list[int], vocab: int) -> torch.Tensor:
    return torch.bincount(torch.tensor(tokens), minlength=vocab).double() / len(tokens)


def _assert_follows(freq: torch.Tensor, probs: torch.Tensor) -> None:
    se = (probs * (1 - probs) / DRAWS).sqrt()
    assert ((freq - probs).abs() <= 5 * se + 1e-12).all(), (freq, probs)


def test_inverse_cdf_follows_the_distribution_and_never_takes_an_impossible_token():
    probs = torch.tensor([0.5, 0.25, 0.0, 0.15, 0.1, 0.0])
    u = torch.rand(DRAWS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    picks = inverse_cdf(probs.expand(DRAWS, -1), u)
    freq = _frequencies(picks.tolist(), len(probs))
    _assert_follows(freq, probs.double())
    assert freq[2] == 0 and freq[5] == 0
    # unnormalised rows: the probability is the share of the row's total
    picks = inverse_cdf((probs * 7).expand(DRAWS, -1), u)
    _assert_follows(_frequencies(picks.tolist(), len(probs)), probs.double())


def test_inverse_cdf_ends_of_the_unit_interval():
    probs = torch.tensor([[0.0, 0.0, 0.3, 0.7, 0.0], [0.3, 0.7, 0.0, 0.0, 0.0]])
    lowest, highest = torch.tensor([0.0, 0.0], dtype=torch.float64), torch.tensor([1 - 2**-53] * 2,
                                                                                   dtype=torch.float64)
    assert inverse_cdf(probs, lowest).tolist() == [2, 0]  # u = 0 takes the first possible token, not token 0
    assert inverse_cdf(probs, highest).tolist() == [3, 1]  # u just under 1 takes the last possible one
    with pytest.raises(ValueError, match="row 1: no token has a finite, positive probability"):
        inverse_cdf(torch.tensor([[0.2, 0.8], [0.0, 0.0]]), lowest)


def test_choose_samples_after_temperature_and_top_p():
    scores = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    for temperature, top_p in ((1.0, 1.0), (0.5, 1.0), (1.0, 0.8)):
        g = torch.Generator().manual_seed(1)
        tokens = [choose(scores, [temperature], [top_p], [g])[0] for _ in range(DRAWS)]
        logits = scores[0].double() / temperature
        want = logits.softmax(-1)
        if top_p < 1:  # the smallest top set reaching 0.8: tokens 0, 1 and 2 (0.563 + 0.207 + 0.126), renormalised
            keep = torch.tensor([True, True, True, False, False])
            want = torch.where(keep, want, 0.0) / want[keep].sum()
        _assert_follows(_frequencies(tokens, 5), want)


def test_a_row_draws_the_same_tokens_whatever_rows_share_its_batch():
    """Row 0 (seed 5, temperature 0.7, top-p 0.9) beside other rows, alone, and last in a larger batch: the same
    tokens; greedy rows take the argmax."""
    gen = torch.Generator().manual_seed(123)
    mine = torch.randn(1, 4000, generator=gen) * 2
    others = torch.randn(5, 4000, generator=gen) * 2

    def draw(batch, temps, ps, seeds, mine_at):
        gens = [torch.Generator().manual_seed(s) if s is not None else None for s in seeds]
        return [choose(batch, temps, ps, gens)[mine_at] for _ in range(30)]

    alone = draw(mine, [0.7], [0.9], [5], 0)
    beside = draw(torch.cat([mine, others[:2]]), [0.7, 1.0, 0.0], [0.9, 0.95, 1.0], [5, 6, None], 0)
    last = draw(torch.cat([others, mine]), [1.0, 0.0, 0.7, 0.7, 0.3, 0.7], [1.0, 1.0, 0.9, 1.0, 0.5, 0.9],
                [1, None, 2, 3, 4, 5], 5)
    assert alone == beside == last and len(set(alone)) > 5  # the same draws, and really random
    greedy = choose(others, [0.0] * 5, [1.0] * 5, [None] * 5)
    assert greedy == others.argmax(-1).tolist()


def test_top_k_and_min_p_keep_what_transformers_warpers_keep():
    from transformers.generation.logits_process import MinPLogitsWarper, TopKLogitsWarper

    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(6, 300, generator=gen) * 3
    logits[0, :5] = logits[0].max()  # ties at the top ...
    logits[1, 10:20] = logits[1].topk(3).values[-1]  # ... and at the k-th score: all stay
    for k in (1, 3, 20, 299, 300, 1000):
        ours = top_k_filter(logits.clone(), k)
        want = TopKLogitsWarper(k)(None, logits.clone())
        assert torch.equal(ours.isinf(), want.isinf()), k
        assert torch.equal(ours[~ours.isinf()], logits[~ours.isinf()])  # kept scores untouched
    for m in (0.001, 0.05, 0.3, 0.9, 1.0):
        ours = min_p_filter(logits.clone(), m)
        want = MinPLogitsWarper(m)(None, logits.clone())
        assert torch.equal(ours.isinf(), want.isinf()), m
    assert torch.equal(top_k_filter(logits, 0), logits) and torch.equal(min_p_filter(logits, 0.0), logits)


def test_choose_samples_after_top_k_and_min_p():
    scores = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    probs = scores[0].double().softmax(-1)  # 0.563, 0.207, 0.126, 0.028, 0.076
    # min-p compares with the most probable token: 0.076 / 0.563 = 0.135 keeps token 4 at 0.1, drops it at 0.15
    for top_k, min_p, keep in ((2, 0.0, [0, 1]), (0, 0.2, [0, 1, 2]), (4, 0.1, [0, 1, 2, 4]), (4, 0.15, [0, 1, 2]),
                               (1, 0.0, [0])):
        g = torch.Generator().manual_seed(2)
        tokens = [choose(scores, [1.0], [1.0], [g], top_ks=[top_k], min_ps=[min_p])[0] for _ in range(DRAWS)]
        mask = torch.zeros(5, dtype=torch.bool)
        mask[keep] = True
        want = torch.where(mask, probs, 0.0) / probs[mask].sum()
        _assert_follows(_frequencies(tokens, 5), want)


def test_a_row_with_top_k_and_min_p_draws_the_same_tokens_beside_other_settings():
    gen = torch.Generator().manual_seed(321)
    mine = torch.randn(1, 4000, generator=gen) * 2
    others = torch.randn(3, 4000, generator=gen) * 2

    def draw(batch, temps, ks, mps, seeds, at):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return [choose(batch, temps, [0.95] * len(temps), gens, top_ks=ks, min_ps=mps)[at] for _ in range(30)]

    alone = draw(mine, [0.8], [50], [0.01], [9], 0)
    beside = draw(torch.cat([others, mine]), [1.0, 0.8, 0.5, 0.8], [0, 50, 5, 50], [0.0, 0.0, 0.01, 0.01],
                  [1, 2, 3, 9], 3)
    assert alone == beside and len(set(alone)) > 5
    top50 = set(mine[0].topk(50).indices.tolist())
    assert set(alone) <= top50  # only the 50 most probable tokens are ever drawn


def test_generation_with_top_k_1_or_min_p_1_is_greedy(tiny_model):
    """Through the transformers backend on the tiny model: sampling at temperature 1 among the single most probable
    token (top-k 1, or min-p 1) writes what greedy decoding writes; plain sampling does not."""
    from virgo.infer import GenerateConfig, GenRequest, make_backend
    from virgo.prompts import build_messages

    backend = make_backend("transformers", model=tiny_model)
    reqs = [GenRequest(build_messages(f"What is {i} + {i}?", 0), id=f"q{i}") for i in range(3)]
    base = GenerateConfig(max_new_tokens=24, chat_template="qwen2vl", seed=4)

    def texts(**kw):
        return [o.text for o in backend.generate(reqs, base.replace(**kw))]

    greedy = texts()
    assert texts(temperature=1.0, top_k=1) == greedy
    assert texts(temperature=1.5, min_p=1.0) == greedy
    assert texts(temperature=1.0) != greedy


def test_presence_and_frequency_penalties_match_a_step_by_step_reference(tiny_model):
    """Greedy decoding with OpenAI's presence and frequency penalties on the tiny model: every token is the argmax of
    the model's next-token scores (a full forward pass on the prompt and the output so far) less frequency x count
    and presence x (count > 0) over the output so far (not the prompt); a row with penalties batched beside one
    without gives what each gives alone; and the penalties do change the output."""
    from virgo.infer import GenerateConfig, GenRequest, make_backend
    from virgo.prompts import build_messages

    model = tiny_model[0]
    backend = make_backend("transformers", model=tiny_model)
    req = GenRequest(build_messages("What is 2 + 2?", 0), id="q")
    cfg = GenerateConfig(max_new_tokens=30, chat_template="qwen2vl", repetition_penalty=1.0, presence_penalty=1.5,
                         frequency_penalty=0.7)
    out = backend.generate([req], cfg)[0]
    prompt = backend.encode(req, cfg).input_ids.tolist()
    with torch.inference_mode():
        for t, token in enumerate(out.token_ids):
            scores = model(input_ids=torch.tensor([prompt + out.token_ids[:t]])).logits[0, -1].float()
            counts = torch.bincount(torch.tensor(out.token_ids[:t], dtype=torch.long), minlength=scores.numel())
            want = scores - 0.7 * counts - 1.5 * (counts > 0).float()
            assert token == int(want.argmax()), t
    plain = backend.generate([req], cfg.replace(presence_penalty=0.0, frequency_penalty=0.0))[0]
    assert plain.token_ids != out.token_ids and len(set(plain.token_ids)) < len(set(out.token_ids))

    other = GenRequest(build_messages("What is 5 + 1?", 0), id="o", cfg=cfg.replace(presence_penalty=0.0,
                                                                                    frequency_penalty=0.0))
    alone = backend.generate([other], cfg)[0]
    both = backend.generate([req, other], cfg)
    assert both[0].token_ids == out.token_ids and both[1].token_ids == alone.token_ids
