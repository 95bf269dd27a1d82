"""A training run: prepare the data → fit in the loop → validation metrics → run folder → export.

A run folder holds ``config.json`` (settings used, ``max_len`` resolved), ``tokenizer.json``, ``labels.json``,
``history.json``, ``metrics.json``, ``run.json`` (data files, row counts, timing, and ``resolved``: each setting the
run decided, requested → used), ``validation_predictions.jsonl`` (:mod:`textclf.training.validation_file`),
``history.png``, ``confusion_matrix.png`` and ``model.keras``.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import os
import shutil
import time
from pathlib import Path

from textclf.config import TrainConfig
from textclf.data.fingerprints import FINGERPRINT_FILE
from textclf.data.streaming import should_stream
from textclf.evaluation.metrics import format_metrics
from textclf.evaluation.reports import plot_confusion, plot_history
from textclf.log import log
from textclf.training.cluster import get_strategy, worker_role
from textclf.training.fit import fit_prepared, validation_metrics
from textclf.training.prepare import prepare, task_of
from textclf.training.resume import InProgress, write_atomically
from textclf.training.setup import one_thread_per_op_on_cpu, seed_everything
from textclf.training.validation_file import VALIDATION_PREDICTIONS, write_validation_predictions
from textclf.errors import TextclfError


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced.

    ``run_dir`` is ``None`` on a non-chief worker (which writes nothing); ``export_dir`` only with ``output``.
    """

    run_dir: Path
    metrics: dict
    history: dict
    config: TrainConfig
    export_dir: Path | None = None


def _new_run_dir(output: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in itertools.count(1):
        candidate = output / "runs" / (stamp if suffix == 1 else f"{stamp}-{suffix}")
        if not candidate.exists():
            return candidate


def write_run(run_dir: Path, files: dict, model, pictures: dict | None = None, writers: dict | None = None) -> Path:
    """Writes the run folder through a temporary folder renamed when complete.

    ``files`` are ``{name: text}``; ``writers`` ``{name: function(path)}`` write files too large to hold as text;
    ``pictures`` ``{name: function(path)}``, one that fails is logged and left out.
    """
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.parent / f".tmp-{run_dir.name}-{os.getpid()}"
    staging.mkdir()
    try:
        for name, content in files.items():
            (staging / name).write_text(content, encoding="utf-8")
        for name, write in (writers or {}).items():
            write(staging / name)
        model.save(staging / "model.keras")
        for name, draw in (pictures or {}).items():
            # Pictures are optional: a failure (no matplotlib, no fonts, ...) never costs the trained run.
            try:
                draw(staging / name)
            except Exception as error:  # noqa: BLE001 - any drawing failure is only a warning.
                (staging / name).unlink(missing_ok=True)
                log(f"warning: {name} was not drawn ({type(error).__name__}: {error}); the run is saved without it")
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def train(data, config: TrainConfig | None = None, valid=None, output=None, run_dir=None, verbose="auto",
          tensorboard=None, data_format=None, encoding="utf-8", restart=False, started_at=None,
          on_epoch_end=None) -> TrainResult:
    """Trains a classifier and, when ``output`` is given, exports it for TF Serving.

    Args:
        data: Training file or folder (any format :func:`textclf.data.dataset.load_dataset` reads) or a
            :class:`Dataset`.
        valid: Validation file or :class:`Dataset`; ``None`` holds out a
            stratified ``config.validation_fraction`` of ``data``.
        output: Export base folder (``saved_models/NAME``); the run folder
            goes to ``output/runs/<timestamp>`` unless ``run_dir`` is given.
        run_dir: Where to write the run folder (must not exist).
        verbose: 0 silences the per-epoch log lines; 1 (or "auto" on a terminal) adds a progress bar.
        data_format: Format of ``data`` and ``valid`` files; ``None`` decides from the extension.
        restart: Discard the checkpoint of an interrupted run instead of resuming it (every run checkpoints into
            ``.in-progress`` beside the run folders, see :mod:`textclf.training.resume`).
        started_at: ``time.perf_counter()`` when the command started, so the time breakdown includes the start-up.
        on_epoch_end: ``on_epoch_end(epoch, model)`` after each epoch (from 0) with the model being trained, for a
            caller's own per-epoch measurements.

    Example:
        >>> result = train("data/rt_polarity.csv", TrainConfig(epochs=2), output="saved_models/rt_polarity")
        >>> result.metrics["macro_f1"]
    """
    config = config or TrainConfig()
    if valid is None and config.validation_fraction == 0:
        # Early stopping, the best weights and the metrics all need validation rows.
        raise TextclfError("`validation_fraction` must be > 0 when no validation file is given (early stopping and "
                         "the metrics need validation rows). Received: validation_fraction=0.0; pass a fraction "
                         "such as 0.2, or --valid FILE")
    if output is None and run_dir is None:
        raise TextclfError("Give `output` (export base folder) or `run_dir` (run folder). Received neither")
    run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(Path(output))
    if run_dir.exists():
        raise TextclfError(f"Run folder {run_dir} already exists; choose another (runs are never overwritten)")

    # Distributed runs: the strategy must exist before any other TensorFlow op,
    # and only the chief writes files (textclf.training.cluster).
    role = worker_role(config.strategy)
    one_thread_per_op_on_cpu()  # Before the strategy starts TensorFlow's runtime.
    get_strategy(config.strategy)
    phases = Phases(started_at)
    seed_everything(config.seed)
    settings = _resolve_streaming(config, data, data_format, run_dir.parent, restart)
    if role.is_chief:
        InProgress.refuse_if_busy(run_dir.parent)  # Before reading or counting the data, which may take minutes.
    prepared = prepare(settings, data, valid, data_format, encoding)
    phases.lap("reading_and_vocabulary")
    in_progress = InProgress.open(run_dir.parent, settings, prepared, role, restart=restart)
    try:
        fitted = fit_prepared(settings, prepared, in_progress, verbose=verbose, tensorboard=tensorboard,
                              on_epoch_end=on_epoch_end)
        phases.add(fitted.phase_seconds)
        used, metrics = validation_metrics(fitted, prepared.classes)
        phases.lap("metrics")
        return _finish_run(run_dir, output, role, in_progress, fitted, config, used, prepared, metrics, phases)
    except BaseException:
        in_progress.close()  # Releases the lock; keeps the checkpoint for the next run to resume from.
        raise


class Phases:
    """Where a run's time goes, phase by phase (``run.json`` "seconds" and one log line).

    The time from ``started_at`` (the command's start) to now is the ``startup`` phase.
    """

    def __init__(self, started_at=None):
        self.last = time.perf_counter()
        self.seconds = {} if started_at is None else {"startup": self.last - started_at}

    def lap(self, name: str) -> None:
        """The time since the previous lap (less what :meth:`add` accounted for) is phase ``name``."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.last
        self.last = now

    def add(self, seconds: dict) -> None:
        """Phases measured inside the last lap's span (the fit's)."""
        self.seconds.update(seconds)
        self.last = time.perf_counter()

    def summary(self) -> str:
        shown = [f"{name.replace('_', ' ')} {value:.1f} s" for name, value in self.seconds.items() if value >= 0.05]
        return "time: " + " · ".join(shown) + f" · total {sum(self.seconds.values()):.1f} s"


def _resolve_streaming(config: TrainConfig, data, data_format, runs_dir, restart: bool) -> TrainConfig:
    """``streaming`` "auto" made "on" or "off": the interrupted run's decision when resuming one, else decided now."""
    if config.streaming != "auto":
        should_stream(config, data, data_format, log)  # Refuses "on" for data that cannot be streamed.
        return config
    saved = None if restart else InProgress.interrupted_setting(runs_dir, "streaming")
    if saved in ("on", "off"):
        log(f"streaming auto: {saved}, as in the interrupted run being resumed")
        return config.replace(streaming=saved)
    return config.replace(streaming="on" if should_stream(config, data, data_format, log) else "off")


def _finish_run(run_dir, output, role, in_progress, fitted, requested, config, prepared, metrics,
                phases) -> TrainResult:
    """Logs the metrics, writes the run folder (the chief only), completes the checkpoint, exports."""
    tokenizer, model, history, training_seconds, classes = (
        fitted.tokenizer, fitted.model, fitted.history, fitted.training_seconds, prepared.classes)
    log("validation\n" + format_metrics(metrics))
    if not role.is_chief:
        in_progress.close()
        return TrainResult(run_dir=None, metrics=metrics, history=history, config=config)

    # What the run decided for settings left to it ("auto", None): requested value → value used.
    resolved = {name: {"requested": value, "used": getattr(config, name)}
                for name, value in requested.to_dict().items() if value != config.to_dict()[name]}
    run_info = {**prepared.run_info, "epochs_run": len(history.get("loss", [])),
                "training_seconds": round(training_seconds, 2), "resolved": resolved}
    if fitted.wide is not None:
        run_info["wide"] = fitted.wide  # The linear part's features, C and class weighting, and how they were chosen.
    blend_accuracy = metrics["parts"]["blend"]["accuracy"] if "parts" in metrics else None
    write_run(run_dir, {
        "config.json": json.dumps(config.to_dict(), indent=2, ensure_ascii=False),
        "tokenizer.json": tokenizer.to_json(ensure_ascii=False),
        "labels.json": json.dumps({"classes": classes, "task": task_of(config, classes)}, indent=2, ensure_ascii=False),
        "history.json": json.dumps(history, indent=2),
        "metrics.json": json.dumps(metrics, indent=2, ensure_ascii=False),
        "run.json": json.dumps(run_info, indent=2, ensure_ascii=False),
        # The training texts' hashes, not the texts: `textclf evaluate` counts the rows the model was trained on.
        **({FINGERPRINT_FILE: prepared.fingerprints.to_json()} if prepared.fingerprints is not None else {}),
    }, model, pictures={
        # The curves are the recurrent part's (the blend is fitted after the epochs): its final accuracy is a line.
        "history.png": lambda path: plot_history(history, path, blend_accuracy),
        "confusion_matrix.png": lambda path: plot_confusion(metrics, path),
    }, writers={
        VALIDATION_PREDICTIONS: lambda path: write_validation_predictions(path, fitted, classes, config),
    })
    in_progress.complete()  # The run folder now holds the result: nothing left to resume.
    phases.lap("run_folder")
    log(f"run saved to {run_dir} ({training_seconds:.1f} s of training)")
    result = TrainResult(run_dir=run_dir, metrics=metrics, history=history, config=config)
    if output is not None:
        from textclf.serve.artifacts import Run
        from textclf.serve.export import export_run

        # The run as it is in memory: the same weights model.keras holds, without reading it back.
        result.export_dir = export_run(Run(run_dir, config, tokenizer, classes, model), output)
        phases.lap("export")
        log(f"exported to {result.export_dir}")
    # run.json gets the whole breakdown, export included (written again, atomically).
    run_info["seconds"] = {name: round(value, 2) for name, value in phases.seconds.items()}
    write_atomically(run_dir / "run.json", json.dumps(run_info, indent=2, ensure_ascii=False))
    log(phases.summary())
    return result
