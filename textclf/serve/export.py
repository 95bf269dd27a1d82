"""Export a run as a SavedModel that takes raw text, in TF Serving's layout.

``BASE/<version>/`` (the highest existing version + 1) holds the SavedModel and ``textclf.json`` (classes, task,
config); it is staged in a temporary folder and renamed only when complete, so no half version is ever visible
and no version is overwritten.  Signatures: ``serving_default`` (``text [batch]`` → ``label``, ``score``,
``classes [batch, C]``, ``scores [batch, C]``, and for multi-label models ``labels [batch, C]``, "" where a class
is not selected), ``tokenize`` (``text`` → int32 ``ids [batch, max_len]``) and ``explain`` (``text`` → each
token's occlusion weight, :mod:`textclf.serve.explain_graph`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from textclf.data.fingerprints import FINGERPRINT_FILE
from textclf.serve.artifacts import EXPORT_METADATA, Run, load_run, versions
from textclf.model.factory import build_model, class_probabilities, wide_of
from textclf.text.sequences import GraphEncoder
from textclf.serve.fast_lstm import LSTMInference, supports
from textclf.serve.explain_graph import EXPLAIN_MAX_TOKENS, explain_outputs
from textclf.errors import TextclfError
from textclf.log import tensorflow_info_hidden


def _inference_model(run):
    """A copy of the run's model with ``use_cudnn=False``: a GPU trace could hold only CudnnRNNV3 ops (GPU-only)."""
    # Dropout is the identity at inference: without it the graph holds no random-seed state.
    config = run.config.replace(dropout_rate=0.0, recurrent_dropout_rate=0.0, spatial_dropout_rate=0.0)
    model = build_model(config, run.tokenizer.vocabulary_size, len(run.classes), use_cudnn=False,
                        wide=wide_of(run.model))
    model.set_weights(run.model.get_weights())
    return model


def _scores_function(run, encoder, fast: bool, fast_options):
    """``scores(text)``: the model's output for a ``[batch]`` string tensor, computed as the export computes it."""
    import tensorflow as tf

    model = _inference_model(run)
    # LSTM models: the same numbers with less work (textclf/serve/fast_lstm.py); others run the Keras graph.
    inference = LSTMInference(model, run.config, **(fast_options or {})) if fast and supports(run.config) else None
    wide = (model.get_layer("ngram_tfidf"), model.get_layer("blend")) if wide_of(model) is not None else None
    # A blend that gives the recurrent part no weight (it trailed the linear one) outputs the same whatever that
    # part says: the graph leaves it out, and serves at the TF-IDF part's speed.
    linear_alone = wide is not None and float(wide[1].scales[0]) == 0.0

    def scores(text):
        if linear_alone:
            outputs = wide[1].outputs
            anything = tf.fill([tf.shape(text)[0], outputs], 0.5 if outputs == 1 else 1.0 / outputs)
            return wide[1]([anything, wide[0](text)])
        if inference is None:
            # Padded to the batch's longest row only: masked steps only carry the state forward,
            # so a short sentence costs a few steps, not max_len.
            ids = encoder.padded(text, padding=run.config.padding)[0]
            return model(ids if wide is None else [ids, text], training=False)
        # Right-padded to the longest row of the batch, whatever the training padding.
        ids, lengths = encoder.padded(text)
        if wide is None:
            return inference(ids, lengths)
        # The fast path computes the recurrent head; the wide branch and the blend are the model's own layers.
        return wide[1]([inference(ids, lengths), wide[0](text)])

    return scores


def serving_module(run, fast=True, fast_options=None, explain_tokens=EXPLAIN_MAX_TOKENS):
    """A ``tf.Module`` whose traced functions ``classify``, ``tokenize`` and ``explain`` map raw text to labels, ids
    and token weights.

    The module tracks the lookup table and exactly the ``tf.Variable``s its functions capture, no Keras object:
    a Keras 3 variable saves itself as a *new* ``tf.Variable`` copied from the one it wraps, so the saver's
    restore op (all TF Serving's C++ loader runs) would fill that copy while the graph reads the wrapped one
    ("Could not find variable ...").  ``tf.saved_model.load`` restores objects and hides this.

    Args:
        run: A loaded run (``textclf.serve.artifacts.load_run``).
        fast: LSTM models compute with ``textclf.serve.fast_lstm.LSTMInference`` (same outputs, faster).
        fast_options: Keyword arguments for ``LSTMInference`` (tests use them to force one path).
        explain_tokens: Tokens weighed per text at most by ``explain`` (each costs a row through the model).
    """
    import tensorflow as tf

    if isinstance(explain_tokens, bool) or not isinstance(explain_tokens, int) or explain_tokens < 1:
        raise TextclfError(f"`explain_tokens` must be a positive integer. Received: explain_tokens={explain_tokens!r}")
    encoder = GraphEncoder(run.tokenizer, run.config.max_len, run.config.padding, run.config.truncating)
    scores = _scores_function(run, encoder, fast, fast_options)

    class TextClassifierModule(tf.Module):
        def __init__(self):
            super().__init__(name="textclf")
            # Attributes are what tf.saved_model tracks; the model and encoder stay in the closure.
            self.table = encoder.table
            self.class_names = tf.constant(run.classes, dtype=tf.string)

        # Traced without autograph: nothing here branches on tensors in Python (tf.cond/tf.while_loop are
        # explicit), and converting Keras's layers would make the export several times slower to trace.
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def tokenize(self, text):
            return {"ids": encoder(text)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def classify(self, text):
            probabilities = class_probabilities(scores(text))
            best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            classes = tf.tile(self.class_names[tf.newaxis], [tf.shape(text)[0], 1])
            outputs = {"label": tf.gather(self.class_names, best), "score": tf.reduce_max(probabilities, axis=-1),
                       "classes": classes, "scores": probabilities}
            if run.config.multi_label:
                # Signatures return dense tensors: unselected classes are "".
                outputs["labels"] = tf.where(probabilities >= run.config.threshold, classes, tf.constant(""))
            return outputs

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def explain(self, text):
            return explain_outputs(text, run.config, explain_tokens, lambda texts: class_probabilities(scores(texts)),
                                   self.class_names)

    module = TextClassifierModule()
    with _as_saved():  # Traced once: tf.saved_model.save and _verify reuse these traces.
        captured = {id(variable): variable for function in (module.classify, module.tokenize, module.explain)
                    for variable in function.get_concrete_function().variables}
    module.served_variables = list(captured.values())
    return module


def _as_saved():
    """A context in which the module's functions trace (and find their traces) as ``tf.saved_model.save`` traces
    them: its save context is part of a ``tf.function``'s cache key, so a function traced outside it is traced
    again when saved (about 1 s of a 4 s export).  Without TensorFlow's internal module, no context."""
    import contextlib

    import tensorflow as tf

    try:
        from tensorflow.python.saved_model.save_context import in_save_context, save_context
    except ImportError:
        return contextlib.nullcontext()
    return contextlib.nullcontext() if in_save_context() else save_context(tf.saved_model.SaveOptions())


def _verify(staging: Path, module) -> dict | None:
    """Refuses an export that TF Serving's C++ loader would not serve, or would serve differently from ``module``.

    Every signature runs on ``PROBE_TEXTS``: labels, ids and tokens must be equal, scores and token weights within
    1e-5.  Returns the
    signatures' tensor names as the C++ loader found them (``None`` without the C API library).
    """
    import numpy as np
    import tensorflow as tf

    from textclf.log import log
    from textclf.serve.check import PROBE_TEXTS, check_export
    from textclf.serve.session import CApiUnavailable, ServingError

    try:
        report = check_export(staging)
    except CApiUnavailable as error:
        # The export itself is fine; only this check needs the library.
        log(f"warning: the export was not checked through TF Serving's loader ({error})")
        return None
    except ServingError as error:
        raise TextclfError(f"The export would not run in TF Serving's C++ loader: {error}") from None
    if report["forbidden_ops"]:
        raise TextclfError(f"The export holds ops a CPU-only server cannot run: {', '.join(report['forbidden_ops'])}")
    served = report["outputs"]["serving_default"]
    with _as_saved():  # The traces serving_module made.
        expected = module.classify(tf.constant(PROBE_TEXTS))
        ids = module.tokenize(tf.constant(PROBE_TEXTS))["ids"].numpy()
        weighed, explained = module.explain(tf.constant(PROBE_TEXTS)), report["outputs"]["explain"]
    if (served["label"].tolist() != expected["label"].numpy().tolist()
            or not np.allclose(served["scores"], expected["scores"].numpy(), rtol=0, atol=1e-5)
            or not np.array_equal(report["outputs"]["tokenize"]["ids"], ids)
            or explained["tokens"].tolist() != weighed["tokens"].numpy().tolist()
            or not np.allclose(explained["attributions"], weighed["attributions"].numpy(), rtol=0, atol=1e-5)):
        raise TextclfError("The export's outputs in TF Serving's C++ loader differ from the model's")
    return report["signatures"]


def _remove_stale_staging(base: Path) -> None:
    """Deletes ``.tmp-export-N-PID`` folders whose process is gone (killed while exporting)."""
    for folder in base.glob(".tmp-export-*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if re.fullmatch(r"[0-9]+", pid) is None or int(pid) == os.getpid():  # Not isdigit: it takes "²".
            continue
        try:
            os.kill(int(pid), 0)  # Signal 0 only asks whether the process exists.
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # Alive, another user's.


def export_run(run_dir, output, fast=True, fast_options=None, explain_tokens=EXPLAIN_MAX_TOKENS) -> Path:
    """Exports a run folder (or a loaded ``Run``) as the next version under ``output``; returns its folder.

    The SavedModel is staged, checked through TF Serving's own loading path (``textclf.serve.check``), and renamed
    to the version folder only when it loads, runs and agrees with the model.  ``fast``, ``fast_options`` and
    ``explain_tokens`` are :func:`serving_module`'s.
    """
    import tensorflow as tf

    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    base = Path(output)
    if base.exists() and not base.is_dir():
        raise TextclfError(f"Export base {base} exists and is not a folder")
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(base)
    version = (versions(base) or [0])[-1] + 1
    staging = base / f".tmp-export-{version}-{os.getpid()}"
    module = serving_module(run, fast=fast, fast_options=fast_options, explain_tokens=explain_tokens)
    try:
        with tensorflow_info_hidden():
            tf.saved_model.save(module, str(staging),
                                signatures={"serving_default": module.classify, "tokenize": module.tokenize,
                                                "explain": module.explain})
        signatures = _verify(staging, module)
        task = "multilabel" if run.config.multi_label else "binary" if len(run.classes) == 2 else "multiclass"
        metadata = {"format": "textclf-export", "version": version, "classes": run.classes, "task": task,
                    "run": str(run.path), "config": run.config.to_dict(),
                    "explain": {"max_tokens": explain_tokens}}
        if signatures is not None:
            # Tensor names per signature: `textclf predict` runs the export through the C API with them, as TF
            # Serving does, without importing TensorFlow's Python package (textclf.serve.predict).
            metadata["signatures"] = {name: [inputs, outputs] for name, (inputs, outputs) in signatures.items()
                                      if len(inputs) == 1}  # Not "__saved_model_init_op" (the loader runs it).
        (staging / EXPORT_METADATA).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        if (run.path / FINGERPRINT_FILE).is_file():  # The training texts' hashes, for `textclf evaluate`.
            shutil.copyfile(run.path / FINGERPRINT_FILE, staging / FINGERPRINT_FILE)
        target = base / str(version)
        if target.exists():
            raise TextclfError(f"Version folder {target} appeared while exporting; it was left untouched")
        # os.rename refuses to replace a non-empty folder: a version written meanwhile is never overwritten.
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
