"""A tokenizer with the classic Keras API and legacy semantics, for Keras 3.

Keras 3 removed ``keras.preprocessing.text.Tokenizer``.  This class keeps its
API and reproduces its output exactly (``tests/test_tokenizer.py`` checks it
against tf_keras as an oracle); its JSON is the legacy format, so
``tf_keras.preprocessing.text.tokenizer_from_json`` reads it and the other way
round.  It never pickles.

Legacy rules reproduced here:
- ``word_index`` is ordered by descending count, ties in first-seen order;
  the OOV token (when given) takes index 1 and index 0 is never assigned.
- ``num_words`` keeps indices ``< num_words`` when converting texts; other
  words become the OOV index, or are dropped when there is no OOV token.
"""

from __future__ import annotations

import collections
import json
from typing import Iterable

from textclf.text.rules import DEFAULT_FILTERS, TextRules


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
        if num_words is not None and (
            isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 0
        ):
            raise ValueError(
                f"`num_words` must be None or a non-negative integer. Received: num_words={num_words!r}"
            )
        if oov_token is not None and not isinstance(oov_token, str):
            raise ValueError(f"`oov_token` must be None or a string. Received: oov_token={oov_token!r}")
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
        # Legacy Keras accepts a pre-tokenized text (a list of strings): it is
        # only lowercased, never filtered or split.
        if isinstance(text, list):
            return [token.lower() for token in text] if self.lower else text
        return self.rules.split_python(text)

    def fit_on_texts(self, texts: Iterable) -> None:
        """Updates the vocabulary from ``texts`` (strings or lists of tokens).

        ``texts`` may be any iterable, a generator over a file included: it is
        read once and never held (see :meth:`count_text` to do more in the same pass).
        """
        for text in texts:
            self.count_text(text)
        self.finish_fit()

    def count_text(self, text) -> int:
        """Counts one text's tokens: the streaming half of :meth:`fit_on_texts`.

        Call it once per text, then :meth:`finish_fit` once; the result is
        exactly :meth:`fit_on_texts` over the same texts (it is built on these two).

        Args:
            text: A string or a list of tokens.

        Returns:
            The number of tokens of ``text`` (its sequence length, given an OOV token).

        Example:
            >>> tokenizer = Tokenizer(oov_token="<unk>")
            >>> [tokenizer.count_text(text) for text in ["the cat", "the dog sat"]]
            [2, 3]
            >>> tokenizer.finish_fit()
            >>> tokenizer.word_index["the"]
            2
        """
        self.document_count += 1
        tokens = self._tokens(text)
        counts = self.word_counts
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
        documents = self.word_docs
        for token in set(tokens):
            documents[token] += 1
        return len(tokens)

    def finish_fit(self) -> None:
        """Builds ``word_index``, ``index_word`` and ``index_docs`` from the counts so far."""
        # ``sorted`` is stable, so words with equal counts keep first-seen order.
        by_count = sorted(self.word_counts.items(), key=lambda item: item[1], reverse=True)
        vocabulary = [] if self.oov_token is None else [self.oov_token]
        vocabulary.extend(word for word, _ in by_count)
        # ``dict(zip(...))``: if the OOV token is also a word, its later index wins, as in legacy Keras.
        self.word_index = dict(zip(vocabulary, range(1, len(vocabulary) + 1)))
        self.index_word = {index: word for word, index in self.word_index.items()}
        self.index_docs = collections.defaultdict(int)
        for word, count in self.word_docs.items():
            self.index_docs[self.word_index[word]] = count

    def effective_index(self) -> dict[str, int]:
        """The index each known word converts to, after ``num_words`` is applied.

        Words whose index is ``>= num_words`` map to the OOV index, or are left
        out when there is no OOV token.  This mapping is the single source of
        both ``texts_to_sequences`` and the lookup table of the exported graph.
        """
        oov_index = self.oov_index
        mapping = {}
        for word, index in self.word_index.items():
            if self.num_words and index >= self.num_words:
                if oov_index is None:
                    continue
                index = oov_index
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
        unknown = self.oov_index if self.oov_token is not None else None
        for text in texts:
            sequence = []
            for token in self._tokens(text):
                index = mapping.get(token, unknown)
                if index is not None:
                    sequence.append(index)
            yield sequence

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
        """The tokenizer's settings and fitted state (legacy JSON layout).

        ``cjk`` appears only when it is not ``"off"``, so word-mode JSON stays
        readable by tf_keras.
        """
        extension = {"cjk": self.cjk} if self.cjk != "off" else {}
        return {**extension,
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs) -> str:
        """JSON string that :func:`tokenizer_from_json` (or tf_keras's) restores."""
        return json.dumps({"class_name": self.__class__.__name__, "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """Restores a :class:`Tokenizer` from :meth:`Tokenizer.to_json` output.

    Args:
        json_string: The JSON text.

    Returns:
        The tokenizer, with the same vocabulary and settings.

    Example:
        >>> restored = tokenizer_from_json(tokenizer.to_json())
    """
    try:
        data = json.loads(json_string)
        config = dict(data["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Not a tokenizer JSON document: {error}") from None
    state = {name: json.loads(config.pop(name)) for name in
             ("word_counts", "word_docs", "index_docs", "index_word", "word_index")}
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = collections.OrderedDict(state["word_counts"])
    tokenizer.word_docs = collections.defaultdict(int, state["word_docs"])
    tokenizer.index_docs = collections.defaultdict(int, {int(k): v for k, v in state["index_docs"].items()})
    tokenizer.index_word = {int(k): v for k, v in state["index_word"].items()}
    tokenizer.word_index = state["word_index"]
    return tokenizer
