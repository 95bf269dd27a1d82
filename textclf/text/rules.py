"""The tokenization rules, defined once and executed in Python and with TensorFlow string ops.

Legacy Keras: lowercase (``str.lower``), replace every filter character by the split string, split on it,
drop empty tokens; ``char_level`` only lowercases and takes every character (spaces included) as a token.
``TextRules.split_python`` serves :class:`textclf.Tokenizer`, ``split_graph`` the exported SavedModel (raw text
in); ``tests/test_parity.py`` checks them against each other on arbitrary Unicode.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from textclf.errors import TextclfError

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

# Letters newer than the ICU tables of TensorFlow 2.21: ``tf.strings.lower`` leaves them unchanged, so the graph
# maps them explicitly.  tests/test_parity.py sweeps every code point and fails if this list goes stale.
LOWERCASE_EXCEPTIONS = {chr(code): chr(code).lower() for code in (0x2C2F, 0xA7C0, 0xA7D0, 0xA7D6, 0xA7D8,
                                                                   *range(0x10570, 0x10596))
                        if code not in (0x1057B, 0x1058B, 0x10593)}


# Scripts written without spaces, each character a token in CJK mode: (first, last) code points of CJK Unified
# Ideographs and extensions A-F, compatibility ideographs, Hiragana, Katakana, Hangul syllables.
CJK_RANGES = (
    (0x3040, 0x309F), (0x30A0, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF), (0x20000, 0x2EBEF), (0x2F800, 0x2FA1F),
)
# Ideographic and fullwidth punctuation separate tokens in CJK mode, like the ASCII filters.
CJK_PUNCTUATION = "".join(
    chr(code) for first, last in ((0x3000, 0x303F), (0xFF01, 0xFF0F), (0xFF1A, 0xFF20), (0xFF3B, 0xFF40),
                                  (0xFF5B, 0xFF65))
    for code in range(first, last + 1)
)
CJK_MODES = ("off", "chars", "bigrams")
_CJK_PYTHON = re.compile("[" + "".join(f"{chr(first)}-{chr(last)}" for first, last in CJK_RANGES) + "]")
_CJK_RE2 = "[" + "".join(f"\\x{{{first:x}}}-\\x{{{last:x}}}" for first, last in CJK_RANGES) + "]"


def is_cjk_bigram(token: str) -> bool:
    """Whether ``token`` is a bigram of ``cjk="bigrams"``: two CJK characters (a CJK unit is one character)."""
    return len(token) == 2 and all(_CJK_PYTHON.fullmatch(character) for character in token)


def is_cjk_bigram_graph(tokens):
    """``is_cjk_bigram`` of a ``tf.string`` tensor of tokens, elementwise (a ``tf.bool`` tensor of its shape)."""
    import tensorflow as tf

    return tf.strings.regex_full_match(tokens, _CJK_RE2 * 2)


def cjk_share(texts) -> float:
    """Share of ``texts`` whose non-space characters are mostly CJK (for automatic mode choice)."""
    texts = list(texts)
    mostly = sum(2 * len(_CJK_PYTHON.findall(text)) > len(text) - sum(map(str.isspace, text)) for text in texts)
    return mostly / len(texts) if texts else 0.0


@functools.lru_cache(maxsize=16)
def _translation_table(separators: str, split: str) -> dict:
    """``str.translate`` table replacing every separator by ``split``; built once per rules, not once per text."""
    return str.maketrans({character: split for character in separators})


def _regex_class(characters: str) -> str:
    """An RE2 character class matching exactly ``characters`` (escaped by code point)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(characters))) + "]"


@dataclasses.dataclass(frozen=True)
class TextRules:
    """How a text becomes a list of tokens (legacy Keras semantics).

    Args:
        filters: Characters replaced by ``split`` before splitting.
        lower: Whether to lowercase the text first.
        split: The separator between tokens (a non-empty string).
        char_level: Every character is a token; ``filters`` are not applied.
        cjk: ``"off"`` (legacy word mode), ``"chars"``: every CJK character is
            a token while Latin words and numbers stay whole, and CJK
            punctuation separates tokens; ``"bigrams"``: as ``"chars"``, plus
            a token for each pair of adjacent CJK characters, placed between them.

    Example:
        >>> TextRules().split_python("Hello, World!")
        ['hello', 'world']
        >>> TextRules(cjk="chars").split_python("这部iPhone 15 手机很好用")
        ['这', '部', 'iphone', '15', '手', '机', '很', '好', '用']
    """

    filters: str = DEFAULT_FILTERS
    lower: bool = True
    split: str = " "
    char_level: bool = False
    cjk: str = "off"

    def __post_init__(self):
        if not isinstance(self.filters, str):
            raise TextclfError(f"`filters` must be a string. Received: filters={self.filters!r}")
        if not isinstance(self.split, str) or not self.split:
            raise TextclfError(f"`split` must be a non-empty string. Received: split={self.split!r}")
        if self.cjk not in CJK_MODES:
            raise TextclfError(f"`cjk` must be one of {', '.join(CJK_MODES)}. Received: cjk={self.cjk!r}")

    @property
    def _separators(self) -> str:
        return self.filters + (CJK_PUNCTUATION if self.cjk != "off" else "")

    def split_python(self, text: str) -> list[str]:
        """Tokens of one text, exactly as the legacy ``text_to_word_sequence`` in word mode."""
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        if self.cjk != "off":
            text = _CJK_PYTHON.sub(lambda match: self.split + match.group(0) + self.split, text)
        if self._separators:
            text = text.translate(_translation_table(self._separators, self.split))
        pieces = text.split(self.split)
        if self.cjk == "bigrams":
            # Two CJK characters adjacent in the text end up with exactly one
            # empty piece between them; that slot receives their bigram.
            joined, cjk = list(pieces), _CJK_PYTHON.fullmatch
            for position in range(1, len(pieces) - 1):
                before, after = pieces[position - 1], pieces[position + 1]
                if not pieces[position] and len(before) == 1 == len(after) and cjk(before) and cjk(after):
                    joined[position] = before + after
            pieces = joined
        return [token for token in pieces if token]

    def split_graph(self, texts):
        """Tokens of a ``[batch]`` ``tf.string`` tensor (UTF-8) with core TensorFlow ops: ragged ``[batch, None]``."""
        import tensorflow as tf

        tokens, rows = self.split_graph_flat(texts)
        return tf.RaggedTensor.from_value_rowids(tokens, rows, nrows=tf.shape(texts, out_type=tf.int64)[0])

    def split_graph_flat(self, texts):
        """``split_graph`` flat: ``(tokens, rows)``, ``tf.string`` and ``tf.int64`` ``[tokens]``, in order."""
        import tensorflow as tf

        if self.lower:
            texts = lowercase_graph(texts)
        if self.char_level:
            characters = tf.strings.unicode_split(texts, "UTF-8")
            return characters.flat_values, characters.value_rowids()
        separator = self.split.replace("\\", "\\\\")  # Escaped for regex_replace's rewrite argument.
        if self.cjk != "off":
            texts = tf.strings.regex_replace(texts, "(" + _CJK_RE2 + ")", separator + "\\1" + separator)
        if self._separators:
            texts = tf.strings.regex_replace(texts, _regex_class(self._separators), separator)
        indices, pieces, _ = tf.raw_ops.StringSplitV2(input=texts, sep=self.split)
        rows = indices[:, 0]
        if self.cjk == "bigrams":
            pieces = _bigrams_graph(pieces, rows)
        kept = tf.where(tf.not_equal(pieces, ""))[:, 0]
        return tf.gather(pieces, kept), tf.gather(rows, kept)


def _bigrams_graph(pieces, rows):
    """Graph twin of ``split_python``'s bigram step: fills the empty piece between two CJK pieces of one row."""
    import tensorflow as tf

    count = tf.size(pieces, out_type=tf.int64)
    position = tf.range(count, dtype=tf.int64)
    before = tf.maximum(position - 1, 0)
    after = tf.minimum(position + 1, tf.maximum(count - 1, 0))
    single_cjk = tf.strings.regex_full_match(pieces, _CJK_RE2)
    slot = (
        (pieces == "")
        & (position > 0) & (position < count - 1)
        & tf.equal(tf.gather(rows, before), rows) & tf.equal(tf.gather(rows, after), rows)
        & tf.gather(single_cjk, before) & tf.gather(single_cjk, after)
    )
    bigrams = tf.strings.join([tf.gather(pieces, before), tf.gather(pieces, after)])
    return tf.where(slot, bigrams, pieces)


def lowercase_graph(texts):
    """``str.lower`` for a ``[batch]`` tensor of UTF-8 strings, in the graph.

    ``tf.strings.lower(..., encoding="utf-8")`` stops at the first NUL byte, so each NUL-separated piece is lowered
    on its own (a NUL breaks Greek final sigma's context in Python too); letters newer than TensorFlow's tables are
    mapped one by one.  A batch with neither takes one ``StringLower``; the general path is a non-inlined function.
    """
    import tensorflow as tf

    plain = tf.strings.regex_full_match(texts, "[^" + _regex_class("\x00" + "".join(LOWERCASE_EXCEPTIONS))[1:] + "*")
    return tf.cond(tf.reduce_all(plain), lambda: tf.strings.lower(texts, encoding="utf-8"),
                   lambda: _lowercase_general()(texts))


@functools.cache
def _lowercase_general():
    """The ``tf.function`` of the general path of ``lowercase_graph`` (made on first use: TensorFlow loads lazily)."""
    import tensorflow as tf

    return tf.function(_lowercase_any, autograph=False, experimental_attributes={"_noinline": True})


def _lowercase_any(texts):
    """``lowercase_graph`` for any text: NUL-separated pieces lowered one by one, newer letters mapped."""
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
