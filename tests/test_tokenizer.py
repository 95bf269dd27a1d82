"""The Tokenizer against exact literal expectations and against tf_keras as an oracle."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tf_keras.preprocessing.text import Tokenizer as LegacyTokenizer
from tf_keras.preprocessing.text import tokenizer_from_json as legacy_from_json

from textclf import Tokenizer, tokenizer_from_json
from textclf.text.rules import DEFAULT_FILTERS

TEXTS = ["The cat sat on the mat.", "The dog ate the cat!", "A dog; a CAT, a mat?"]


def test_word_index_by_count_with_ties_in_first_seen_order():
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(TEXTS)
    # the: 4, cat: 3, a: 3, mat: 2, dog: 2, then single words in first-seen order.
    assert tokenizer.word_index == {
        "the": 1, "cat": 2, "a": 3, "mat": 4, "dog": 5, "sat": 6, "on": 7, "ate": 8,
    }
    assert tokenizer.index_word[1] == "the"
    assert tokenizer.word_counts["cat"] == 3
    assert tokenizer.document_count == 3
    assert tokenizer.texts_to_sequences(["the cat and the bird"]) == [[1, 2, 1]]


def test_oov_token_takes_index_one_and_num_words_keeps_smaller_indices():
    tokenizer = Tokenizer(num_words=4, oov_token="<unk>")
    tokenizer.fit_on_texts(TEXTS)
    assert tokenizer.word_index["<unk>"] == 1
    assert tokenizer.word_index["the"] == 2
    # cat=3 is kept, a=4 and mat=5 are >= num_words and become the OOV index.
    assert tokenizer.texts_to_sequences(["The cat, a mat, a zebra"]) == [[2, 3, 1, 1, 1, 1]]
    assert tokenizer.vocabulary_size == 4


def test_without_oov_token_unknown_and_rare_words_are_dropped():
    tokenizer = Tokenizer(num_words=3)
    tokenizer.fit_on_texts(TEXTS)
    assert tokenizer.texts_to_sequences(["the cat a zebra", ""]) == [[1, 2], []]


def test_char_level_ignores_filters_and_keeps_spaces():
    tokenizer = Tokenizer(char_level=True)
    tokenizer.fit_on_texts(["Ab a!"])
    assert tokenizer.word_index == {"a": 1, "b": 2, " ": 3, "!": 4}
    assert tokenizer.texts_to_sequences(["BA !"]) == [[2, 1, 3, 4]]


def test_custom_split_and_filters():
    tokenizer = Tokenizer(filters="-", split="|", lower=False)
    tokenizer.fit_on_texts(["Red|blue-green||Red"])
    assert tokenizer.word_index == {"Red": 1, "blue": 2, "green": 3}


def test_sequences_to_texts_round_trip_with_oov():
    tokenizer = Tokenizer(num_words=3, oov_token="?")
    tokenizer.fit_on_texts(["x x y z"])
    assert tokenizer.sequences_to_texts(tokenizer.texts_to_sequences(["x y z w"])) == ["x ? ? ?"]


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match=r"`num_words` must be None or a non-negative integer. Received: num_words=-1"):
        Tokenizer(num_words=-1)
    with pytest.raises(ValueError, match=r"`split` must be a non-empty string. Received: split=''"):
        Tokenizer(split="")
    with pytest.raises(ValueError, match=r"Not a tokenizer JSON document"):
        tokenizer_from_json("[1, 2]")


@pytest.mark.parametrize("settings_", [
    {},
    {"num_words": 5, "oov_token": "<OOV>"},
    {"lower": False, "filters": ""},
    {"char_level": True, "oov_token": "_"},
    {"oov_token": "cat"},  # The OOV token is also a word: legacy dict(zip) semantics.
])
def test_json_round_trip_both_ways_with_tf_keras(settings_):
    ours = Tokenizer(**settings_)
    ours.fit_on_texts(TEXTS)
    legacy = LegacyTokenizer(**settings_)
    legacy.fit_on_texts(TEXTS)
    assert ours.to_json() == legacy.to_json()
    restored = tokenizer_from_json(legacy.to_json())
    assert restored.get_config() == ours.get_config()
    assert legacy_from_json(ours.to_json()).texts_to_sequences(TEXTS) == ours.texts_to_sequences(TEXTS)
    assert json.loads(restored.to_json()) == json.loads(ours.to_json())
    assert restored.texts_to_sequences(TEXTS + ["zebra cat"]) == ours.texts_to_sequences(TEXTS + ["zebra cat"])


text_strategy = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(list(DEFAULT_FILTERS + " ΣİAZaz"))),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    fit_texts=st.lists(text_strategy, max_size=6),
    query_texts=st.lists(text_strategy, max_size=4),
    num_words=st.one_of(st.none(), st.integers(0, 8)),
    oov_token=st.one_of(st.none(), st.sampled_from(["<unk>", "a", "[UNK]"])),
    lower=st.booleans(),
    char_level=st.booleans(),
    split=st.sampled_from([" ", "a", ", "]),
    filters=st.sampled_from([DEFAULT_FILTERS, "", "ab!"]),
)
def test_matches_tf_keras_on_arbitrary_text(fit_texts, query_texts, num_words, oov_token, lower, char_level, split, filters):
    arguments = dict(num_words=num_words, oov_token=oov_token, lower=lower, char_level=char_level,
                     split=split, filters=filters)
    ours, legacy = Tokenizer(**arguments), LegacyTokenizer(**arguments)
    ours.fit_on_texts(fit_texts)
    legacy.fit_on_texts(fit_texts)
    assert ours.word_index == legacy.word_index
    assert list(ours.word_counts.items()) == list(legacy.word_counts.items())
    queries = fit_texts + query_texts
    assert ours.texts_to_sequences(queries) == legacy.texts_to_sequences(queries)
    assert ours.to_json() == legacy.to_json()
