"""``textclf check-export``: whether TF Serving's C++ loader serves a SavedModel, and what it answers.

The SavedModel is loaded and run through the C API (:mod:`textclf.serve.session`, as TF Serving does), its graph
and function library searched for ops a CPU-only server cannot run, and its answers compared with Python's
``tf.saved_model.load``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from textclf.errors import TextclfError
# Re-exported: bench scripts and docs name them here, where they lived before session.py.
from textclf.serve.session import CApiUnavailable, ServingError, ServingSession  # noqa: F401

# Ops a CPU-only server cannot run (cuDNN kernels exist only on GPUs) or that call back into Python.
FORBIDDEN_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3", "CudnnRNNBackprop", "CudnnRNNBackpropV2",
                 "CudnnRNNBackpropV3", "CudnnRNNCanonicalToParams", "CudnnRNNParamsToCanonical",
                 "CudnnRNNParamsSize", "PyFunc", "PyFuncStateless", "EagerPyFunc")


def _read_saved_model(export_dir):
    """The parsed ``saved_model.pb``; a ServingError names a missing or unreadable one."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(export_dir) / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(path.read_bytes())
    except (OSError, DecodeError) as error:
        raise ServingError(f"{path} cannot be read as a SavedModel: {error}") from None
    if not saved_model.meta_graphs:
        raise ServingError(f"{path} holds no MetaGraph (empty or truncated file)")
    return saved_model


def graph_ops(export_dir, saved_model=None) -> set[str]:
    """Every op type in the SavedModel's graphs *and* their function libraries (``saved_model``: already parsed).

    (``saved_model_cli show --list_ops`` lists only the top-level graph: little more than ``StatefulPartitionedCall``.)
    """
    ops = set()
    for meta_graph in (saved_model or _read_saved_model(export_dir)).meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def forbidden_ops(export_dir, saved_model=None) -> list[str]:
    """Ops in the export (graph and functions) that a CPU-only TF Serving cannot run."""
    return sorted(graph_ops(export_dir, saved_model) & set(FORBIDDEN_OPS))


# A batch a server meets: empty, punctuation only, emoji, CJK, an ordinary sentence, a 5,000-word text.
PROBE_TEXTS = ("", "?!... ---", "great film 👍🎬", "这部电影很好看", "a gorgeous, witty, seductive movie",
               " ".join(["word"] * 5000),
               # 729 distinct words: enough character n-grams for the wide branch's sparse product (layers.py).
               " ".join(a + b + c for a in "etaoinshr" for b in "etaoinshr" for c in "etaoinshr"))


# The signature TF Serving's loader runs itself, not one a client calls.
_INIT_OP = "__saved_model_init_op"
_DT_STRING = 7  # tensorflow/core/framework/types.proto, as in a SignatureDef's TensorInfo


def _shape(shape_proto) -> str:
    """A TensorShapeProto as a list, ``None`` for a dimension of any size."""
    return str([dim.size if dim.size >= 0 else None for dim in shape_proto.dim])


def _why_not_probed(signature_def) -> str | None:
    """Why a signature cannot take the probe texts (one ``[batch]`` string input), or ``None`` when it can."""
    import tensorflow as tf

    inputs = signature_def.inputs
    if len(inputs) != 1:
        return f"takes {len(inputs)} inputs ({', '.join(sorted(inputs))}), not one text" if inputs else "takes no input"
    key, info = next(iter(inputs.items()))
    if info.dtype != _DT_STRING:
        return f"its input {key!r} is {tf.dtypes.as_dtype(info.dtype).name}, not text"
    if not info.tensor_shape.unknown_rank and len(info.tensor_shape.dim) != 1:
        return f"its input {key!r} has shape {_shape(info.tensor_shape)}, not [None]"
    return None


def check_export(export_dir, texts=PROBE_TEXTS) -> dict:
    """Loads a version folder as TF Serving does, runs each signature taking one text on ``texts``, lists forbidden ops.

    Returns:
        ``{"forbidden_ops": [...], "functions": N, "outputs": {signature: {key: array}}, "signatures":
        {signature: ({input key: tensor name}, {output key: tensor name})}, "skipped": {signature: why}}``.

    Raises:
        ServingError: TensorFlow's message when the export does not load or a signature does not run.
    """
    saved_model = _read_saved_model(export_dir)
    with ServingSession(export_dir) as session:
        meta_graph = next(meta for meta in saved_model.meta_graphs if "serve" in meta.meta_info_def.tags)
        skipped = {name: why for name in sorted(session.signatures) if name != _INIT_OP
                   and (why := _why_not_probed(meta_graph.signature_def[name])) is not None}
        outputs = {name: session.run(name, texts) for name in sorted(session.signatures)
                   if name != _INIT_OP and name not in skipped}
        signatures = session.signatures
    return {"forbidden_ops": forbidden_ops(export_dir, saved_model), "outputs": outputs, "signatures": signatures,
            "skipped": skipped,
            "functions": sum(len(meta.graph_def.library.function) for meta in saved_model.meta_graphs)}


def check_report(path, as_json: bool = False) -> str:
    """``textclf check-export``: the C++ loader's verdict on an export base or version, with its outputs.

    Also reports whether Python's ``tf.saved_model.load`` agrees on ``serving_default`` (numbers within 1e-5, the
    rest identical), and which signatures were not run and why (only those taking one text are).

    Raises:
        ValueError: the export would not serve (TensorFlow's error), or holds ops a CPU-only server cannot run.
    """
    import tensorflow as tf

    from textclf.serve.artifacts import resolve_export

    # Any SavedModel: an export made by other tools is checked too.
    folder = resolve_export(path, require_metadata=False)
    try:
        report = check_export(folder)
    except ServingError as error:
        raise TextclfError(f"{folder} would not serve in TF Serving's C++ loader: {error}") from None
    if report["forbidden_ops"]:
        raise TextclfError(f"{folder} holds ops a CPU-only TF Serving cannot run (graph or function library): "
                         f"{', '.join(report['forbidden_ops'])}")
    if "serving_default" not in report["signatures"]:
        raise TextclfError(f"{folder} has no serving_default signature; it has "
                           f"{', '.join(sorted(set(report['signatures']) - {_INIT_OP})) or 'none'}")
    # The input's name as the signature declares it ("text" in textclf's exports; other tools choose their own).
    inputs = {name: next(iter(report["signatures"][name][0])) for name in report["outputs"]}
    served = report["outputs"].get("serving_default")  # None: it takes no text (report["skipped"] says why).
    agree = difference = None
    rows, whole = [], {}
    if served is not None:
        loaded = tf.saved_model.load(str(folder)).signatures["serving_default"](
            **{inputs["serving_default"]: tf.constant(PROBE_TEXTS)})
        # Handles (resource, variant) have no value to compare; quantized types come as one-field records.
        python = {key: tensor.numpy() for key, tensor in loaded.items()
                  if tensor.dtype not in (tf.resource, tf.variant)}
        agree, difference = _agreement(served, {key: array[array.dtype.names[0]] if array.dtype.names else array
                                                for key, array in python.items()})
        rows, whole = _rows(served)
    if as_json:
        return json.dumps({"export": str(folder), "servable": True, "forbidden_ops": [],
                           "functions_searched": report["functions"], "python_loader_agrees": agree,
                           "largest_difference": difference,
                           "signatures": {name: sorted(outputs) for name, outputs in report["outputs"].items()},
                           "skipped": report["skipped"], "whole_batch": whole, "outputs": rows}, ensure_ascii=False)
    return "\n".join(_lines(folder, report, inputs, agree, difference, rows, whole))


def _lines(folder, report, inputs, agree, difference, rows, whole) -> list[str]:
    """The report as text: the verdict, what ran and what did not, the agreement, then each probe text's outputs."""
    ran = "; ".join(f"{name}({inputs[name]}) -> {', '.join(sorted(outputs))}"
                    for name, outputs in report["outputs"].items())
    lines = [f"{folder}: servable — loaded with TF_LoadSessionFromSavedModel (TF Serving's C++ loader) and "
             + ("run with TF_SessionRun" if ran else "not run: no signature takes one text"),
             f"  signatures: {ran or 'none run'}"]
    if report["skipped"]:
        lines.append("  skipped: " + "; ".join(f"{name} ({why})" for name, why in report["skipped"].items()))
    lines.append(f"  no Cudnn*/PyFunc op in the graph or its {report['functions']} functions")
    lines.append(f"  tf.saved_model.load {'agrees' if agree else 'DISAGREES'}: largest difference {difference:.2e}"
                 if agree is not None else "  tf.saved_model.load: not compared (serving_default takes no text)")
    if whole:
        lines.append(f"  whole batch: {json.dumps(whole, ensure_ascii=False)}")
    return lines + [f"  {json.dumps(row['text'], ensure_ascii=False)} -> "
                    + (f"{row['label']} {row['score']:.6f}" if "label" in row and "score" in row else
                       json.dumps({key: value for key, value in row.items() if key != "text"}, ensure_ascii=False))
                    for row in rows]


def _agreement(served: dict, python: dict) -> tuple[bool, float]:
    """(Whether Python's outputs are the C API's: numbers within 1e-5, integers, booleans and text identical; the
    largest difference of the numbers).  Outputs missing from ``python`` (handles) are not compared."""
    agree, difference = True, 0.0
    for key in sorted(set(served) & set(python)):
        mine, theirs = served[key], python[key]
        if mine.shape != theirs.shape:
            agree = False
        elif mine.dtype == object or mine.dtype.kind in "iub":
            agree = agree and mine.tolist() == theirs.tolist()
        else:  # float16/32/64, complex, and ml_dtypes' bfloat16, float8 and int4 (which cast to float64 exactly).
            wide = np.complex128 if mine.dtype.kind == "c" else np.float64
            mine, theirs = mine.astype(wide), theirs.astype(wide)
            same = (mine == theirs) | (np.isnan(mine) & np.isnan(theirs))  # Equal infinities and NaNs included.
            difference = max(difference, float(np.max(np.where(same, 0.0, np.abs(mine - theirs)), initial=0.0)))
    return agree and difference <= 1e-5, difference


def _rows(served: dict) -> tuple[list[dict], dict]:
    """(One row per probe text: the text and each output's value for it; the outputs with no row per text, such as
    a scalar, each shown once.)"""
    count = len(PROBE_TEXTS)
    per_text = sorted(key for key, value in served.items() if value.ndim and value.shape[0] == count)
    whole = {key: _short(_plain(served[key])) for key in sorted(set(served) - set(per_text))}
    shown = [_short(text) for text in PROBE_TEXTS]
    label, score = served.get("label"), served.get("score")
    if (label is not None and score is not None and label.shape == score.shape == (count,)
            and label.dtype == object and score.dtype.kind == "f"):  # A classifier's export: label and score per text.
        return [{"text": text, "label": _plain(label[index]), "score": float(score[index])}
                for index, text in enumerate(shown)], whole
    return [{"text": text, **{key: _short(_plain(served[key][index])) for key in per_text}}
            for index, text in enumerate(shown)], whole


def _short(value):
    """A text of at most 60 characters ("..." ending a longer one); other values unchanged."""
    return value[:57] + "..." if isinstance(value, str) and len(value) > 60 else value


def _plain(value):
    """An output's value as JSON takes it: text for bytes, numbers and lists of them; complex numbers as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):  # A handle's "<resource>" or "<variant>".
        return value
    array = np.asarray(value)
    if array.dtype == object:
        return [_plain(item) for item in array] if array.ndim else _plain(array.item())
    return (array.astype(str) if array.dtype.kind == "c" else array).tolist()
