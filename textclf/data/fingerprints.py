"""Fingerprints of texts: 64-bit hashes that tell texts apart without keeping them.

A run keeps the hashes of its training texts (:data:`FINGERPRINT_FILE`, in the run folder and each export), so
``textclf evaluate`` can say how many of its rows the model was trained on (:func:`trained_rows`).  Texts are
compared after :func:`normalised`: Unicode NFC with runs of whitespace made one space and the ends stripped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from pathlib import Path

import numpy as np

# Beside the run's other files and in every export version, next to textclf.json.
FINGERPRINT_FILE = "training_texts.json"
FORMAT = "textclf-text-hashes-1"
HASH_NAME = "blake2b, 8 bytes, of the UTF-8 of the text in NFC with whitespace runs made one space, ends stripped"
# At most this many hashes are kept (8 MiB); above it the smallest are kept, a uniform sample of the distinct texts.
MAX_HASHES = 1 << 20


def normalised(text: str) -> str:
    """``text`` as the checks compare it: NFC, whitespace runs made one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_hash(text: str) -> int:
    """The 64-bit hash of :func:`normalised` ``text``."""
    digest = hashlib.blake2b(normalised(text).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def text_hashes(texts) -> np.ndarray:
    """uint64 :func:`text_hash` of each text, in order."""
    return np.fromiter((text_hash(text) for text in texts), dtype=np.uint64)


class HashSet:
    """Distinct text hashes, bounded: past :data:`MAX_HASHES` only the smallest are kept (a bottom-k sample).

    A text is in the sample exactly when its hash is at most :attr:`limit`, so the overlap counted among rows in
    that range, scaled by their share, estimates the whole overlap.
    """

    def __init__(self, hashes=None, sampled: bool = False, rows: int = 0):
        self.hashes = np.zeros(0, dtype=np.uint64) if hashes is None else np.asarray(hashes, dtype=np.uint64)
        self.sampled, self.rows = sampled, rows  # ``rows``: rows added (with repeats).
        self._pending: list[np.ndarray] = []
        self._pending_count = 0

    def add(self, hashes) -> None:
        """Adds the hashes of more rows."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        self.rows += len(hashes)
        self._pending.append(hashes)
        self._pending_count += len(hashes)
        if self._pending_count > MAX_HASHES:
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        merged = np.unique(np.concatenate([self.hashes, *self._pending]))
        self._pending, self._pending_count = [], 0
        self.sampled = self.sampled or len(merged) > MAX_HASHES
        self.hashes = merged[:MAX_HASHES]

    @property
    def limit(self) -> int:
        """The largest hash a text in the set can have."""
        self._merge()
        return int(self.hashes[-1]) if self.sampled else (1 << 64) - 1

    @property
    def texts(self) -> int:
        """Distinct texts: counted, or estimated from the sample's share of the hash range."""
        self._merge()
        return len(self.hashes) if not self.sampled else int(round((len(self.hashes) - 1) * 2.0**64 / self.limit))

    def to_json(self) -> str:
        self._merge()
        packed = base64.b64encode(self.hashes.astype("<u8").tobytes()).decode("ascii")
        return json.dumps({"format": FORMAT, "hash": HASH_NAME, "rows": self.rows, "texts": self.texts,
                           "sampled": self.sampled, "hashes": packed}, indent=1)

    @classmethod
    def from_file(cls, path: Path) -> "HashSet":
        """The set saved in ``path``; ``ValueError`` (or ``OSError``) when it is not one this textclf writes."""
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"not of format {FORMAT!r}")
        hashes = np.frombuffer(base64.b64decode(saved["hashes"], validate=True), dtype="<u8").astype(np.uint64)
        return cls(np.sort(hashes), bool(saved["sampled"]), int(saved["rows"]))

    def count_in(self, hashes) -> tuple[int, bool]:
        """``(how many of hashes are in the set, whether that is an estimate)``: scaled from the sampled range."""
        self._merge()
        hashes = np.asarray(hashes, dtype=np.uint64)
        found = int(np.count_nonzero(np.isin(hashes, self.hashes)))
        if not self.sampled:
            return found, False
        in_range = int(np.count_nonzero(hashes <= np.uint64(self.limit)))
        return (int(round(found * len(hashes) / in_range)) if in_range else 0), True


def trained_rows(folder, texts) -> tuple[int, bool] | None:
    """``(how many of texts the model in folder was trained on, whether estimated)``; ``None`` when the folder has
    no :data:`FINGERPRINT_FILE` (made before it was written) or an unreadable one (a warning says so)."""
    from textclf.log import log

    path = Path(folder) / FINGERPRINT_FILE
    if not path.is_file():
        return None
    try:
        known = HashSet.from_file(path)
    except (OSError, ValueError, KeyError, TypeError) as error:  # Damaged: the evaluation itself is still sound.
        log(f"warning: {path} cannot be read ({type(error).__name__}: {error}); whether the rows are texts the model "
            "was trained on is not checked")
        return None
    return known.count_in(text_hashes(texts))
