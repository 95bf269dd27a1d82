"""The tokenization rules, defined once and executed two ways.

The legacy Keras tokenizer turns a text into tokens in three steps: lowercase
(Python's ``str.lower``), replace every filter character by the split string,
split on the split string and drop empty tokens.  In ``char_level`` mode it
only lowercases and takes every character as a token (filters are ignored,
spaces are tokens).

``TextRules`` holds those settings and runs the steps in Python
(``split_python``, used by :class:`textclf.Tokenizer`) and with core
TensorFlow string ops (``split_graph``, used inside the exported SavedModel so
that TF Serving receives raw text).  Both methods sit side by side here so a
change to one is a change to the other, and the parity tests in
``tests/test_parity.py`` check them against each other on arbitrary Unicode.
"""

from __future__ import annotations

import dataclasses

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

# Code points whose lowercase in Python differs from ``tf.strings.lower`` with
# UTF-8 encoding: letters added to Unicode after the ICU tables that
# TensorFlow 2.21 ships.  TensorFlow leaves them unchanged, so the graph maps
# them explicitly.  ``tests/test_parity.py::test_lowercase_matches_python_on_every_code_point``
# sweeps all code points and fails if this list goes stale.
_LOWERCASE_EXCEPTIONS = (
    [0x2C2F, 0xA7C0, 0xA7D0, 0xA7D6, 0xA7D8]
    + [code for code in range(0x10570, 0x10596) if code not in (0x1057B, 0x1058B, 0x10593)]
)
LOWERCASE_EXCEPTIONS = {chr(code): chr(code).lower() for code in _LOWERCASE_EXCEPTIONS}


def _regex_class(characters: str) -> str:
    """An RE2 character class matching exactly ``characters`` (escaped by code point)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(characters))) + "]"


def _regex_rewrite_literal(text: str) -> str:
    """Escapes ``text`` for the rewrite argument of ``tf.strings.regex_replace``."""
    return text.replace("\\", "\\\\")


@dataclasses.dataclass(frozen=True)
class TextRules:
    """How a text becomes a list of tokens (legacy Keras semantics).

    Args:
        filters: Characters replaced by ``split`` before splitting.
        lower: Whether to lowercase the text first.
        split: The separator between tokens (a non-empty string).
        char_level: Every character is a token; ``filters`` are not applied.

    Example:
        >>> TextRules().split_python("Hello, World!")
        ['hello', 'world']
    """

    filters: str = DEFAULT_FILTERS
    lower: bool = True
    split: str = " "
    char_level: bool = False

    def __post_init__(self):
        if not isinstance(self.filters, str):
            raise ValueError(f"`filters` must be a string. Received: filters={self.filters!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"`split` must be a non-empty string. Received: split={self.split!r}")

    # ----------------------------------------------------------------- Python
    def split_python(self, text: str) -> list[str]:
        """Tokens of one text, exactly as the legacy ``text_to_word_sequence``."""
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        if self.filters:
            text = text.translate(str.maketrans({c: self.split for c in self.filters}))
        return [token for token in text.split(self.split) if token]

    # ------------------------------------------------------------------ graph
    def split_graph(self, texts):
        """Tokens of a batch of texts with core TensorFlow ops.

        Args:
            texts: ``tf.string`` tensor of shape ``[batch]`` (UTF-8).

        Returns:
            A ``tf.RaggedTensor`` of ``tf.string``, shape ``[batch, None]``.
        """
        import tensorflow as tf

        if self.lower:
            texts = lowercase_graph(texts)
        if self.char_level:
            return tf.strings.unicode_split(texts, "UTF-8")
        if self.filters:
            texts = tf.strings.regex_replace(
                texts, _regex_class(self.filters), _regex_rewrite_literal(self.split)
            )
        tokens = tf.strings.split(texts, sep=self.split)
        return tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)


def lowercase_graph(texts):
    """``str.lower`` for a ``[batch]`` tensor of UTF-8 strings, in the graph.

    ``tf.strings.lower(..., encoding="utf-8")`` stops at the first NUL byte, so
    each NUL-separated piece is lowered on its own and joined back (a NUL
    breaks the context of Greek final sigma in Python too).  Letters newer
    than TensorFlow's Unicode tables are then mapped one by one, only when a
    batch contains any of them.
    """
    import tensorflow as tf

    pieces = tf.strings.split(texts, sep="\x00")
    lowered = tf.strings.lower(pieces.flat_values, encoding="utf-8")
    # ``reduce_join``'s separator is an attribute that cannot hold a NUL, so
    # each piece but the last of its row gets a NUL appended as a tensor.
    positions = tf.range(tf.size(lowered, out_type=tf.int64), dtype=tf.int64)
    is_last = positions == tf.gather(pieces.row_limits(), pieces.value_rowids()) - 1
    suffixes = tf.where(is_last, tf.constant(""), tf.constant("\x00"))
    lowered = pieces.with_flat_values(tf.strings.join([lowered, suffixes]))
    texts = tf.strings.reduce_join(lowered, axis=-1)

    def map_exceptions():
        result = texts
        for upper, lower in LOWERCASE_EXCEPTIONS.items():
            result = tf.strings.regex_replace(result, _regex_class(upper), lower)
        return result

    clean = tf.strings.regex_full_match(texts, "[^" + _regex_class("".join(LOWERCASE_EXCEPTIONS))[1:] + "*")
    return tf.cond(tf.reduce_all(clean), lambda: texts, map_exceptions)
