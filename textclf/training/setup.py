"""What a run is built from: its seeds, targets, model (with precision and embeddings), optimizer, loss.

Shared by the loop (``loop``, ``steps``) and the pipeline above it (``fit``), so neither imports the other.
"""

from __future__ import annotations

import os

import numpy as np

from textclf.config import TrainConfig
from textclf.log import log
from textclf.model.factory import build_model
from textclf.data.labels import label_sets, multi_hot
from textclf.text.tokenizer import Tokenizer


def targets_of(config: TrainConfig, labels, classes):
    """Training targets: multi-hot rows (multi-label), a float column (binary: one sigmoid unit) or class indices."""
    if config.multi_label:
        return multi_hot(label_sets(labels, config.label_sep), classes)
    positions = {label: index for index, label in enumerate(classes)}
    indices = np.array([positions[label] for label in labels], dtype=np.int32)
    return indices.astype("float32")[:, None] if len(classes) == 2 else indices


def build_fit_model(config: TrainConfig, tokenizer: Tokenizer, classes):
    """The uncompiled model to fit, its embedding loaded from ``config.embeddings`` when given.

    Mixed precision sets the global dtype policy only while the model is built (layers take it then), so later
    models in this process (the export's inference copy) stay float32.
    """
    import keras
    import tensorflow as tf

    previous = keras.config.dtype_policy()
    try:
        if config.mixed_precision:
            policy = "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
            keras.config.set_dtype_policy(policy)
            log(f"mixed precision: {policy}")
        model = build_model(config, tokenizer.vocabulary_size, len(classes))
    finally:
        keras.config.set_dtype_policy(previous)
    if config.embeddings:
        from textclf.model.embeddings import load_embeddings

        vectors = load_embeddings(config.embeddings, tokenizer, tokenizer.vocabulary_size, config.embedding_dim,
                                  seed=config.seed)
        model.get_layer("embedding").set_weights([vectors.matrix])
        log(f"{config.embeddings}: vectors for {vectors.found} of {vectors.total} vocabulary words "
            f"({vectors.coverage:.1%} coverage){', frozen' if config.freeze_embeddings else ''}")
    return model


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """Adam (``config.optimizer``) with the configured learning rate (or cosine decay over all steps) and clipping."""
    import keras

    from textclf.model.optimizers import FusedAdam, LazyAdam

    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch)
    optimizer_class = LazyAdam if config.optimizer == "lazy_adam" else FusedAdam
    return optimizer_class(learning_rate=learning_rate, clipnorm=config.clipnorm)


def loss_name(classes, multi_label: bool = False) -> str:
    """The Keras loss for the head: sigmoid units for two classes or multi-label, a softmax otherwise."""
    return "binary_crossentropy" if len(classes) == 2 or multi_label else "sparse_categorical_crossentropy"


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def one_thread_per_op_on_cpu() -> bool:
    """On a machine without a GPU, each TensorFlow op runs on one thread (ops still run side by side).

    A recurrent step's products are small (``[256, 192] @ [192, 256]``): splitting each over the cores costs more
    than it saves, while the two directions of a BiLSTM and the rest of the graph can run at once (faster epochs;
    sums in another order move losses in the fourth decimal: docs/PERFORMANCE.md, "End to end").  Must run
    before TensorFlow starts its runtime (the first op); afterwards, or when ``TF_NUM_INTRAOP_THREADS`` is set
    (the user's choice), nothing changes.

    Returns:
        Whether the setting was applied.
    """
    import tensorflow as tf

    if os.environ.get("TF_NUM_INTRAOP_THREADS") or tf.config.list_physical_devices("GPU"):
        return False
    if tf.config.threading.get_intra_op_parallelism_threads() == 1:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # The runtime already started (TensorFlow used before textclf): its pools stay.
        return False
    return True
