"""A scikit-learn estimator around the textclf pipeline.

``TextClassifier`` takes every ``TrainConfig`` setting as a keyword argument, so ``get_params``/``set_params``,
``clone``, ``cross_val_score`` and ``GridSearchCV`` work on it.  Early stopping uses a stratified
``validation_fraction`` of the rows given to ``fit``.  ``verbose=0`` (the default, as in scikit-learn) fits
silently.
"""

from __future__ import annotations

import inspect
import logging
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from textclf.config import TrainConfig
from textclf.data.dataset import Dataset
from textclf.errors import TextclfError
from textclf.log import logger, logging_level

_DEFAULTS = TrainConfig().to_dict()  # Every setting (in field order) and its default.
_PARAMETERS = {**_DEFAULTS, "verbose": 0}  # The estimator's own parameter after the settings.


class TextClassifier(ClassifierMixin, BaseEstimator):
    """LSTM/GRU text classifier with the scikit-learn API; ``**settings``: any :class:`textclf.TrainConfig` setting,
    and ``verbose``: 0 (default) fits silently (warnings still show), 1 logs textclf's messages and a line per epoch,
    2 adds a progress bar.

    Attributes:
        classes_: Labels seen in ``fit``, in the model's order.
        config_: The settings used (``max_len`` resolved).
        tokenizer_: The fitted :class:`textclf.Tokenizer`.
        model_: The fitted Keras model.
        history_: Per-epoch loss and accuracy.
    """

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(_PARAMETERS))
        if unknown:
            raise TypeError(f"TextClassifier got unknown setting(s) {', '.join(unknown)}")
        for name, default in _PARAMETERS.items():
            setattr(self, name, settings.get(name, default))

    # scikit-learn reads the parameter names from the signature of __init__.
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value)
           for name, value in _PARAMETERS.items()])

    def fit(self, X, y):
        """Fits the tokenizer and the model on texts ``X`` with labels ``y``; returns ``self``."""
        verbose = int(_plain(self.verbose))
        # The textclf logger's level for this fit only: a GridSearchCV's fits print nothing, and the program's
        # own logging setting is back afterwards.
        effective = logger.getEffectiveLevel()
        with logging_level(min(effective, logging.INFO) if verbose else max(effective, logging.WARNING)):
            return self._fit(X, y, {0: 0, 1: "auto"}.get(verbose, 1))

    def _fit(self, X, y, verbose):
        """:meth:`fit` with ``verbose`` as the training loop takes it (0, "auto" or 1)."""
        from textclf.training.fit import fit_prepared
        from textclf.training.prepare import check_labels, prepare_in_memory
        from textclf.training.setup import one_thread_per_op_on_cpu, seed_everything

        from sklearn.utils import check_consistent_length

        texts = _texts(X)
        originals = _labels(y)
        check_consistent_length(texts, originals)
        labels = [str(label) for label in originals]
        # Search tools hand numpy scalars (GridSearchCV over np.array grids, scipy.stats distributions): the
        # settings are plain Python values.
        config = TrainConfig(**{name: _plain(getattr(self, name)) for name in _DEFAULTS})
        one_thread_per_op_on_cpu()
        seed_everything(config.seed)
        data = Dataset(texts, labels, "<fit>")
        if config.multi_label:
            raise TextclfError("TextClassifier supports single-label tasks; train multi-label models with textclf.train")
        class_names = check_labels(data, data)
        # Predictions come back as the caller's label values (ints stay ints).
        by_name = {str(label): label for label in originals}
        self.classes_ = np.asarray([by_name[name] for name in class_names])
        fitted = fit_prepared(config, prepare_in_memory(config, data), verbose=verbose)
        self.tokenizer_, self.config_, self.model_, self.history_ = (
            fitted.tokenizer, fitted.config, fitted.model, fitted.history)
        self._fitted = fitted
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``[len(X), len(classes_)]`` class probabilities."""
        check_is_fitted(self, "model_")
        return self._fitted.probabilities(_texts(X))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each text."""
        probabilities = self.predict_proba(X)  # Checks that fit ran first.
        return self.classes_[probabilities.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


def _plain(value):
    """A numpy scalar as the Python value it holds (``np.int64(16)`` → ``16``, ``np.bool_(True)`` → ``True``)."""
    return value.item() if isinstance(value, np.generic) else value


def _labels(y) -> np.ndarray:
    """``y`` as a 1-d array of labels that are equal exactly when their ``str`` is (the model's class names).

    Numbers share one numpy dtype, so ``1`` and ``1.0`` are one class as in scikit-learn (their strings differed:
    two classes, both mapped back to ``1.0``).  Strings and numbers together are refused: ``1`` and ``"1"`` were
    one class, and the classes came back all strings.
    """
    from sklearn.utils.validation import column_or_1d

    labels = column_or_1d(np.asarray(y, dtype=object) if not hasattr(y, "dtype") else y, warn=True)
    missing = [position for position, label in enumerate(labels) if _is_missing(label)]
    if missing:
        raise TextclfError(f"`y` must hold a label for every text; missing (None, NaN or blank) at position(s) "
                         f"{', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''}")
    kinds = [_kind(label) for label in labels]
    if len(set(kinds)) > 1:
        first = {kind: position for position, kind in reversed(list(enumerate(kinds)))}
        shown = " and ".join(f"y[{position}]={labels[position]!r}" for position in sorted(first.values()))
        raise TextclfError(f"`y` must hold labels of one kind: all strings or all numbers. Received: {shown}")
    if kinds and kinds[0] == "number" and labels.dtype == object:
        labels = np.asarray(labels.tolist())
    return labels


def _kind(label) -> str:
    """``string``, ``number`` (bools included) or ``other``."""
    if isinstance(label, (str, bytes)):
        return "string"
    return "number" if isinstance(label, (numbers.Number, np.number, np.bool_)) else "other"


def _is_missing(label) -> bool:
    if label is None:
        return True
    if isinstance(label, str):
        return not label.strip()
    try:
        return bool(np.isnan(label))
    except (TypeError, ValueError):
        return False


def _texts(values) -> list[str]:
    """The texts of ``X``: an iterable of strings, or a one-column DataFrame (a bare string is refused, as
    scikit-learn's text vectorizers refuse it: it would be read one character per text)."""
    if isinstance(values, (str, bytes)):
        raise TextclfError("`X` must be an iterable of texts, not a single string. Received: a string; "
                         "wrap it in a list: [text]")
    if hasattr(values, "columns"):  # A DataFrame iterates over its column names.
        if len(values.columns) != 1:
            raise TextclfError(f"`X` must be one column of texts. Received: a DataFrame of {len(values.columns)} "
                             "columns")
        values = values.iloc[:, 0].to_numpy(dtype=object)
    texts = list(values)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TextclfError(f"`X` must hold strings. Received: X[{position}]={text!r}")
    return texts

