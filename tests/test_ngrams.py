"""The graph's n-gram analyzers are scikit-learn's: the same n-grams, hashed (textclf/text/ngrams.py)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf.text.ngrams import check_analyzer, count_matrix, ngram_keys, split_words

ANALYZERS = [("word", 1, 2), ("char_wb", 2, 5), ("char_wb", 1, 3)]
# Letters of several scripts, digits, marks, punctuation and Python's whitespace (Unicode spaces included).
ALPHABET = list("abcXYZé中文好评ÉÀßΣ²٣_'-.,!?😀") + [" ", "  ", "\t", "\n", "\u3000", "\xa0", "\u2003", "\x1c",
                                                      "\u0301", "\u200b", "\x00"]


def hashed(grams):
    if not grams:
        return []
    return sorted(tf.strings.to_hash_bucket_fast(tf.constant(grams), 2**63 - 1).numpy().tolist())


def scikit_learn_keys(text, analyzer):
    kind, low, high = analyzer
    return hashed(TfidfVectorizer(analyzer=kind, ngram_range=(low, high)).build_analyzer()(text))


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_known_texts_give_scikit_learns_ngrams(analyzer):
    texts = ["Hello  World! it's a test", "  ÉCOLE ²x \u3000中文文本 a_b", "", "x", "don't\tstop\nme"]
    keys = ngram_keys(tf.constant(texts), analyzer)
    for row, text in enumerate(texts):
        assert sorted(keys[row].numpy().tolist()) == scikit_learn_keys(text, analyzer)


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_a_nul_or_a_letter_newer_than_tensorflows_tables_is_lowercased_as_python_does(analyzer):
    texts = ["AB\x00CD EF", "\u2c2fX\x00\x00Y", "\U00010570Q"]
    keys = ngram_keys(tf.constant(texts), analyzer)
    assert [sorted(row.tolist()) for row in keys.numpy()] == [scikit_learn_keys(text, analyzer) for text in texts]
    assert scikit_learn_keys("AB\x00CD EF", analyzer) != scikit_learn_keys("AB", analyzer)


def test_word_ngrams_are_runs_of_two_word_characters_and_their_pairs():
    words = TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()("Don't STOP, a b-cd")
    assert words == ["don", "stop", "cd", "don stop", "stop cd"]
    assert sorted(ngram_keys(tf.constant(["Don't STOP, a b-cd"]), ("word", 1, 2))[0].numpy().tolist()) == \
        hashed(words)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join), st.sampled_from(ANALYZERS))
def test_any_text_gives_scikit_learns_ngrams(text, analyzer):
    assert sorted(ngram_keys(tf.constant([text]), analyzer)[0].numpy().tolist()) == scikit_learn_keys(text, analyzer)


# Every character Python splits on, and two it does not (a zero-width space, a NUL).
WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]


def test_every_whitespace_python_splits_on_splits_words_and_nothing_else_does():
    texts = [f"a{space}b" for space in WHITESPACE] + ["a\u200bb", "a\x00b", " a  b "]
    words = [[word.decode() for word in row] for row in split_words(tf.constant(texts)).to_list()]
    assert len(WHITESPACE) == 29
    assert words == [["a", "b"]] * 29 + [["a\u200bb"], ["a\x00b"], ["a", "b"]]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("ab中") + WHITESPACE + ["\u200b"]), max_size=12).map("".join),
                min_size=1, max_size=5))
def test_a_batch_mixing_ascii_and_other_whitespace_splits_as_python(texts):
    # Rows with only ASCII whitespace take tf.strings.split alone; the others are rewritten first.
    words = split_words(tf.constant(texts)).to_list()
    assert [[word.decode() for word in row] for row in words] == [text.split() for text in texts]


TEXTS = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=6), st.sampled_from(ANALYZERS))
def test_each_row_of_a_batch_gets_its_own_ngrams_though_words_are_counted_once_per_batch(texts, analyzer):
    keys = ngram_keys(tf.constant(texts), analyzer)
    assert [sorted(row.tolist()) for row in keys.numpy()] == [scikit_learn_keys(text, analyzer) for text in texts]


@settings(max_examples=40, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=7), st.sampled_from(ANALYZERS), st.integers(1, 4), st.integers(1, 30))
def test_the_count_matrix_is_count_vectorizers_in_any_batch_size(texts, analyzer, batch_size, characters):
    from sklearn.feature_extraction.text import CountVectorizer

    from textclf.text import ngrams

    budget, ngrams.BATCH_CHARACTERS = ngrams.BATCH_CHARACTERS, characters  # Batches cut by length too.
    try:
        counts, keys = count_matrix(texts, analyzer, batch_size=batch_size)
    finally:
        ngrams.BATCH_CHARACTERS = budget
    kind, low, high = analyzer
    build = CountVectorizer(analyzer=kind, ngram_range=(low, high), lowercase=True).build_analyzer()
    expected = [sorted(hashed(build(text))) for text in texts]
    got = [sorted(np.repeat(keys[row.indices], row.data.astype(int)).tolist()) for row in counts]
    assert got == expected
    assert keys.tolist() == sorted(set(keys.tolist()))
    # Canonical CSR (sorted indices, no duplicate): the solver's sums follow the indices' order.
    assert counts.shape == (len(texts), len(keys)) and counts.has_canonical_format
    assert all(np.all(np.diff(row.indices) > 0) for row in counts)


def test_a_word_repeated_across_rows_counts_in_each_row():
    counts, keys = count_matrix(["aa aa b", "b aa", "c"], ("char_wb", 2, 2))
    # " aa " gives " a", "aa", "a "; " b " gives " b", "b "; " c " gives " c", "c ".
    dense = {key: counts[:, column].toarray().ravel().tolist() for column, key in enumerate(keys.tolist())}
    assert dense[hashed(["aa"])[0]] == [2, 1, 0]
    assert dense[hashed([" b"])[0]] == [1, 1, 0]
    assert dense[hashed([" c"])[0]] == [0, 0, 1]
    assert counts.shape == (3, 7)


def test_the_count_matrix_counts_each_rows_ngrams():
    counts, keys = count_matrix(["ab ab", "ab", ""], ("word", 1, 2))
    ab, pair = hashed(["ab"])[0], hashed(["ab ab"])[0]
    assert keys.tolist() == sorted([ab, pair])
    dense = counts.toarray()
    assert dense[:, keys.tolist().index(ab)].tolist() == [2, 1, 0]
    assert dense[:, keys.tolist().index(pair)].tolist() == [1, 0, 0]


@pytest.mark.parametrize("analyzer, message", [
    (("chars", 1, 2), "kind must be one of word, char_wb. Received: 'chars'"),
    (("word", 2, 1), r"1 <= low <= high \(low <= 3 for char_wb\). Received: \('word', 2, 1\)"),
    (("char_wb", 4, 5), r"Received: \('char_wb', 4, 5\)"),
    (("word", 1.0, 2), "must be integers"),
    (("word", 1), r"must be \(kind, low, high\)"),
])
def test_a_bad_analyzer_is_named(analyzer, message):
    with pytest.raises(ValueError, match=message):
        check_analyzer(analyzer)
    assert check_analyzer(("char_wb", np.int64(1), 3)) == ("char_wb", 1, 3)


def test_batches_hold_every_text_once_in_order_within_both_limits(monkeypatch):
    from textclf.text import ngrams

    monkeypatch.setattr(ngrams, "BATCH_CHARACTERS", 10)
    texts = ["abcd", "efg", "hij", "a" * 25, "k", "lm", "nopqrs", "tuvw", "x"]
    batches = list(ngrams._batches(texts, 2))
    # 4 + 3 fit 10; "hij" + 25 would not; a 25-character text is a batch alone; 2 texts at most; 6 + 4 is exactly 10.
    assert batches == [(0, ["abcd", "efg"]), (2, ["hij"]), (3, ["a" * 25]), (4, ["k", "lm"]), (6, ["nopqrs", "tuvw"]),
                       (8, ["x"])]
    assert list(ngrams._batches([], 2)) == []
