"""Pretrained word vectors (GloVe, word2vec text, fastText ``.vec``, optionally ``.gz``), mapped onto a vocabulary.

The file is read line by line, keeping only the vocabulary's words, so a multi-gigabyte file costs little memory.
Format: a word and its numbers per line, separated by spaces; a first line ``count dimension`` is skipped.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
from textclf.errors import TextclfError


@dataclasses.dataclass
class PretrainedEmbeddings:
    """An embedding matrix for a vocabulary, and how much of it the file covered.

    Attributes:
        matrix: float32 ``[vocabulary_size, dimension]``; row 0 (padding) is zeros,
            rows of words missing from the file are small random vectors.
        found: Vocabulary words (ids ``1..vocabulary_size-1``) that had a vector.
        total: Vocabulary words looked up.
    """

    matrix: np.ndarray
    found: int
    total: int

    @property
    def coverage(self) -> float:
        return self.found / self.total if self.total else 0.0


def load_embeddings(path, tokenizer, vocabulary_size: int, dimension: int, seed: int = 0) -> PretrainedEmbeddings:
    """Reads vectors for the words of ``tokenizer`` (ids ``< vocabulary_size``) of size ``dimension``.

    A word's exact form wins over another casing of it; ``seed`` seeds the random vectors of missing words.

    Raises:
        ValueError: naming the file and line of a malformed line, or a dimension other than ``embedding_dim``.
    """
    path = Path(path)
    if not path.is_file():
        raise TextclfError(f"Embeddings file not found: {path}")
    wanted = {word: index for word, index in tokenizer.word_index.items() if 0 < index < vocabulary_size}
    # The first id of each lowercased form (reversed, so the first one is written last).
    lowercase_wanted = {word.lower(): index for word, index in reversed(wanted.items())}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(vocabulary_size, dimension)).astype("float32")
    matrix[0] = 0.0
    exact_found: set[int] = set()
    case_found: set[int] = set()
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(part.isascii() and part.isdigit() for part in parts):
                    if int(parts[1]) != dimension:
                        raise _dimension_error(path, int(parts[1]), dimension)
                    continue
                if len(parts) < 2 or not parts[0]:
                    if not line.strip():
                        continue
                    raise TextclfError(f"{path} line {number}: expected a word followed by {dimension} numbers")
                if len(parts) - 1 != dimension:
                    if number <= 2:
                        raise _dimension_error(path, len(parts) - 1, dimension)
                    raise TextclfError(
                        f"{path} line {number}: expected {dimension} numbers after the word, found {len(parts) - 1}"
                    )
                word = parts[0]
                exact = word in wanted
                index = wanted[word] if exact else lowercase_wanted.get(word.lower())
                # A vector for the exact form always wins over one for another casing.
                if index is None or index in exact_found or (not exact and index in case_found):
                    continue
                try:
                    matrix[index] = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise TextclfError(f"{path} line {number}: the numbers after {word!r} are not all numbers") from None
                (exact_found if exact else case_found).add(index)
    except UnicodeDecodeError as error:
        raise TextclfError(f"{path}: not UTF-8 text ({error.reason})") from None
    except (OSError, EOFError) as error:
        raise TextclfError(f"{path}: cannot be read ({error})") from None
    return PretrainedEmbeddings(matrix, len(exact_found | case_found), len(wanted))


def _dimension_error(path, found, expected):
    return TextclfError(
        f"{path} holds vectors of dimension {found}, but embedding_dim is {expected}; "
        f"pass --embedding-dim {found}"
    )
