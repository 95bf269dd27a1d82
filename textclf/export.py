"""Export a run as a SavedModel that takes raw text, in TF Serving's layout.

Layout: ``BASE/<version>/saved_model.pb`` with ``variables/``, plus
``textclf.json`` (classes, task, config).  The next version is the highest
existing one + 1; the SavedModel is written to a temporary folder beside it
and renamed only when complete, so a crash never leaves a half version and an
existing version is never touched.

Signature ``serving_default``: input ``text`` (string ``[batch]``); outputs
``label`` (string ``[batch]``), ``score`` (float32 ``[batch]``, the
probability of that label), ``classes`` (string ``[batch, C]``) and ``scores``
(float32 ``[batch, C]``); multi-label models add ``labels`` (string
``[batch, C]``: the class where its score reaches the threshold, else "").
Signature ``tokenize`` returns the ``ids`` (int32
``[batch, max_len]``) the model reads, for debugging clients.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from textclf.artifacts import EXPORT_METADATA, load_run, versions
from textclf.model import build_model, class_probabilities
from textclf.sequences import GraphEncoder
from textclf.serving import LSTMInference, supports


def _inference_model(run):
    """A copy of the run's model whose recurrent layers never pick cuDNN.

    A graph traced on a GPU with ``use_cudnn="auto"`` can contain only
    ``CudnnRNNV3`` ops, which fail on a CPU-only server.  The copy, with
    ``use_cudnn=False``, traces the generic loop that runs on both.
    """
    # Dropout is the identity at inference: without it the graph holds no random-seed state.
    config = run.config.replace(dropout_rate=0.0, recurrent_dropout_rate=0.0, spatial_dropout_rate=0.0)
    model = build_model(config, run.tokenizer.vocabulary_size, len(run.classes), use_cudnn=False)
    model.set_weights(run.model.get_weights())
    return model


def serving_module(run, fast=True, fast_options=None):
    """A ``tf.Module`` whose functions map raw text to labels and scores.

    Args:
        run: A loaded run (``textclf.artifacts.load_run``).
        fast: LSTM models compute with ``textclf.serving.LSTMInference``
            instead of the Keras graph (same outputs, faster).
        fast_options: Keyword arguments for ``LSTMInference`` (tests use them
            to force one path).
    """
    import tensorflow as tf

    class TextClassifierModule(tf.Module):
        def __init__(self):
            super().__init__(name="textclf")
            self.encoder = GraphEncoder(run.tokenizer, run.config.max_len, run.config.padding, run.config.truncating)
            # Attributes are what tf.saved_model tracks: the table and the model must be here.
            self.table = self.encoder.table
            model = _inference_model(run)
            if fast and supports(run.config):
                # LSTM models: the same numbers with less work (textclf/serving.py).
                self.inference = LSTMInference(model, run.config, **(fast_options or {}))
                self.inference_variables = self.inference.variables
                self.head_layers = self.inference.pooling_layers + [self.inference.head]
                self.model_variables = self.inference.head_variables
            else:
                self.inference = None
                self.model = model
                # Keras 3 keeps some state (e.g. random-seed variables) outside TensorFlow's
                # tracking; listing every variable makes sure the SavedModel holds it.
                self.model_variables = list(self.model.variables)
            self.class_names = tf.constant(run.classes, dtype=tf.string)

        def _scores(self, text):
            """The model's output for a ``[batch]`` string tensor."""
            if self.inference is None:
                # Padded to the batch's longest row only: masked steps only carry the
                # state forward, so a short sentence costs a few steps, not max_len.
                return self.model(self.encoder.padded(text, padding=run.config.padding)[0], training=False)
            # Right-padded to the longest row of the batch, whatever the training padding.
            return self.inference(*self.encoder.padded(text))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize(self, text):
            return {"ids": self.encoder(text)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def classify(self, text):
            probabilities = class_probabilities(self._scores(text))
            best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            batch = tf.shape(text)[0]
            classes = tf.tile(self.class_names[tf.newaxis], [batch, 1])
            outputs = {
                "label": tf.gather(self.class_names, best),
                "score": tf.reduce_max(probabilities, axis=-1),
                "classes": classes,
                "scores": probabilities,
            }
            if run.config.multi_label:
                # Signatures return dense tensors: unselected classes are "".
                outputs["labels"] = tf.where(probabilities >= run.config.threshold, classes, tf.constant(""))
            return outputs

    return TextClassifierModule()


def export_run(run_dir, output) -> Path:
    """Exports a run folder as the next version under ``output``.

    Args:
        run_dir: A run folder written by :func:`textclf.train`.
        output: Export base folder (``saved_models/NAME``).

    Returns:
        The new version folder, e.g. ``saved_models/NAME/3``.

    Example:
        >>> export_run("saved_models/rt_polarity/runs/20261124-221500", "saved_models/rt_polarity")
        PosixPath('saved_models/rt_polarity/2')
    """
    import tensorflow as tf

    run = load_run(run_dir)
    base = Path(output)
    if base.exists() and not base.is_dir():
        raise ValueError(f"Export base {base} exists and is not a folder")
    base.mkdir(parents=True, exist_ok=True)
    version = (versions(base) or [0])[-1] + 1
    staging = base / f".tmp-export-{version}-{os.getpid()}"
    module = serving_module(run)
    try:
        tf.saved_model.save(
            module, str(staging),
            signatures={"serving_default": module.classify, "tokenize": module.tokenize},
        )
        metadata = {
            "format": "textclf-export",
            "version": version,
            "classes": run.classes,
            "task": "multilabel" if run.config.multi_label else "binary" if len(run.classes) == 2 else "multiclass",
            "run": str(Path(run_dir)),
            "config": run.config.to_dict(),
        }
        (staging / EXPORT_METADATA).write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
        target = base / str(version)
        if target.exists():
            raise ValueError(f"Version folder {target} appeared while exporting; it was left untouched")
        # os.rename refuses to replace a non-empty folder, so a version written
        # meanwhile by another process is never overwritten.
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
