"""The folder of a ``textclf tune`` search (``OUTPUT/tune``): its lock, and the data and settings of its trials.

``search.json`` records the data's fingerprint (the one ``train``'s checkpoints carry) and every setting not
searched, so a later ``tune`` on other data or settings is refused rather than ranked with these trials.
KerasTuner's files are in ``state/`` (``oracle.json``, ``tuner0.json``, ``trial_*/trial.json``).  ``lock`` is
held with ``fcntl.flock`` while a ``tune`` uses the folder; the OS releases it when the process dies.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

from textclf.errors import TextclfError
from textclf.log import log
from textclf.training.resume import write_atomically

SEARCH_FORMAT = "textclf-tune"
# Settings that change how a run checkpoints or reads its data, not what a trial trains.
_MAY_CHANGE_ON_RESUME = ("checkpoint_every", "streaming")
_RECORD_KEYS = ("format", "settings", "data")


class SearchFolder:
    """``OUTPUT/tune``, locked and checked by :meth:`open`; :meth:`close` releases the lock."""

    def __init__(self, path):
        self.path = Path(path)
        self.state = self.path / "state"
        self._lock = None
        self._saved = None  # search.json as read, when there is one.

    @classmethod
    def open(cls, path, settings: dict, prepared, restart: bool = False, state_keys=None) -> "SearchFolder":
        """Locks the folder and makes sure its trials were made with ``settings`` on ``prepared``'s data.

        ``settings``: every setting not searched; ``prepared`` (:class:`textclf.training.prepare.Prepared`): the
        data, identified by its fingerprint.  A search made otherwise, or with a damaged state file, is refused
        (naming what differs, or the file) unless ``restart`` discards it; one with no finished trial is discarded
        quietly, having nothing to keep.  ``state_keys``: ``{file name: keys}`` of KerasTuner's state files.
        """
        record = {"format": SEARCH_FORMAT, "settings": settings,
                  "data": {"fingerprint": prepared.fingerprint, "train_rows": prepared.train_count,
                           "valid_rows": prepared.valid_count}}
        folder = cls(path)
        folder._make()
        folder._acquire_lock()
        try:
            folder._check(record, restart, {**(state_keys or {}), "search.json": _RECORD_KEYS})
            write_atomically(folder.path / "search.json", json.dumps(record, indent=2, ensure_ascii=False))
        except BaseException:
            folder.close()
            raise
        return folder

    def _make(self) -> None:
        for path in (self.path.parent, self.path):
            if path.exists() and not path.is_dir():
                raise TextclfError(f"{path} is a file, but `textclf tune` keeps its search in the folder {self.path}. "
                                   "Move the file away or choose another --output")
        self.path.mkdir(parents=True, exist_ok=True)  # A read-only --output: PermissionError naming the folder.

    def _acquire_lock(self) -> None:
        handle = open(self.path / "lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise TextclfError(f"Another `textclf tune` is searching in {self.path} (it holds {self.path / 'lock'}); "
                               "wait for it to finish or choose another --output") from None
        self._lock = handle

    def _check(self, record: dict, restart: bool, keys: dict) -> None:
        finished, damaged = self._read_state(keys)
        hint = "pass --restart to discard it and start a new search"
        if damaged is not None:
            if not restart:
                raise TextclfError(f"{damaged[0]} is damaged ({damaged[1]}), so the search in {self.path} cannot be "
                                   f"resumed. Delete {self.path}, or {hint}")
            self._discard(f"--restart: discarded the search in {self.path} ({damaged[0]} was damaged)")
            return
        differences = self._differences(record)
        if not differences:
            return
        if finished and not restart:
            raise TextclfError(
                f"The search in {self.path} was made with {'; '.join(differences)}; its {finished} finished trials "
                "would be ranked with this search's. Rerun the command that made it to resume it, choose another "
                f"--output, or pass --restart to discard those trials and start a new search")
        self._discard(f"--restart: discarded the {finished} trials in {self.path}, made with {'; '.join(differences)}"
                      if finished else None)

    def _read_state(self, keys: dict):
        """``(finished trials, damaged)``; ``damaged`` is ``(file, what is wrong)`` for the first bad state file."""
        files = sorted(self.state.rglob("*.json")) if self.state.is_dir() else []
        if (self.path / "search.json").exists():
            files.insert(0, self.path / "search.json")
        finished = 0
        for path in files:
            try:
                content = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:  # Truncated by a killed process, or not JSON (UnicodeDecodeError).
                return 0, (path, f"not valid JSON: {error}")
            if not isinstance(content, dict):
                return 0, (path, "not a JSON object")
            missing = sorted(set(keys.get(path.name, ())) - set(content))
            if missing:
                return 0, (path, f"no {', '.join(missing)}")
            if path.name == "search.json":
                if content["format"] != SEARCH_FORMAT or not all(isinstance(content[key], dict)
                                                                 for key in ("settings", "data")):
                    return 0, (path, f"not a {SEARCH_FORMAT} record")
                self._saved = content
            finished += path.name == "trial.json" and content["status"] == "COMPLETED" and content["score"] is not None
        if (self.state / "tuner0.json").exists() and not (self.state / "oracle.json").exists():
            return 0, (self.state / "oracle.json", "missing")
        return finished, None

    def _differences(self, record: dict) -> list[str]:
        """What ``search.json`` says differently from ``record``: the settings, then the data."""
        if self._saved is None:
            return [f"no record of its data and settings ({self.path / 'search.json'} is missing)"]
        then, now = self._saved["settings"], record["settings"]
        names = sorted((set(then) | set(now)) - set(_MAY_CHANGE_ON_RESUME))
        changed = [f"{name}={then.get(name)!r} (this search: {name}={now.get(name)!r})"
                   for name in names if then.get(name) != now.get(name)]
        differences = ["different settings: " + ", ".join(changed)] if changed else []
        data_then, data_now = self._saved["data"], record["data"]
        if data_then.get("fingerprint") != data_now["fingerprint"]:
            differences.append(
                f"different data ({data_then.get('train_rows')} training and {data_then.get('valid_rows')} validation "
                f"rows then, {data_now['train_rows']} and {data_now['valid_rows']} now, or the same counts with other "
                "texts or labels)")
        return differences

    def _discard(self, message: str | None) -> None:
        """Deletes the earlier search (KerasTuner's state and ``trials.json``), keeping the lock."""
        if self.state.exists():
            shutil.rmtree(self.state)
        (self.path / "trials.json").unlink(missing_ok=True)
        if message:
            log(message)

    def write_trials(self, rows) -> None:
        """``trials.json``: every finished trial, best first, with its exact settings."""
        write_atomically(self.path / "trials.json", json.dumps(rows, indent=2))

    def close(self) -> None:
        """Releases the lock (the folder and the lock file stay)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
