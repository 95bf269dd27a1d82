"""Finding and reading run folders and exported SavedModels on disk."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from textclf.config import TrainConfig
from textclf.text.tokenizer import Tokenizer, tokenizer_from_json
from textclf.errors import TextclfError

# Written into every export version; marks the folder as a textclf export.
EXPORT_METADATA = "textclf.json"


@dataclasses.dataclass
class Run:
    """A run folder's contents, loaded."""

    path: Path
    config: TrainConfig
    tokenizer: Tokenizer
    classes: list[str]
    model: object  # keras.Model


def load_run(path) -> Run:
    """Reads a run folder written by :func:`textclf.train`; a ValueError names what is missing."""
    import importlib

    import keras

    for module in ("textclf.model.layers", "textclf.model.optimizers"):
        # Registers textclf's layers, and its optimizers should a saved model carry one, for load_model.
        importlib.import_module(module)

    path = Path(path)
    if not path.is_dir():
        raise TextclfError(f"Run folder not found: {path}")
    missing = [name for name in ("config.json", "tokenizer.json", "labels.json", "model.keras")
               if not (path / name).is_file()]
    if missing:
        raise TextclfError(f"{path} is not a textclf run folder (missing {', '.join(missing)})")
    config = TrainConfig.load(path / "config.json")
    tokenizer = tokenizer_from_json((path / "tokenizer.json").read_text(encoding="utf-8"))
    classes = json.loads((path / "labels.json").read_text(encoding="utf-8"))["classes"]
    model = keras.saving.load_model(path / "model.keras")
    return Run(path, config, tokenizer, classes, model)


def versions(base: Path) -> list[int]:
    """Integer version folders directly under ``base``, ascending: names of ASCII digits only."""
    if not base.is_dir():
        return []
    # Not str.isdigit: it takes "²", which int() refuses, and "٣", which int() reads as 3.
    return sorted(int(child.name) for child in base.iterdir()
                  if child.is_dir() and re.fullmatch(r"[0-9]+", child.name))


def check_weights(version_dir: Path) -> None:
    """Refuses an export without its weights, naming what is missing.

    TF Serving's C++ loader skips the restore when ``variables/variables.index`` is missing and loads the graph
    alone: the first request then failed with "Could not find variable blend/bias".
    """
    folder = version_dir / "variables"
    if (folder / "variables.index").is_file():
        return
    problem = ("its variables/ folder (the model's weights) is missing" if not folder.is_dir() else
               "its variables/ folder (the model's weights) is empty" if not any(folder.iterdir()) else
               "variables/variables.index (the index of the model's weights) is missing")
    raise TextclfError(f"{version_dir} is an incomplete export: {problem}; export the run again with "
                       "`textclf export RUN --output BASE`")


def resolve_export(path, require_metadata: bool = True) -> Path:
    """The version folder for ``path``: a version folder itself, or the highest under an export base.

    ``require_metadata`` refuses a SavedModel without ``textclf.json`` (one textclf did not export); a ValueError
    says what ``path`` holds when it is no export.
    """
    path = Path(path)
    if not path.exists():
        raise TextclfError(f"Model folder not found: {path}")
    if (path / "saved_model.pb").is_file():
        version_dir = path
    else:
        found = [number for number in versions(path) if (path / str(number) / "saved_model.pb").is_file()]
        if not found:
            raise TextclfError(
                f"{path} is not a textclf export: expected saved_model.pb in it or in an integer "
                "version folder under it (as `textclf train --output` or `textclf export` write)"
            )
        version_dir = path / str(found[-1])
    if require_metadata and not (version_dir / EXPORT_METADATA).is_file():
        raise TextclfError(f"{version_dir} is a SavedModel but not a textclf export (no {EXPORT_METADATA})")
    return version_dir
