"""The legacy Keras ``Tokenizer`` (removed in Keras 3): same API, same output (tf_keras is the oracle in
``tests/test_tokenizer.py``), and its JSON format both ways; it never pickles.

Legacy rules: ``word_index`` is ordered by descending count, ties in first-seen order; the OOV token (when given)
takes index 1 and index 0 is never assigned.  ``num_words`` keeps indices ``< num_words`` when converting texts;
other words become the OOV index, or are dropped when there is no OOV token.
"""

from __future__ import annotations

import collections
import json
from typing import Iterable

from textclf.text.rules import DEFAULT_FILTERS, TextRules
from textclf.errors import TextclfError

# The fitted state, stored in the JSON as JSON strings (legacy layout).
_STATE = ("word_counts", "word_docs", "index_docs", "index_word", "word_index")


class Tokenizer:
    """Turns texts into sequences of word indices (legacy Keras ``Tokenizer``).

    Args:
        num_words: Keep only indices ``< num_words`` when converting texts;
            ``None`` (or 0, as in legacy Keras) keeps every word.
        filters: Characters replaced by ``split`` before splitting.
        lower: Lowercase texts first.
        split: Separator between words.
        char_level: Every character is a token.
        oov_token: Token for words outside the vocabulary (index 1), or
            ``None`` to drop them.
        document_count: Number of texts seen by ``fit_on_texts`` (restored
            from JSON; leave at 0 for a new tokenizer).
        cjk: ``"off"`` (legacy), ``"chars"`` or ``"bigrams"``: CJK characters
            as tokens (a textclf extension, see :class:`textclf.text.rules.TextRules`).

    Example:
        >>> tokenizer = Tokenizer(oov_token="<unk>")
        >>> tokenizer.fit_on_texts(["the cat", "the dog"])
        >>> tokenizer.texts_to_sequences(["the bird"])
        [[2, 1]]
    """

    def __init__(
        self,
        num_words: int | None = None,
        filters: str = DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
        cjk: str = "off",
    ):
        if num_words is not None and (isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 0):
            raise TextclfError(f"`num_words` must be None or a non-negative integer. Received: num_words={num_words!r}")
        if oov_token is not None and not isinstance(oov_token, str):
            raise TextclfError(f"`oov_token` must be None or a string. Received: oov_token={oov_token!r}")
        self.rules = TextRules(filters=filters, lower=lower, split=split, char_level=char_level, cjk=cjk)
        self.num_words = num_words
        self.oov_token = oov_token
        self.document_count = document_count
        self.word_counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.word_docs: collections.defaultdict[str, int] = collections.defaultdict(int)
        self.index_docs: collections.defaultdict[int, int] = collections.defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}

    # The settings live in ``rules``; these read-only views keep the legacy attribute names.
    filters = property(lambda self: self.rules.filters)
    lower = property(lambda self: self.rules.lower)
    split = property(lambda self: self.rules.split)
    char_level = property(lambda self: self.rules.char_level)
    cjk = property(lambda self: self.rules.cjk)

    def _tokens(self, text) -> list[str]:
        # Legacy Keras accepts a pre-tokenized text (a list of strings): only lowercased, never filtered or split.
        if isinstance(text, list):
            return [token.lower() for token in text] if self.lower else text
        return self.rules.split_python(text)

    def fit_on_texts(self, texts: Iterable) -> None:
        """Updates the vocabulary from ``texts`` (strings or lists of tokens; any iterable, read once)."""
        for text in texts:
            self.count_text(text)
        self.finish_fit()

    def count_text(self, text) -> int:
        """Counts one text's tokens and returns their number (its sequence length, given an OOV token).

        The streaming half of :meth:`fit_on_texts`: :meth:`count_text` once per text, then :meth:`finish_fit`.
        """
        self.document_count += 1
        tokens = self._tokens(text)
        counts = self.word_counts
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        for token in set(tokens):
            self.word_docs[token] += 1
        return len(tokens)

    def finish_fit(self) -> None:
        """Builds ``word_index``, ``index_word`` and ``index_docs`` from the counts so far."""
        vocabulary = [] if self.oov_token is None else [self.oov_token]
        # ``sorted`` is stable (``reverse`` too), so words with equal counts keep first-seen order.
        vocabulary += sorted(self.word_counts, key=self.word_counts.get, reverse=True)
        # ``dict(zip(...))``: if the OOV token is also a word, its later index wins, as in legacy Keras.
        self.word_index = dict(zip(vocabulary, range(1, len(vocabulary) + 1)))
        self.index_word = {index: word for word, index in self.word_index.items()}
        self.index_docs = collections.defaultdict(int, {self.word_index[w]: n for w, n in self.word_docs.items()})

    def effective_index(self) -> dict[str, int]:
        """The index each known word converts to after ``num_words`` (the OOV index, or left out without one).

        The single source of ``texts_to_sequences`` and of the exported graph's lookup table.
        """
        oov_index = self.oov_index
        mapping = {}
        for word, index in self.word_index.items():
            if self.num_words and index >= self.num_words:
                index = oov_index
            if index is not None:
                mapping[word] = index
        return mapping

    @property
    def oov_index(self) -> int | None:
        """Index of the OOV token, or ``None`` when there is none."""
        return None if self.oov_token is None else self.word_index.get(self.oov_token)

    @property
    def vocabulary_size(self) -> int:
        """Rows an ``Embedding`` needs: one more than the largest index produced."""
        largest = max(self.effective_index().values(), default=0)
        return max(largest, self.oov_index or 0) + 1

    def texts_to_sequences(self, texts: Iterable) -> list[list[int]]:
        """Converts each text to a list of word indices."""
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts: Iterable):
        """Yields one list of word indices per text."""
        mapping = self.effective_index()
        unknown = self.oov_index
        for text in texts:
            indices = (mapping.get(token, unknown) for token in self._tokens(text))
            yield [index for index in indices if index is not None]

    def sequences_to_texts(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        """Converts index sequences back to space-joined texts (legacy semantics)."""
        texts = []
        oov_index = self.oov_index
        for sequence in sequences:
            words = []
            for index in sequence:
                word = self.index_word.get(index)
                if word is not None and not (self.num_words and index >= self.num_words):
                    words.append(word)
                elif oov_index is not None:
                    words.append(self.index_word[oov_index])
            texts.append(" ".join(words))
        return texts

    def get_config(self) -> dict:
        """The settings and fitted state (legacy layout); ``cjk`` only when not ``"off"``, so tf_keras reads it."""
        settings = ("num_words", "filters", "lower", "split", "char_level", "oov_token", "document_count")
        config = {"cjk": self.cjk} if self.cjk != "off" else {}
        config.update((name, getattr(self, name)) for name in settings)
        config.update((name, json.dumps(getattr(self, name))) for name in _STATE)
        return config

    def to_json(self, **kwargs) -> str:
        """JSON string that :func:`tokenizer_from_json` (or tf_keras's) restores."""
        return json.dumps({"class_name": self.__class__.__name__, "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """Restores a :class:`Tokenizer` from :meth:`Tokenizer.to_json` output (or tf_keras's)."""
    try:
        data = json.loads(json_string)
        config = dict(data["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise TextclfError(f"Not a tokenizer JSON document: {error}") from None
    state = {name: json.loads(config.pop(name)) for name in _STATE}
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = collections.OrderedDict(state["word_counts"])
    tokenizer.word_docs = collections.defaultdict(int, state["word_docs"])
    tokenizer.index_docs = collections.defaultdict(int, {int(k): v for k, v in state["index_docs"].items()})
    tokenizer.index_word = {int(k): v for k, v in state["index_word"].items()}
    tokenizer.word_index = state["word_index"]
    return tokenizer
