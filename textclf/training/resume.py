"""The in-progress folder of a run (``OUTPUT/runs/.in-progress/``): what an interrupted ``textclf train`` resumes from.

Its files are listed in docs/DISTRIBUTED.md ("Resuming"); besides them ``seconds.json`` holds the training seconds
up to the last checkpoint, so a resumed run's ``run.json`` counts the whole run.  ``state.json`` is written last.
The folder is deleted once the run folder is written.  In a multi-worker run only the chief writes here; the other
workers read it to resume (the output must be on storage every worker sees) and write their share of each
checkpoint to a temporary folder outside the output.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from textclf.config import TrainConfig
from textclf.log import log
from textclf.text.tokenizer import Tokenizer, tokenizer_from_json
from textclf.training.cluster import WorkerRole
from textclf.training.prepare import task_of
from textclf.errors import TextclfError

IN_PROGRESS = ".in-progress"
STATE_FORMAT = "textclf-in-progress"
# Settings that change how often checkpoints are written, not what is trained.
_MAY_CHANGE_ON_RESUME = ("checkpoint_every",)


def write_atomically(path: Path, text: str) -> None:
    """Writes ``path`` so that a reader (another worker, the next run after a crash) sees the old or the new whole."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def _read(path: Path, key: str):
    """``key`` of the JSON object in ``path``, or ``None`` when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _busy_error(lock_file: Path) -> TextclfError:
    return TextclfError(f"Another `textclf train` is training into {lock_file.parent.parent.parent} (it holds "
                      f"{lock_file}); wait for it to finish or choose another --output")


class InProgress:
    """The in-progress folder of one run, opened by :meth:`open`; ``resuming`` when it continues an interrupted run."""

    def __init__(self, path: Path, role: WorkerRole):
        self.path = path
        self.role = role
        self.resuming = False
        # Training seconds the interrupted run had spent up to its checkpoint (``seconds.json``); 0 when fresh.
        self.previous_seconds = 0.0
        self._lock = None
        self._worker_dir = None

    @classmethod
    def open(cls, runs_dir, config: TrainConfig, prepared,
             role: WorkerRole = WorkerRole(), restart: bool = False) -> "InProgress":
        """Opens ``runs_dir/.in-progress`` for a run, resuming when it holds an interrupted one.

        ``config`` is as requested; ``prepared`` (:class:`textclf.training.prepare.Prepared`) gives the row counts
        and fingerprint; ``restart`` discards an interrupted run.  Raises ``ValueError`` when another process trains
        into the same folder, or the interrupted run had other settings or data (naming them).
        """
        progress = cls(Path(runs_dir) / IN_PROGRESS, role)
        if role.is_chief:
            progress._acquire_lock()
        try:
            state_file = progress.path / "state.json"
            if restart:
                if role.is_chief and state_file.exists():
                    progress.discard()
                    log(f"--restart: discarded the interrupted run in {progress.path}")
                return progress
            if not state_file.is_file() or not progress.has_checkpoint():
                progress.discard()  # Leftovers of a run that stopped before its first checkpoint.
                return progress
            progress._check_state(json.loads(state_file.read_text(encoding="utf-8")), config, prepared)
            progress.resuming = True
            seconds = _read(progress.path / "seconds.json", "seconds")
            progress.previous_seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
            return progress
        except BaseException:
            progress.close()
            raise

    @staticmethod
    def interrupted_setting(runs_dir, name: str):
        """A setting of the interrupted run in ``runs_dir/.in-progress`` as it was resolved, or ``None``.

        A resumed run follows the interrupted run's ``streaming="auto"`` decision (the two modes split and
        fingerprint the data differently).
        """
        settings = _read(Path(runs_dir) / IN_PROGRESS / "state.json", "settings")
        return settings.get(name) if isinstance(settings, dict) else None

    @staticmethod
    def refuse_if_busy(runs_dir) -> None:
        """Refuses now, before a long pass over the data, when another run holds the lock (:meth:`open` takes it)."""
        lock_file = Path(runs_dir) / IN_PROGRESS / "lock"
        try:
            handle = open(lock_file, "r")
        except OSError:
            return  # No lock file: nobody trains there.
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _busy_error(lock_file) from None

    def _acquire_lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path / "lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise _busy_error(self.path / "lock") from None
            # The previous holder may have deleted the folder between our open and our lock: try again.
            try:
                if os.stat(self.path / "lock").st_ino == os.fstat(handle.fileno()).st_ino:
                    self._lock = handle
                    return
            except FileNotFoundError:
                self.path.mkdir(parents=True, exist_ok=True)
            handle.close()

    def _check_state(self, state: dict, config: TrainConfig, prepared) -> None:
        hint = ("Rerun the interrupted command (same settings and data) to resume from its checkpoint, or pass "
                "--restart (restart=True) to discard its checkpoint and start this one fresh")
        if state.get("format") != STATE_FORMAT:
            raise TextclfError(f"{self.path / 'state.json'} is not a textclf in-progress state. {hint}")
        saved, requested = state["settings"], config.to_dict()
        differences = [f"{name}={saved.get(name)!r} (this run: {name}={requested.get(name)!r})"
                       for name in sorted((set(saved) | set(requested)) - set(_MAY_CHANGE_ON_RESUME))
                       if saved.get(name) != requested.get(name)]
        if differences:
            raise TextclfError(f"The interrupted run in {self.path} used different settings: "
                             f"{', '.join(differences)}. {hint}")
        data = state["data"]
        if data["fingerprint"] != prepared.fingerprint:
            raise TextclfError(
                f"The interrupted run in {self.path} was trained on different data ({data['train_rows']} training "
                f"and {data['valid_rows']} validation rows then, {prepared.train_count} and {prepared.valid_count} "
                f"now, or the same counts with other texts or labels). {hint}")

    def record_seconds(self, seconds_since_start: float) -> None:
        """Writes the training time up to the checkpoint just saved: earlier runs' and this one's (the chief only)."""
        if self.role.is_chief:
            write_atomically(self.path / "seconds.json",
                             json.dumps({"seconds": round(self.previous_seconds + seconds_since_start, 3)}))

    def has_checkpoint(self) -> bool:
        """Whether a checkpoint was written (``tf.train.CheckpointManager`` writes its index file last)."""
        return (self.checkpoint_dir / "checkpoint").is_file()

    def discard(self) -> None:
        """Deletes what an interrupted run left but the lock (the chief only), so the next run starts fresh."""
        if not self.role.is_chief or not self.path.is_dir():
            return
        for child in self.path.iterdir():
            if child.name != "lock":
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    @property
    def checkpoint_dir(self) -> Path:
        """Where the chief's checkpoints are, and where every worker restores from."""
        return self.path / "checkpoint"

    @property
    def write_dir(self) -> Path:
        """Where this process writes its checkpoints.

        Every worker takes part in a save (as TensorFlow's ``PreemptionCheckpointHandler`` does), but only the
        chief writes to the output: the others write to a temporary folder that :meth:`close` deletes.
        """
        if self.role.is_chief:
            return self.checkpoint_dir
        if self._worker_dir is None:
            self._worker_dir = Path(tempfile.mkdtemp(prefix=f"textclf-worker{self.role.index}-"))
        return self._worker_dir

    def saved_setup(self, requested: TrainConfig) -> tuple[Tokenizer, TrainConfig] | None:
        """The interrupted run's tokenizer and resolved settings, or ``None`` for a fresh run.

        The settings take this run's ``checkpoint_every``, the one setting that may change on resume.
        """
        if not self.resuming:
            return None
        log(f"resuming the interrupted run in {self.path} with its vocabulary and settings (--restart discards it)")
        tokenizer = tokenizer_from_json((self.path / "tokenizer.json").read_text(encoding="utf-8"))
        resolved = TrainConfig.load(self.path / "config.json")
        return tokenizer, resolved.replace(checkpoint_every=requested.checkpoint_every)

    def save_setup(self, requested: TrainConfig, resolved: TrainConfig, tokenizer: Tokenizer, classes,
                   prepared) -> None:
        """Writes what a resumed run needs besides the checkpoint (the chief only).

        ``requested`` is compared on resume; ``resolved`` (``max_len`` and ``split_mode`` resolved) is used.
        """
        if not self.role.is_chief:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path / "tokenizer.json", tokenizer.to_json(ensure_ascii=False))
        write_atomically(self.path / "labels.json", json.dumps(
            {"classes": list(classes), "task": task_of(resolved, classes)}, ensure_ascii=False))
        write_atomically(self.path / "config.json", json.dumps(resolved.to_dict(), indent=2, ensure_ascii=False))
        # Last: its presence means the setup above is complete.
        write_atomically(self.path / "state.json", json.dumps({
            "format": STATE_FORMAT,
            "settings": requested.to_dict(),
            "data": {"train_rows": prepared.train_count, "valid_rows": prepared.valid_count,
                     "fingerprint": prepared.fingerprint},
        }, indent=2, ensure_ascii=False))

    def complete(self) -> None:
        """Deletes the folder: the run folder now holds the result (the chief only)."""
        if self.role.is_chief:
            shutil.rmtree(self.path, ignore_errors=True)
        self.close()

    def close(self) -> None:
        """Releases the lock and the worker's temporary folder; keeps a resumable checkpoint.

        A folder with no checkpoint has nothing to resume and is removed, so a command corrected after an early
        failure is not refused as "different settings".
        """
        if self._worker_dir is not None:
            shutil.rmtree(self._worker_dir, ignore_errors=True)
            self._worker_dir = None
        if self._lock is not None:
            if not (self.path / "state.json").exists() or not self.has_checkpoint():
                shutil.rmtree(self.path, ignore_errors=True)
            self._lock.close()
            self._lock = None
