"""Pretrained word vectors (GloVe, word2vec text, fastText ``.vec``), mapped onto a vocabulary.

The file is read line by line and only the vectors of words in the
tokenizer's vocabulary are kept, so a multi-gigabyte file costs little memory.
Formats: one word and its numbers per line, separated by spaces; a first line
of two integers (``count dimension``, word2vec/fastText header) is skipped.
A ``.gz`` file is decompressed on the fly.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np


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


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def load_embeddings(path, tokenizer, vocabulary_size: int, dimension: int, seed: int = 0) -> PretrainedEmbeddings:
    """Reads vectors for the words of ``tokenizer`` (ids ``< vocabulary_size``).

    Args:
        path: ``.txt``/``.vec`` file, optionally ``.gz``.
        tokenizer: The fitted tokenizer.
        vocabulary_size: Rows of the embedding matrix.
        dimension: Expected vector size (``embedding_dim``).
        seed: Seed of the random vectors for words the file lacks.

    Returns:
        A :class:`PretrainedEmbeddings`.

    Raises:
        ValueError: naming the file and line of a malformed line, or the
            dimension that disagrees with ``embedding_dim``.

    Example:
        >>> vectors = load_embeddings("glove.6B.100d.txt.gz", tokenizer, tokenizer.vocabulary_size, 100)
        >>> f"{vectors.coverage:.1%}"
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Embeddings file not found: {path}")
    wanted = {word: index for word, index in tokenizer.word_index.items() if 0 < index < vocabulary_size}
    lowercase_wanted = {}
    for word, index in wanted.items():
        lowercase_wanted.setdefault(word.lower(), index)
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.05, size=(vocabulary_size, dimension)).astype("float32")
    matrix[0] = 0.0
    exact_found: set[int] = set()
    case_found: set[int] = set()
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
                    if int(parts[1]) != dimension:
                        raise _dimension_error(path, int(parts[1]), dimension)
                    continue
                if len(parts) < 2 or not parts[0]:
                    if not line.strip():
                        continue
                    raise ValueError(f"{path} line {number}: expected a word followed by {dimension} numbers")
                if len(parts) - 1 != dimension:
                    if number <= 2:
                        raise _dimension_error(path, len(parts) - 1, dimension)
                    raise ValueError(
                        f"{path} line {number}: expected {dimension} numbers after the word, found {len(parts) - 1}"
                    )
                word = parts[0]
                index = wanted.get(word)
                exact = index is not None
                if index is None:
                    index = lowercase_wanted.get(word.lower())
                    # A vector for the exact form always wins over one for another casing.
                    if index is None or index in exact_found or index in case_found:
                        continue
                elif index in exact_found:
                    continue
                try:
                    matrix[index] = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise ValueError(f"{path} line {number}: the numbers after {word!r} are not all numbers") from None
                (exact_found if exact else case_found).add(index)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason})") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: cannot be read ({error})") from None
    return PretrainedEmbeddings(matrix, len(exact_found | case_found), len(wanted))


def _dimension_error(path, found, expected):
    return ValueError(
        f"{path} holds vectors of dimension {found}, but embedding_dim is {expected}; "
        f"pass --embedding-dim {found}"
    )
