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
"""

from __future__ import annotations

import numpy as np
from textclf.errors import TextclfError

ANALYZERS = ("word", "char_wb")
# Python's str.split() separators (str.isspace): Unicode separators and the ASCII/C1 controls it counts.
_WHITESPACE = r"[\p{Z}\t\n\x0b\x0c\r\x1c-\x1f\x{85}]+"
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


def ngram_keys(text, analyzer):
    """int64 ``RaggedTensor [batch, None]``: the hashed n-grams of each text of a ``[batch]`` string tensor."""
    import tensorflow as tf

    kind, low, high = check_analyzer(analyzer)
    lowered = tf.strings.lower(text, encoding="utf-8")
    if kind == "word":
        tokens = tf.strings.split(tf.strings.regex_replace(lowered, _NOT_WORD, " "))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens, unit="UTF8_CHAR") >= 2)
        grams = tf.strings.ngrams(tokens, tuple(range(low, high + 1)), separator=" ")
    else:
        words = tf.strings.split(tf.strings.regex_replace(lowered, _WHITESPACE, " "))
        padded = words.with_flat_values(tf.strings.join([" ", words.flat_values, " "]))  # Scalars broadcast.
        characters = tf.strings.unicode_split(padded, "UTF-8")  # [batch, words, characters]
        grams = tf.concat([tf.strings.ngrams(characters, n, separator="") for n in range(low, high + 1)], axis=2)
        grams = grams.merge_dims(1, 2)
    return grams.with_flat_values(tf.strings.to_hash_bucket_fast(grams.flat_values, _BUCKETS))


_KEY_FUNCTIONS = {}


def _key_function(analyzer):
    """``ngram_keys`` for ``analyzer`` as one traced function (one trace per analyzer per process)."""
    if analyzer not in _KEY_FUNCTIONS:
        import tensorflow as tf

        def keys(text):
            ragged = ngram_keys(text, analyzer)
            return ragged.flat_values, ragged.row_lengths()

        _KEY_FUNCTIONS[analyzer] = tf.function(keys, input_signature=[tf.TensorSpec([None], tf.string)],
                                               autograph=False)
    return _KEY_FUNCTIONS[analyzer]


def count_matrix(texts, analyzer, batch_size: int = 256):
    """``(counts, keys)``: the CSR ``[len(texts), len(keys)]`` n-gram count matrix and its sorted int64 ``keys``."""
    from scipy import sparse

    analyzer = check_analyzer(analyzer)
    function, flat, lengths = _key_function(analyzer), [], []
    texts = list(texts)
    for start in range(0, len(texts), batch_size):
        values, row_lengths = function(np.asarray(texts[start:start + batch_size], dtype=object))
        flat.append(values.numpy())
        lengths.append(row_lengths.numpy())
    flat = np.concatenate(flat) if flat else np.zeros(0, np.int64)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    keys, columns = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    counts = sparse.csr_matrix((np.ones(len(flat), np.float64), (rows, columns.ravel())),
                               shape=(len(texts), len(keys)))
    counts.sum_duplicates()
    return counts, keys.astype(np.int64)
