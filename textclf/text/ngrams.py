"""scikit-learn's ``word`` and ``char_wb`` n-gram analyzers as core TensorFlow ops over raw text, hashed.

The wide branch (``textclf.model.layers.NgramTfidfLogits``) reads these n-grams of the raw lowercased text, not of
the tokenizer's ids, so out-of-vocabulary words, misspellings and CJK characters still count.  Fitting reads the
same function's output (:func:`count_matrix`), so training and serving see the same n-grams by construction;
``tests/test_ngrams.py`` checks that they are also ``TfidfVectorizer``'s:

- ``word``: ``TfidfVectorizer``'s default ``token_pattern`` ``(?u)\\b\\w\\w+\\b`` (runs of two or more letters,
  digits or ``_``), then its 1..n-grams joined by a space;
- ``char_wb``: each whitespace-separated word padded with one space on each side, then its character n-grams
  (a padded word is at least 3 characters, so with ``low <= 3`` scikit-learn's short-word rule never applies).

Each n-gram is a 63-bit FarmHash fingerprint (``tf.strings.to_hash_bucket_fast``): an int64 key, so the fitted
vocabulary is a sorted key array the graph searches, as the model saves weights and not string tables.
``char_wb`` n-grams are made once per distinct word of a batch and counted into each row by the word's count
(:class:`Ngrams`): the same counts as per occurrence, for a fraction of the work on long texts.
"""

from __future__ import annotations

import typing

import numpy as np
from textclf.errors import TextclfError

ANALYZERS = ("word", "char_wb")
# Python's str.split() separators (str.isspace): Unicode separators and the ASCII/C1 controls it counts.
_WHITESPACE = r"[\p{Z}\t\n\x0b\x0c\r\x1c-\x1f\x{85}]+"
# Those that tf.strings.split (ASCII whitespace: space, \t, \n, \v, \f, \r) does not split on.
_OTHER_WHITESPACE = r"\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
# Not a character of Python's ``\w`` (str.isalnum() or "_").
_NOT_WORD = r"[^\pL\pN_]+"
_BUCKETS = 2**63 - 1


def check_analyzer(analyzer) -> tuple[str, int, int]:
    """``(kind, low, high)`` validated: kind in :data:`ANALYZERS`, ``1 <= low <= high``, ``low <= 3`` for char_wb."""
    if not isinstance(analyzer, (tuple, list)) or len(analyzer) != 3:
        raise TextclfError(f"An analyzer must be (kind, low, high). Received: {analyzer!r}")
    kind, low, high = analyzer
    if kind not in ANALYZERS:
        raise TextclfError(f"An analyzer's kind must be one of {', '.join(ANALYZERS)}. Received: {kind!r}")
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TextclfError(f"An analyzer's n-gram sizes must be integers. Received: {analyzer!r}")
    if not 1 <= low <= high or (kind == "char_wb" and low > 3):
        raise TextclfError(f"An analyzer's n-gram sizes must satisfy 1 <= low <= high (low <= 3 for char_wb). "
                         f"Received: {analyzer!r}")
    return str(kind), int(low), int(high)


class Ngrams(typing.NamedTuple):
    """A batch's n-grams, counted per distinct word: row ``pair_rows[i]`` holds ``pair_counts[i]`` times the n-grams
    of unit ``pair_units[i]``, and a unit's n-grams are the ``keys`` whose ``key_units`` (sorted) name it.

    For ``char_wb`` a unit is a distinct whitespace-separated word of the batch: long texts repeat their words, so
    hashing and looking up each distinct word's n-grams once is a fraction of the work (docs/PERFORMANCE.md,
    "Serving").  For ``word`` (n-grams span words) a unit is a row, once: the pairs are ``None``.
    """

    keys: object  # int64 [K]
    key_units: object  # int64 [K], sorted
    units: object  # int64 scalar
    pair_rows: object = None  # int64 [P]
    pair_units: object = None  # int64 [P]
    pair_counts: object = None  # float32 [P]


def ngrams_of(text, analyzer) -> Ngrams:
    """The hashed n-grams of each text of a ``[batch]`` string tensor."""
    import tensorflow as tf

    from textclf.text.rules import lowercase_graph

    kind, low, high = check_analyzer(analyzer)
    lowered = lowercase_graph(text)  # str.lower, as TfidfVectorizer's: tf.strings.lower stops at a NUL.
    rows = tf.shape(text, out_type=tf.int64)[0]
    if kind == "word":
        tokens = tf.strings.split(tf.strings.regex_replace(lowered, _NOT_WORD, " "))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens, unit="UTF8_CHAR") >= 2)
        grams = tf.strings.ngrams(tokens, tuple(range(low, high + 1)), separator=" ")
        return Ngrams(tf.strings.to_hash_bucket_fast(grams.flat_values, _BUCKETS), grams.value_rowids(), rows)
    words = split_words(lowered)
    distinct, word_index = tf.unique(words.flat_values, out_idx=tf.int64)
    units = tf.size(distinct, out_type=tf.int64)
    # (row, distinct word) pairs and how often the row holds the word.
    pairs, pair_index = tf.unique(words.value_rowids() * units + word_index, out_idx=tf.int64)
    pair_counts = tf.math.unsorted_segment_sum(tf.ones_like(pair_index, tf.float32), pair_index, tf.size(pairs))
    padded = tf.strings.join([" ", distinct, " "])  # Scalars broadcast.
    characters = tf.strings.unicode_split(padded, "UTF-8")  # [units, characters]
    grams = tf.concat([tf.strings.ngrams(characters, n, separator="") for n in range(low, high + 1)], axis=1)
    divisor = tf.maximum(units, 1)
    return Ngrams(tf.strings.to_hash_bucket_fast(grams.flat_values, _BUCKETS), grams.value_rowids(), units,
                  pairs // divisor, pairs % divisor, pair_counts)


def split_words(text):
    """``str.split()`` of each text of a ``[batch]`` string tensor: a ``RaggedTensor`` of its words.

    ``tf.strings.split`` splits on ASCII whitespace only; the rows that hold other whitespace (rare: 28 of
    news_source's 3,823 articles) have it replaced by a space first, the regex run on those rows alone (replacing in
    every row took as long as the rest of the split on news_source's articles).
    """
    import tensorflow as tf

    odd = tf.where(~tf.strings.regex_full_match(text, f"[^{_OTHER_WHITESPACE}]*"))
    replaced = tf.strings.regex_replace(tf.gather_nd(text, odd), _WHITESPACE, " ")
    return tf.strings.split(tf.tensor_scatter_nd_update(text, odd, replaced))


def ngram_keys(text, analyzer):
    """int64 ``RaggedTensor [batch, None]``: each text's hashed n-grams, one per occurrence (:func:`ngrams_of`
    expanded; for tests)."""
    import tensorflow as tf

    bag = ngrams_of(text, analyzer)
    per_unit = tf.RaggedTensor.from_value_rowids(bag.keys, bag.key_units, nrows=bag.units)
    if bag.pair_units is None:  # Units are rows.
        return per_unit
    repeated = tf.repeat(bag.pair_units, tf.cast(bag.pair_counts, tf.int64))
    rows = tf.repeat(bag.pair_rows, tf.cast(bag.pair_counts, tf.int64))
    expanded = tf.gather(per_unit, repeated)
    return tf.RaggedTensor.from_value_rowids(expanded.flat_values, tf.gather(rows, expanded.value_rowids()),
                                             nrows=tf.shape(text, out_type=tf.int64)[0])


_KEY_FUNCTIONS = {}


def _key_function(analyzer):
    """:func:`ngrams_of` for ``analyzer`` as one traced function (one trace per analyzer per process), its keys
    made distinct: ``(distinct keys, each n-gram's index into them, key_units, units[, pair_rows, pair_units,
    pair_counts])``.  ``tf.unique`` hashes where ``np.unique`` sorts: 0.2 of the time on news_source's articles."""
    if analyzer not in _KEY_FUNCTIONS:
        import tensorflow as tf

        def distinct_keys(text):
            bag = ngrams_of(text, analyzer)
            keys, columns = tf.unique(bag.keys, out_idx=tf.int64)
            return tuple(part for part in (keys, columns, *bag[1:]) if part is not None)

        _KEY_FUNCTIONS[analyzer] = tf.function(distinct_keys, input_signature=[tf.TensorSpec([None], tf.string)],
                                               autograph=False)
    return _KEY_FUNCTIONS[analyzer]


# count_matrix's batches: at most this many characters (a batch's words are split at once) unless a single text
# holds more.  Larger batches share more distinct words: 1,024 short texts are counted in 0.8x the time of 256.
BATCH_CHARACTERS = 1 << 21


def _batches(texts, batch_size: int):
    """``(start, texts)`` of consecutive batches of at most ``batch_size`` texts and :data:`BATCH_CHARACTERS`."""
    start = 0
    while start < len(texts):
        end, characters = start + 1, len(texts[start])
        while end < min(len(texts), start + batch_size) and characters + len(texts[end]) <= BATCH_CHARACTERS:
            characters += len(texts[end])
            end += 1
        yield start, texts[start:end]
        start = end


def count_matrix(texts, analyzer, batch_size: int = 1024):
    """``(counts, keys)``: the CSR ``[len(texts), len(keys)]`` n-gram count matrix and its sorted int64 ``keys``."""
    from scipy import sparse

    analyzer = check_analyzer(analyzer)
    function, blocks, batch_keys = _key_function(analyzer), [], []
    texts = list(texts)
    for _, batch in _batches(texts, batch_size):
        keys, columns, key_units, units, *pairs = (part.numpy() for part in function(np.asarray(batch, dtype=object)))
        # [units, keys] with an entry per n-gram: key_units is sorted, so the CSR arrays are at hand; a repeated
        # n-gram is summed by the product with the pairs, or by sum_duplicates.
        counted = sparse.csr_matrix((np.ones(len(columns)), columns, _row_starts(key_units, int(units))),
                                    shape=(int(units), len(keys)))
        if pairs:  # [rows, units] pair counts (distinct pairs, rows in order) x [units, keys] n-gram counts.
            pair_rows, pair_units, pair_counts = pairs
            counted = sparse.csr_matrix((pair_counts.astype(np.float64), pair_units,
                                         _row_starts(pair_rows, len(batch))), shape=(len(batch), int(units))) @ counted
        else:
            counted.sum_duplicates()
        blocks.append(counted)
        batch_keys.append(keys)
    keys, columns = np.unique(np.concatenate(batch_keys) if batch_keys else np.zeros(0, np.int64),
                              return_inverse=True)
    columns, starts = columns.ravel(), np.cumsum([0] + [len(distinct) for distinct in batch_keys])
    # Each batch's columns into the sorted keys of every batch.
    blocks = [sparse.csr_matrix((block.data, columns[start:][block.indices], block.indptr),
                                shape=(block.shape[0], len(keys))) for block, start in zip(blocks, starts)]
    counts = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, 0))
    counts.sort_indices()  # Canonical: the solver's sums, hence its last digits, follow the indices' order.
    return counts, keys.astype(np.int64)


def _row_starts(rows: np.ndarray, count: int) -> np.ndarray:
    """CSR's ``indptr`` of entries whose sorted row indices are ``rows``, ``count`` rows."""
    starts = np.zeros(count + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=starts[1:])
    return starts
