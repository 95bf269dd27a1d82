"""From texts to the padded id matrix the model reads: ``encode`` in Python, ``GraphEncoder`` in the graph.

Both follow three rules (``tests/test_parity.py`` checks that they agree):
1. ``Tokenizer.texts_to_sequences`` (legacy semantics);
2. a text with no known token becomes ``[oov_index]``, so no row is all padding (cuDNN raises on such rows,
   and a masked LSTM would return its initial state for them);
3. ``keras.utils.pad_sequences(sequences, maxlen, padding, truncating)``.
"""

from __future__ import annotations

import numpy as np

from textclf.text.tokenizer import Tokenizer
from textclf.errors import TextclfError

PADDING_MODES = ("pre", "post")


def _check_encoding_arguments(max_len, padding, truncating):
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len <= 0:
        raise TextclfError(f"`max_len` must be a positive integer. Received: max_len={max_len!r}")
    for name, value in (("padding", padding), ("truncating", truncating)):
        if value not in PADDING_MODES:
            raise TextclfError(f"`{name}` must be 'pre' or 'post'. Received: {name}={value!r}")


def truncated(sequence, max_len: int, truncating: str):
    """Rule 3's truncation of one sequence (ids or tokens): its first ``max_len`` items with "post", last with "pre"."""
    return sequence[-max_len:] if truncating == "pre" else sequence[:max_len]


def empty_index(tokenizer: Tokenizer) -> int:
    """The id that stands for a text with no known token (the OOV index)."""
    if tokenizer.oov_index is None:
        raise TextclfError("The tokenizer needs an `oov_token` so that texts without known words still produce one "
                         "token. Received: oov_token=None")
    return tokenizer.oov_index


def encode(tokenizer: Tokenizer, texts, max_len: int, padding: str = "post", truncating: str = "post",
           trim: bool = False) -> np.ndarray:
    """Padded int32 id matrix for ``texts``, shape ``[len(texts), max_len]``.

    Args:
        tokenizer: A fitted tokenizer with an OOV token.
        texts: Sequence of strings.
        max_len: Length of every row.
        padding: ``"post"`` pads on the right (the default: cuDNN needs right-padded masks).
        truncating: ``"post"`` keeps the beginning of long texts, ``"pre"`` the end.
        trim: Pad only to the longest row (at most ``max_len``): the model's output is the same (padding is
            masked), and a huge ``max_len`` costs nothing for short texts.

    Example:
        >>> encode(tokenizer, ["a gorgeous movie"], max_len=5)
        array([[ 4, 812,  9,  0,  0]], dtype=int32)
    """
    import keras

    _check_encoding_arguments(max_len, padding, truncating)
    fallback = [empty_index(tokenizer)]
    sequences = [sequence or fallback for sequence in tokenizer.texts_to_sequences_generator(texts)]
    if not sequences:
        return np.zeros((0, max_len), dtype=np.int32)
    width = min(max_len, max(map(len, sequences))) if trim else max_len
    return keras.utils.pad_sequences(sequences, maxlen=width, dtype="int32", padding=padding, truncating=truncating)


class GraphEncoder:
    """The ``encode`` rules with core TensorFlow ops over raw strings (same arguments as :func:`encode`).

    It owns a ``tf.lookup.StaticHashTable`` built from ``Tokenizer.effective_index()``: attach it to a
    ``tf.Module`` so the table is saved with the SavedModel.

    Example:
        >>> encoder = GraphEncoder(tokenizer, max_len=40)
        >>> ids = encoder(tf.constant(["a gorgeous movie"]))  # int32 [1, 40]
    """

    def __init__(self, tokenizer: Tokenizer, max_len: int, padding: str = "post", truncating: str = "post"):
        import tensorflow as tf

        _check_encoding_arguments(max_len, padding, truncating)
        self.rules = tokenizer.rules
        self.max_len = int(max_len)
        self.padding = padding
        self.truncating = truncating
        self.empty_id = empty_index(tokenizer)
        # Words that convert to the OOV index need no entry (the default value covers them); the OOV token itself
        # stays, so the table is never empty (TensorFlow refuses an empty initializer).
        mapping = {word: index for word, index in tokenizer.effective_index().items()
                   if index != self.empty_id or word == tokenizer.oov_token}
        keys = tf.constant(list(mapping), dtype=tf.string)
        values = tf.constant(list(mapping.values()), dtype=tf.int32)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=self.empty_id
        )

    def __call__(self, texts):
        """Ids for a ``[batch]`` string tensor: int32 ``[batch, max_len]``."""
        return self.padded(texts, self.max_len, self.padding)[0]

    def padded(self, texts, width=None, padding="post"):
        """``(ids, lengths)``: int32 ``[batch, width]`` (default width: the longest row, at least 1) and int32
        ``[batch]``, each row's length (1 to ``max_len``: an empty text is ``[empty_id]``)."""
        import tensorflow as tf

        ids, rows, positions, lengths = self._tokens(texts)
        # Rule 2: a row with no token becomes [empty_id].
        empty = lengths == 0
        lengths = tf.maximum(lengths, 1)
        if width is None:
            width = tf.reduce_max(tf.concat([lengths, [1]], 0))
        # Rule 3, padding, as keras.utils.pad_sequences does.
        if padding == "pre":
            positions += tf.gather(width - lengths, rows)
        batch = tf.shape(lengths)[0]
        dense = tf.scatter_nd(tf.stack([rows, positions], axis=1), ids, tf.stack([batch, width]))
        filler_column = tf.range(width) == (0 if padding == "post" else width - 1)
        filler = tf.logical_and(empty[:, tf.newaxis], filler_column[tf.newaxis, :])
        return dense + tf.cast(filler, tf.int32) * self.empty_id, lengths

    def _tokens(self, texts):
        """Rules 1 and 3 (truncation) on the flat tokens: ``(ids, rows, positions, lengths)``.

        The kept tokens' ids, rows and positions in their row (int32 ``[tokens]``), and each row's number of
        kept tokens (int32 ``[batch]``, 0 for a text without tokens).
        """
        import tensorflow as tf

        tokens, rows = self.rules.split_graph_flat(texts)
        rows = tf.cast(rows, tf.int32)
        ids = self.table.lookup(tokens)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, tf.shape(texts)[0])
        positions = tf.range(tf.size(rows)) - tf.gather(tf.cumsum(counts, exclusive=True), rows)
        lengths = tf.minimum(counts, self.max_len)
        # Rule 3, truncation: "post" keeps a row's first max_len tokens, "pre" its last.
        if self.truncating == "pre":
            positions -= tf.gather(counts - lengths, rows)
            kept = tf.where(positions >= 0)[:, 0]
        else:
            kept = tf.where(positions < self.max_len)[:, 0]
        return tf.gather(ids, kept), tf.gather(rows, kept), tf.gather(positions, kept), lengths
