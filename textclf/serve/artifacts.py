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
    tokenizer = load_tokenizer(path / "tokenizer.json")
    classes = _classes(path / "labels.json", _json_object(path / "labels.json", ["classes"])["classes"])
    model = keras.saving.load_model(path / "model.keras")
    check_class_count(path / "labels.json", classes, model.outputs[0].shape[-1])
    return Run(path, config, tokenizer, classes, model)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TextclfError(f"{path} is not valid JSON: {error}") from None


def _shown(value, limit: int = 100) -> str:
    """``value`` as JSON, cut to ``limit`` characters: messages quote what a hand-edited file holds."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_object(path: Path, keys) -> dict:
    """The JSON object in ``path``; a TextclfError names the file and the first of ``keys`` it lacks."""
    value = _read_json(path)
    names = " and ".join(f"`{key}`" for key in keys)
    if not isinstance(value, dict):
        raise TextclfError(f"{path} must be a JSON object with {names}. Received: {_shown(value)}")
    for key in keys:
        if key not in value:
            raise TextclfError(f"{path} must be a JSON object with {names}. Received: an object without `{key}`")
    return value


def _classes(path: Path, value) -> list[str]:
    """``classes`` of a labels.json or textclf.json: at least two distinct names (training refuses fewer)."""
    if (not isinstance(value, list) or len(value) < 2 or not all(isinstance(name, str) for name in value)
            or len(set(value)) != len(value)):
        raise TextclfError(f"`classes` in {path} must be a list of at least 2 distinct class names (strings). "
                           f"Received: classes={_shown(value)}")
    return value


def check_class_count(path: Path, classes: list, width: int) -> None:
    """Refuses ``classes`` (read from ``path``) that are not as many as the model's output columns ``width``."""
    expected = 2 if width == 1 else width  # A binary model's one sigmoid stands for two classes.
    if len(classes) != expected:
        raise TextclfError(f"`classes` in {path} must list the model's {expected} classes (its output has {width} "
                           f"column{'s' if width != 1 else ''}). Received: {len(classes)} classes, "
                           f"classes={_shown(classes)}")


# A tokenizer.json's settings with the JSON types each takes, and its fitted state: JSON strings holding objects.
_TOKENIZER_SETTINGS = {"num_words": (int, type(None)), "filters": (str,), "lower": (bool,), "split": (str,),
                       "char_level": (bool,), "oov_token": (str, type(None)), "document_count": (int,), "cjk": (str,)}
_TOKENIZER_STATE = {"word_counts": (str, int, "words to counts"), "word_docs": (str, int, "words to counts"),
                    "index_docs": (int, int, "indices to counts"), "index_word": (int, str, "indices to words"),
                    "word_index": (str, int, "words to indices")}


def load_tokenizer(path: Path) -> Tokenizer:
    """A run's ``tokenizer.json``, each setting and each part of the fitted state checked against ``path``."""
    data = _json_object(path, ["config"])
    config = data["config"]
    if not isinstance(config, dict):
        raise TextclfError(f"`config` in {path} must be a JSON object of the tokenizer's settings and state. "
                           f"Received: config={_shown(config)}")
    for name, value in config.items():
        if name not in _TOKENIZER_SETTINGS and name not in _TOKENIZER_STATE:
            raise TextclfError(f"`config` in {path} holds an unknown key {name!r}; a tokenizer's are "
                               f"{', '.join([*_TOKENIZER_SETTINGS, *_TOKENIZER_STATE])}")
        if name in _TOKENIZER_SETTINGS and type(value) not in _TOKENIZER_SETTINGS[name]:
            kinds = " or ".join("null" if kind is type(None) else kind.__name__ for kind in _TOKENIZER_SETTINGS[name])
            raise TextclfError(f"`config.{name}` in {path} must be {kinds}. Received: {name}={_shown(value)}")
    for name, (key_kind, value_kind, what) in _TOKENIZER_STATE.items():
        if name not in config:
            raise TextclfError(f"`config` in {path} must hold the tokenizer's fitted state. Received: no `{name}`")
        try:
            state = json.loads(config[name]) if isinstance(config[name], str) else None
        except json.JSONDecodeError:
            state = None
        # Index keys are JSON's strings of digits; counts and indices are integers.
        if not isinstance(state, dict) or not all(
                type(value) is value_kind and (key_kind is str or re.fullmatch(r"[0-9]+", key))
                for key, value in state.items()):
            raise TextclfError(f"`config.{name}` in {path} must be a JSON string holding an object of {what}. "
                               f"Received: {name}={_shown(config[name])}")
    try:
        return tokenizer_from_json(json.dumps(data))
    except TextclfError as error:  # A setting the Tokenizer itself refuses (an empty `split`): name the file.
        raise TextclfError(f"{path}: {error}") from None


# The signatures textclf runs from an export's metadata, and the output it fetches from each.
_SIGNATURE_OUTPUTS = {"serving_default": "scores", "tokenize": "ids"}
# Those only newer exports have (``explain``: since the export's explain signature).
_OPTIONAL_SIGNATURE_OUTPUTS = {"explain": "attributions"}


def load_export_metadata(version_dir: Path) -> tuple[dict, list[str], TrainConfig, dict | None]:
    """An export's ``textclf.json``: (its content, classes, config, and signatures' tensor names or ``None``).

    The signatures are ``{name: ({input key: tensor name}, {output key: tensor name})}`` for ``serving_default``
    and ``tokenize``, and ``explain`` where the export has it; exports made without the C API library record none.
    """
    path = version_dir / EXPORT_METADATA
    metadata = _json_object(path, ["classes", "config"])
    classes = _classes(path, metadata["classes"])
    try:
        config = TrainConfig.from_dict(metadata["config"], source="`config`")
    except TextclfError as error:
        raise TextclfError(f"{path}: {error}") from None
    signatures = metadata.get("signatures")
    if signatures is None:
        return metadata, classes, config, None
    if not isinstance(signatures, dict) or not set(_SIGNATURE_OUTPUTS) <= set(signatures):
        raise TextclfError(f"`signatures` in {path} must be an object with serving_default and tokenize, as "
                           f"`textclf export` writes it. Received: signatures={_shown(signatures)}")
    used = {**_SIGNATURE_OUTPUTS, **{name: output for name, output in _OPTIONAL_SIGNATURE_OUTPUTS.items()
                                     if name in signatures}}
    for name, output in used.items():
        pair = signatures[name]
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, dict) for part in pair)
                and len(pair[0]) == 1 and output in pair[1]
                and all(isinstance(tensor, str) and re.fullmatch(r"[^:]+(:[0-9]+)?", tensor)
                        for part in pair for tensor in part.values())):
            raise TextclfError(f"`signatures.{name}` in {path} must be [{{input: tensor name}}, {{output: tensor "
                               f"name, ...}}] with one input and the output {output!r}, as `textclf export` writes "
                               f"it. Received: {_shown(pair)}")
    return metadata, classes, config, {name: (dict(signatures[name][0]), dict(signatures[name][1]))
                                       for name in used}


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
