"""The one typed configuration of a textclf run.

The CLI flags, ``--config FILE`` and the Python API all fill :class:`TrainConfig`; the run folder keeps it as
``config.json`` (``max_len`` resolved) so the run can be rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from pathlib import Path
from typing import Literal

from textclf.text.rules import DEFAULT_FILTERS, TextRules
from textclf.errors import TextclfError


@functools.cache
def _type_hints(cls) -> dict:
    # Resolving the string annotations (``from __future__ import annotations``) evaluates them all; building the
    # CLI's parser asks for every setting's choices: cached, not repeated for each command.
    return typing.get_type_hints(cls)

# The closed sets of values: the field types below, the CLI's choices and the checks all read these.
Arch = Literal["lstm", "gru", "bilstm", "bigru"]
Pooling = Literal["last", "max", "mean", "attention", "max_mean"]
LRSchedule = Literal["constant", "plateau", "cosine"]
Optimizer = Literal["adam", "lazy_adam"]
SplitMode = Literal["auto", "word", "cjk", "cjk_bigrams"]
ClassWeight = Literal["none", "balanced"]
Strategy = Literal["none", "mirrored", "multiworker"]
Streaming = Literal["auto", "on", "off"]
Side = Literal["pre", "post"]
Wide = Literal["auto", "none", "tfidf"]
ARCHITECTURES = typing.get_args(Arch)
# The export's tokenize signature returns int32 ids [batch, max_len] (4 MB a text at this bound) and int32 shapes end
# at 2**31 - 1: a larger max_len trained a whole run whose export then failed ("Dimension -727379968 must be >= 0").
MAX_LEN_BOUND = 1_000_000
STRATEGIES = typing.get_args(Strategy)
_CJK_OF_MODE = {"word": "off", "cjk": "chars", "cjk_bigrams": "bigrams"}  # TextRules.cjk of each resolved split mode.


def setting(default, help: str):  # noqa: A002 - "help" is what argparse and readers call it.
    """A TrainConfig field: its default and its help (shown by ``textclf train --help``)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class TrainConfig:
    """Hyperparameters of a run, with their defaults and help (the ``textclf train`` flags are generated from here)."""

    text_column: str = setting("text", "Column (CSV/TSV header or JSONL key) holding the text.")
    label_column: str = setting("label", "Column holding the label.")
    validation_fraction: float = setting(
        0.2, "Share of each class held out for validation when no validation file is given.")
    multi_label: bool = setting(
        False, "Each text may have several labels, separated by ``label_sep`` in the label column; one sigmoid per "
        "class.")
    label_sep: str = setting("|", "Separator between the labels of a multi-label row.")
    threshold: float | None = setting(
        None, "Multi-label decision threshold; ``None`` tunes it on the validation set (best micro-F1).")
    num_words: int | None = setting(
        20000, "Vocabulary size kept by the tokenizer (indices ``< num_words``); ``None`` keeps every word.")
    max_len: int | None = setting(
        None, "Tokens per text after truncation/padding; ``None`` chooses the ``max_len_percentile`` percentile of "
        "training lengths, at most ``max_len_limit``.")
    max_len_percentile: float = setting(95.0, "Percentile used when ``max_len`` is ``None``.")
    max_len_limit: int = setting(800, "Upper bound for the data-driven ``max_len``.")
    filters: str = setting(DEFAULT_FILTERS, "Characters replaced by ``split`` before splitting (legacy Keras default).")
    lower: bool = setting(True, "Lowercase texts (Python's ``str.lower``) before splitting.")
    split: str = setting(" ", "Separator between words.")
    char_level: bool = setting(False, "Every character is a token (filters are not applied).")
    split_mode: SplitMode = setting(
        "auto", "``word`` (legacy: split on ``split``), ``cjk`` (each Chinese/Japanese/Korean character is a token, "
        "Latin words and numbers stay whole), ``cjk_bigrams`` (also adjacent-character pairs) or ``auto`` "
        "(``cjk`` when most training texts are mostly CJK).")
    oov_token: str = setting("[UNK]", "Token for unknown words; also stands for a text with no known word.")
    padding: Side = setting("post", "``\"post\"`` keeps masks right-padded, which cuDNN needs on a GPU.")
    truncating: Side = setting(
        "pre", "``\"pre\"`` (Keras's ``pad_sequences`` default) keeps the end of long texts, ``\"post\"`` the start. "
        "The end won on the long news_source articles (docs/RESULTS.md).")
    bucketing: bool = setting(
        True, "Batch training texts of similar length together, each batch padded to its longest row (post-padding "
        "only); a large speed-up.")
    arch: Arch = setting("bilstm", "``lstm``, ``gru``, ``bilstm`` or ``bigru``.")
    num_layers: int = setting(1, "Stacked recurrent layers.")
    units: int = setting(64, "Units per recurrent layer (per direction).")
    embedding_dim: int = setting(128, "Size of the word vectors.")
    pooling: Pooling = setting(
        "max", "How the sequence becomes one vector: ``last`` (final state), ``max``, ``mean``, ``attention`` "
        "(learned weights) or ``max_mean`` (both concatenated), each over the unmasked steps.")
    residual: bool = setting(True, "Add each stacked recurrent layer's input to its output.")
    wide: Wide = setting(
        "auto", "``tfidf`` adds a linear branch beside the recurrent one: a logistic regression on TF-IDF of the "
        "raw text's word and character n-grams, its features, C and class weighting chosen on held-out training "
        "rows, blended by weights fitted on the validation rows (textclf/training/wide.py), computed "
        "in the export's graph.  Single-label runs with the data in memory; ``auto`` uses it there only.")
    spatial_dropout_rate: float = setting(0.2, "Dropout of whole embedding channels.")
    embeddings: str | None = setting(
        None, "Pretrained word vectors (GloVe, word2vec text or fastText ``.vec``, optionally gzip) to start the "
        "embedding from; their dimension must equal ``embedding_dim``.")
    freeze_embeddings: bool = setting(False, "Keep the embedding weights fixed (useful with pretrained vectors).")
    dropout_rate: float = setting(0.2, "Dropout on the recurrent layers' inputs and before the head.")
    recurrent_dropout_rate: float = setting(
        0.0, "Dropout on the recurrent state; anything but 0 disables the fused cuDNN kernel on a GPU.")
    epochs: int = setting(
        30, "Maximum number of passes over the training data (early stopping usually ends the run sooner).")
    batch_size: int = setting(
        256, "Texts per training step.  On a CPU, 256 (with ``learning_rate`` 2e-3) trains faster than 64 and as "
        "accurately (docs/PERFORMANCE.md, \"Training step\"); on a few hundred texts a smaller batch gives more steps.")
    optimizer: Optimizer = setting(
        "adam", "``adam`` (Keras's Adam, every weight every step, computed by TensorFlow's fused kernel) or "
        "``lazy_adam`` (updates only the embedding rows of the words in each batch: faster per step on a CPU, "
        "but lower validation macro-F1 in docs/PERFORMANCE.md).")
    learning_rate: float = setting(
        2e-3, "Adam's learning rate (scale it with ``batch_size``: 1e-3 suits batches of 64).")
    lr_schedule: LRSchedule = setting(
        "constant", "``constant``; ``plateau`` halves the rate when validation loss stops improving; ``cosine`` "
        "decays it to 0 over ``epochs``.")
    class_weight: ClassWeight = setting(
        "none", "``none``, or ``balanced`` to weight each class's loss inversely to its frequency (helps rare "
        "classes).")
    clipnorm: float = setting(1.0, "Gradient norm clipping.")
    mixed_precision: bool = setting(
        False, "Compute in float16 on a GPU (bfloat16 on a CPU), keeping float32 weights; the export always "
        "computes in float32.")
    patience: int = setting(
        2, "Epochs without a better validation score before stopping; the best weights are restored.  The score is "
        "the blend's validation macro-F1 with the wide branch, the validation loss without it.")
    seed: int = setting(42, "Seed for the split, the initial weights, dropout and shuffling.")
    strategy: Strategy = setting(
        "none", "``none`` (one process, one device), ``mirrored`` (every local GPU, or the CPU with a warning when "
        "there is none) or ``multiworker`` (the cluster in the TF_CONFIG environment variable, data sharded "
        "per worker); ``batch_size`` is the global batch.")
    checkpoint_every: int = setting(
        0, "Also checkpoint every N training steps (0, the default: at epoch ends only).  ``textclf train`` "
        "checkpoints every run at epoch ends, so rerunning the same command after a crash resumes from the "
        "last checkpoint.")
    streaming: Streaming = setting(
        "auto", "``on`` trains from the data file without holding it in memory (a counting pass, then tf.data "
        "pipelines that read the file; see docs/PERFORMANCE.md \"Larger than memory\"); ``off`` reads it into "
        "memory; ``auto`` streams when the file (x4 when compressed) is larger than a quarter of the "
        "available memory.")

    def __post_init__(self):
        self.validate()

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of setting ``name``."""
        return next(field.metadata["help"] for field in dataclasses.fields(cls) if field.name == name)

    @classmethod
    def choices(cls, name: str) -> tuple | None:
        """The allowed values of a ``Literal`` setting, else ``None``."""
        hint = _type_hints(cls)[name]
        return typing.get_args(hint) if typing.get_origin(hint) is Literal else None

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first setting that is out of range."""
        for name in ("max_len_limit", "num_layers", "units", "embedding_dim", "epochs", "batch_size"):
            _check_int(name, getattr(self, name), minimum=1)
        for name, minimum, what in (("max_len", 1, None), ("num_words", 2, "an integer >= 2 or null")):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum, what)
        for name in ("max_len", "max_len_limit"):  # The limit too: the data-driven max_len may reach it.
            if getattr(self, name) is not None and getattr(self, name) > MAX_LEN_BOUND:
                raise TextclfError(f"`{name}` must be at most {MAX_LEN_BOUND:,} tokens (the export's int32 ids are "
                                   f"[batch, max_len]). Received: {name}={getattr(self, name)!r}")
        for name in ("patience", "seed", "checkpoint_every"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("validation_fraction", "dropout_rate", "spatial_dropout_rate", "recurrent_dropout_rate"):
            _check_number(name, getattr(self, name), 0.0, 1.0, open_high=True)
        _check_number("max_len_percentile", self.max_len_percentile, 0.0, 100.0, open_low=True)
        if self.threshold is not None:
            _check_number("threshold", self.threshold, 0.0, 1.0, open_low=True, open_high=True)
        for name in ("learning_rate", "clipnorm"):
            _check_number(name, getattr(self, name), 0.0, math.inf, open_low=True)
        for field in dataclasses.fields(self):
            # A JSON config's "false" (a string) or 0 would read as true or false in Python: refused, not guessed.
            if _type_hints(type(self))[field.name] is bool and not isinstance(getattr(self, field.name), bool):
                raise TextclfError(f"`{field.name}` must be true or false. Received: "
                                 f"{field.name}={getattr(self, field.name)!r}")
        for name in ("text_column", "label_column", "oov_token", "label_sep"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TextclfError(f"`{name}` must be a non-empty string. Received: {name}={value!r}")
        for field in dataclasses.fields(self):
            allowed, value = self.choices(field.name), getattr(self, field.name)
            if allowed is not None and value not in allowed:
                # The padding sides read as Keras's pad_sequences says them; the other sets as a list.
                values = "'pre' or 'post'" if allowed == typing.get_args(Side) else f"one of {', '.join(allowed)}"
                raise TextclfError(f"`{field.name}` must be {values}. Received: {field.name}={value!r}")
        if self.embeddings is not None and (not isinstance(self.embeddings, str) or not self.embeddings):
            raise TextclfError(f"`embeddings` must be a file path or null. Received: embeddings={self.embeddings!r}")
        if self.threshold is not None and not self.multi_label:
            raise TextclfError("`threshold` applies to multi-label models only (multi_label=True). "
                             f"Received: threshold={self.threshold!r} with multi_label=False")
        if self.freeze_embeddings and self.embeddings is None:
            raise TextclfError("`freeze_embeddings` keeps pretrained vectors fixed and needs `embeddings` (a vectors "
                             "file). Received: freeze_embeddings=True with embeddings=None")
        for name, off in (("wide", ("auto", "none")), ("class_weight", ("none",))):
            if self.multi_label and getattr(self, name) not in off:
                raise TextclfError(f"`{name}` applies to single-label tasks only. "
                                 f"Received: {name}={getattr(self, name)!r} with multi_label=True")
        if self.text_column == self.label_column:
            raise TextclfError("`text_column` and `label_column` must differ. "
                             f"Received: text_column={self.text_column!r}, label_column={self.label_column!r}")
        self.text_rules()  # Checks filters and split.

    def text_rules(self) -> TextRules:
        """The tokenization rules these settings describe (``auto`` counts as ``word`` until resolved)."""
        return TextRules(filters=self.filters, lower=self.lower, split=self.split, char_level=self.char_level,
                         cjk=_CJK_OF_MODE.get(self.split_mode, "off"))

    def to_dict(self) -> dict:
        """Plain dictionary of every setting (JSON-serializable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        """A config from setting names and values (missing: defaults); unknown ones are refused, naming ``source``."""
        if not isinstance(values, dict):
            raise TextclfError(f"{source} must be a JSON object of settings. Received: {type(values).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TextclfError(f"Unknown setting(s) {', '.join(map(repr, unknown))} in {source}. "
                             f"Known settings: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        """Writes the config as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Reads a config JSON file written by :meth:`save` (or by hand)."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TextclfError(f"Config file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TextclfError(f"Config file {path} is not valid JSON: {error}") from None
        return cls.from_dict(values, source=f"config file {path}")


def _check_int(name, value, minimum, what=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = what or {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise TextclfError(f"`{name}` must be {what}. Received: {name}={value!r}")


def _check_number(name, value, low, high, open_low=False, open_high=False):
    # Finite only: an infinite learning rate or clipnorm passes a range check and trains to NaN.
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not (value > low if open_low else value >= low) or not (value < high if open_high else value <= high)):
        kind = "a finite number" if high == math.inf else "a number"
        # An unbounded side is open: "(0.0, inf)", as infinity itself is refused.
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high or high == math.inf else ']'}"
        raise TextclfError(f"`{name}` must be {kind} in {interval}. Received: {name}={value!r}")
