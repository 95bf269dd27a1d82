"""``textclf tune``: a time-budgeted search over the settings that matter, then a normal run of the best.

KerasTuner's random search (its oracle keeps the trials on disk, so a rerun resumes the search); every trial trains
through :func:`textclf.training.fit.fit_prepared` on the same split, scored by validation macro-F1.  The data and
settings are checked as ``train`` checks them before the first trial; a trial stopped by the user's error stops the
search.  The best setting then trains as a normal ``train`` run, and every trial is saved as
``OUTPUT/tune/trials.json``; the folder's lock and record of data and settings: :mod:`textclf.training.search_folder`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from textclf.config import TrainConfig
from textclf.errors import TextclfError
from textclf.log import log
from textclf.training.search_folder import SearchFolder

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """Seconds of a budget written ``90s``, ``20m``, ``1.5h`` (a bare number is minutes).

    Example:
        >>> parse_budget("20m"), parse_budget("90s"), parse_budget("2")
        (1200.0, 90.0, 120.0)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise TextclfError(f"`budget` must be a positive duration such as 90s, 20m or 1.5h. Received: budget={text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "m"]


def search_space(hp, base: TrainConfig) -> TrainConfig:
    """``base`` with the tuned settings drawn from KerasTuner's ``hp`` (defaults: textclf's own)."""
    return base.replace(
        arch=hp.Choice("arch", ["bilstm", "lstm", "bigru", "gru"], default=base.arch),
        units=hp.Choice("units", [16, 32, 64, 128], default=base.units if base.units in (16, 32, 64, 128) else 64),
        wide=hp.Choice("wide", ["none", "tfidf"], default="none" if base.wide == "none" else "tfidf"),
        dropout_rate=hp.Float("dropout_rate", 0.0, 0.5, step=0.1, default=round(base.dropout_rate, 1)),
        learning_rate=hp.Float("learning_rate", 3e-4, 1e-2, sampling="log", default=base.learning_rate),
        max_len_percentile=hp.Choice("max_len_percentile", [90.0, 95.0, 99.0], default=95.0),
    )


def tune(data, config: TrainConfig | None = None, output=None, budget: float = 1200.0, max_trials: int = 50,
         valid=None, data_format=None, encoding="utf-8", restart: bool = False):
    """Searches settings for ``budget`` seconds, then trains and exports the best.

    Args:
        config: The settings not tuned (``epochs``, ``batch_size``...); defaults to ``TrainConfig()``.
        output: Export base folder; the search goes to ``output/tune/`` (:mod:`textclf.training.search_folder`).
        budget: Seconds after which no new trial starts (the one running finishes).
        max_trials: At most this many finished trials in all (a resumed search counts the earlier ones; a trial
            that failed does not count).
        valid: Validation file, else a stratified split of ``data`` (the same for every trial).
        restart: Discard an earlier search in ``output`` made on other data or settings (else refused) and the
            final run's interrupted checkpoint (``train``'s ``restart``).  A search on the same data and settings
            is resumed regardless: its seed would draw the same trials again.

    Returns:
        ``(result, trials)``: the final run's :class:`textclf.training.run.TrainResult`
        and one ``{"trial", "settings", "val_macro_f1", "seconds", "recurrent_macro_f1", "stuck"}`` per finished
        trial, best first (``stuck``: its recurrent part predicted one class for every validation row).

    Example:
        >>> result, trials = tune("data/rt_polarity.csv", output="saved_models/rt_tuned", budget=parse_budget("20m"))
    """
    import keras_tuner

    from textclf.training.prepare import read_dataset
    from textclf.training.run import train

    config = config or TrainConfig()
    if config.streaming == "on" or config.multi_label or config.strategy != "none":
        raise TextclfError("`textclf tune` searches single-label settings on data in memory, on one process; "
                         f"Received: streaming={config.streaming!r}, multi_label={config.multi_label}, "
                         f"strategy={config.strategy!r}")
    if max_trials < 1:
        raise TextclfError(f"`max_trials` must be a positive integer. Received: max_trials={max_trials!r}")
    output = Path(output)
    # Read once; every trial prepares (vocabulary, max_len) for its own settings from the same rows and split.
    dataset = read_dataset(data, config, data_format, encoding)
    valid_dataset = read_dataset(valid, config, data_format, encoding)
    base = config.replace(streaming="off")
    prepared = check_before_search(base, dataset, valid_dataset)
    space = keras_tuner.HyperParameters()
    search_space(space, TrainConfig())  # Declared before the first trial, so a resumed search sees the same one.
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_macro_f1", direction="max"), max_trials=max_trials, seed=config.seed,
        hyperparameters=space)
    fixed = {name: value for name, value in base.to_dict().items() if name not in space.values}
    state_keys = {"oracle.json": oracle.get_state(), "trial.json": keras_tuner.engine.trial.Trial(space).get_state()}
    folder = SearchFolder.open(output / "tune", fixed, prepared, restart, state_keys)
    try:
        best, rows = _search(keras_tuner, oracle, folder, base, dataset, valid_dataset, budget, max_trials)
        log(f"best of {len(rows)} trials: {_shown(rows[0]['settings'])}; training it as a normal run")
        result = train(dataset, best, valid=valid_dataset, output=output, restart=restart)
    finally:
        folder.close()
    return result, rows


def check_before_search(settings: TrainConfig, dataset, valid_dataset):
    """What ``train`` checks before fitting (labels, the split, the embeddings file), once for every trial.

    Returns the data prepared with ``settings`` (its fingerprint identifies the search's data).
    """
    from textclf.model.embeddings import load_embeddings
    from textclf.training.prepare import prepare_in_memory

    if valid_dataset is None and settings.validation_fraction == 0:
        # train's message: early stopping, the best weights and the metrics all need validation rows.
        raise TextclfError("`validation_fraction` must be > 0 when no validation file is given (early stopping and "
                           "the metrics need validation rows). Received: validation_fraction=0.0; pass a fraction "
                           "such as 0.2, or --valid FILE")
    prepared = prepare_in_memory(settings, dataset, valid_dataset)
    if settings.embeddings:
        tokenizer = prepared.tokenizer
        load_embeddings(settings.embeddings, tokenizer, tokenizer.vocabulary_size, settings.embedding_dim,
                        seed=settings.seed)
    return prepared


def _search(keras_tuner, oracle, folder, base, dataset, valid_dataset, budget, max_trials):
    """Runs (or resumes) the search in ``folder``; ``(best settings, rows of trials.json)``."""
    search = _tuner(keras_tuner, base, dataset, valid_dataset, budget, max_trials,
                    oracle=oracle, directory=str(folder.path), project_name="state", overwrite=False)
    finished = [trial for trial in search.oracle.trials.values() if trial.score is not None]
    if finished:
        log(f"resuming the search in {folder.path}: {len(finished)} trials already finished")
    try:
        search.search(verbose=0)  # textclf logs each trial itself; KerasTuner would print a table per trial.
    except keras_tuner.errors.FatalError as error:
        if isinstance(error.__cause__, (TextclfError, OSError)):
            raise error.__cause__ from None
        raise
    trials = sorted((trial for trial in search.oracle.trials.values() if trial.score is not None),
                    key=lambda trial: -trial.score)
    if not trials:
        raise TextclfError(f"No trial finished within the budget of {budget:.0f} s; give a larger --budget")
    rows = [{"trial": trial.trial_id, "settings": trial.hyperparameters.values, "val_macro_f1": trial.score,
             "seconds": _last(trial, "seconds"), **_recurrent_of(trial)} for trial in trials]
    # Written before the final run: should it fail (an interrupted run in ``output`` with other settings), the
    # search's result is kept, and a rerun finds every trial finished.
    folder.write_trials(rows)
    return search_space(trials[0].hyperparameters, base), rows


def _tuner(keras_tuner, base, dataset, valid_dataset, budget, max_trials, **kwargs):
    """A KerasTuner tuner whose trials train through :func:`textclf.training.fit.fit_prepared`."""
    from textclf.training.fit import fit_prepared, validation_metrics
    from textclf.training.prepare import prepare_in_memory
    from textclf.training.setup import seed_everything

    started = time.perf_counter()

    class Search(keras_tuner.Tuner):
        def pre_create_trial(self):
            # A failed trial (a bug, out of memory) is not one of the --max-trials: a new one takes its place.
            failed = sum(trial.status == "FAILED" for trial in self.oracle.trials.values())
            self.oracle.max_trials = max_trials + failed
            # The budget: once spent, the oracle is told that no trial is left to create.
            if time.perf_counter() - started > budget:
                self.oracle.max_trials = len(self.oracle.trials)

        def run_trial(self, trial, *args, **kwargs):
            settings = search_space(trial.hyperparameters, base)
            seed_everything(settings.seed)
            trial_started = time.perf_counter()
            try:
                prepared = prepare_in_memory(settings, dataset, valid_dataset)
                _, metrics = validation_metrics(fit_prepared(settings, prepared, verbose=0), prepared.classes)
            except (TextclfError, OSError) as error:
                # The user's to fix, not this trial's: stop the search with it (tune re-raises it).
                raise keras_tuner.errors.FatalError(str(error)) from error
            recurrent_f1, classes = recurrent_part(metrics)
            log(f"trial {trial.trial_id}: validation macro-F1 {metrics['macro_f1']:.4f} (recurrent part "
                f"{recurrent_f1:.4f}{', stuck: one class' if classes == 1 else ''}) with "
                f"{_shown(trial.hyperparameters.values)}")
            return {"val_macro_f1": metrics["macro_f1"], "seconds": time.perf_counter() - trial_started,
                    "recurrent_macro_f1": recurrent_f1, "recurrent_classes": classes}

    return Search(**kwargs)


def recurrent_part(metrics: dict) -> tuple[float, int]:
    """``(validation macro-F1, classes predicted)`` of a trial's recurrent part: ``metrics["parts"]``'s with a wide
    branch, else the model's own (the recurrent part is the whole model)."""
    if "parts" in metrics:
        part = metrics["parts"]["recurrent"]
        return part["macro_f1"], part["predicted_classes"]
    predicted = np.asarray(metrics["confusion_matrix"]).sum(axis=0)
    return metrics["macro_f1"], int(np.count_nonzero(predicted))


def _last(trial, name: str):
    """A trial's last value of metric ``name``; ``None`` where it has none (a search resumed from an older one)."""
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


def _recurrent_of(trial) -> dict:
    """``trials.json``'s ``recurrent_macro_f1`` and ``stuck`` (the recurrent part predicted one class for every
    validation row) of a finished trial."""
    classes = _last(trial, "recurrent_classes")
    return {"recurrent_macro_f1": _last(trial, "recurrent_macro_f1"),
            "stuck": None if classes is None else bool(classes == 1)}


def _shown(settings: dict) -> str:
    """Settings as ``name=value``, floats rounded for reading (``trials.json`` keeps them exact)."""
    return ", ".join(f"{name}={_value(name, value)}" for name, value in settings.items())


def _value(name: str, value) -> str:
    if isinstance(value, float):
        return format(value, ".2g" if name == "learning_rate" else ".6g")
    return str(value)


def trials_table(rows) -> str:
    """A Markdown table of the trials, best first: the trial's validation macro-F1, its recurrent part's alone (the
    same without a wide branch), and a note on a recurrent part that predicted one class for every row."""
    names = list(rows[0]["settings"]) if rows else []
    lines = ["| trial | " + " | ".join(names) + " | validation macro-F1 | recurrent macro-F1 | seconds | note |",
             "|---" * (len(names) + 5) + "|"]
    for row in rows:
        values = [_value(name, value) for name, value in row["settings"].items()]
        seconds = f"{row['seconds']:.0f}" if row["seconds"] is not None else "—"
        recurrent = row.get("recurrent_macro_f1")
        recurrent = f"{recurrent:.4f}" if recurrent is not None else "—"
        note = "stuck: one class" if row.get("stuck") else ""
        lines.append(f"| {row['trial']} | " + " | ".join(values) + f" | {row['val_macro_f1']:.4f} | {recurrent} | "
                     f"{seconds} | {note} |")
    return "\n".join(lines)
