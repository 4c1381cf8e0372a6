"""Shared thought analytics: reflection lexicon, token lengths (model tokenizer or approximation), percentiles."""

from __future__ import annotations

import pytest

from virgo.data.analytics import (
    APPROX_LABEL,
    REFLECTION_LEXICON,
    Sections,
    count_reflections,
    length_summary,
    load_lexicon,
    load_tokenizer,
    percentile,
    sections,
    token_lengths,
)
from virgo.records import LongThoughtExample, SFTExample
from virgo.thought import Status, render_response


def test_packaged_lexicon_has_the_paper_phrases():
    for phrase in ("wait", "alternatively", "let me verify", "hmm", "double-check"):
        assert phrase in REFLECTION_LEXICON
    assert load_lexicon("reflection") == REFLECTION_LEXICON


def test_count_reflections_matches_words_not_substrings():
    text = ("Wait, that's wrong. WAIT... awaiting results; he waits. Hmm. Alternatively, let me\nverify. "
            "Let me double check, then double-check again; a double-checked value.")
    c = count_reflections(text)
    assert list(c) == list(REFLECTION_LEXICON)  # every phrase, in lexicon order
    assert c["wait"] == 2  # not "awaiting", not "waits"
    assert c["hmm"] == 1 and c["alternatively"] == 1
    assert c["let me verify"] == 1  # across a line break
    assert c["double-check"] == 2  # hyphen or space; not "double-checked"
    assert count_reflections("") == dict.fromkeys(REFLECTION_LEXICON, 0)


def test_custom_lexicon_from_a_file(tmp_path):
    f = tmp_path / "lex.txt"
    f.write_text("# my phrases\nOh no\nrecheck  # a comment\n\n")
    lex = load_lexicon(f)
    assert lex == ("oh no", "recheck")
    assert count_reflections("Oh  no! I must recheck. oh no", lex) == {"oh no": 2, "recheck": 1}
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no phrases"):
        load_lexicon(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="unknown lexicon"):
        load_lexicon("no-such-lexicon")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A real BPE tokenizer saved like a model's (tokenizer.json + config), trained in about a second."""
    from virgo.modeling.corpus import builtin_corpus
    from virgo.modeling.tokenizer import train_tokenizer

    d = tmp_path_factory.mktemp("tok")
    tok = train_tokenizer(builtin_corpus(n_lines=800), vocab_size=400)
    tok.save_pretrained(d)
    return d, tok


def test_token_lengths_with_a_real_tokenizer(tokenizer_dir):
    d, tok = tokenizer_dir
    texts = ["What is 63 + 15?", "Wait, let me verify: 78 - 15 = 63. Correct.", ""]
    expected = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert expected[0] > 0 and expected[2] == 0
    assert token_lengths(texts, d) == expected  # a model directory: read with the tokenizers library
    assert token_lengths(texts, d / "tokenizer.json") == expected
    assert token_lengths(texts, tok) == expected  # an already-loaded transformers tokenizer
    assert load_tokenizer(d).label == f"tokenizer {d}"


def test_approximate_lengths_are_labelled():
    assert token_lengths(["Hello, world! 3+4=7", "  "], None) == [9, 0]
    assert load_tokenizer(None).label == APPROX_LABEL and "not model tokens" in APPROX_LABEL
    with pytest.raises(FileNotFoundError):
        load_tokenizer("/no/such/tokenizer")


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 90) == 90 and percentile(values, 99) == 99
    assert percentile([7], 99) == 7 and percentile([], 50) is None
    assert percentile([3, 1, 2], 0) == 1
    s = length_summary([5, 1, 9, 3])
    assert s == {"count": 4, "mean": 4.5, "min": 1, "p50": 3, "p90": 9, "p99": 9, "max": 9}
    assert length_summary([])["p50"] is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_sections_of_both_record_kinds():
    lt = LongThoughtExample(id="a", question="q", thought="t", solution="s")
    assert sections(lt) == Sections(Status.COMPLETE, "t", "s")
    sft = SFTExample(id="b", question="q", response=render_response("x", "y")[:-5])
    s = sections(sft)
    assert s.status is Status.UNCLOSED_SOLUTION and s.thought == "x"
    assert sections(SFTExample(id="c", question="q", response="just text")).thought is None
