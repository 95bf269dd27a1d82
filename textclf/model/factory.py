"""Model factory: Embedding → recurrent layers → Dense head.  No I/O here."""

from __future__ import annotations

import weakref

import numpy as np

from textclf.config import TrainConfig
from textclf.errors import TextclfError


def build_model(config: TrainConfig, vocabulary_size: int, num_classes: int, use_cudnn="auto", wide=None):
    """Builds an uncompiled Keras Functional classifier on int32 ids ``[batch, time]`` (0 is padding, masked).

    Output: ``[batch, 1]`` sigmoid probability of the second class when ``num_classes == 2``, otherwise
    ``[batch, num_classes]`` softmax; with ``config.multi_label``, ``[batch, num_classes]`` independent sigmoids.
    The recurrent layers keep Keras's defaults (tanh/sigmoid, no unroll, bias on), so with
    ``recurrent_dropout_rate == 0`` and right-padded input the fused cuDNN kernel is used on a GPU.

    Args:
        config: Architecture settings.
        vocabulary_size: Rows of the embedding (largest id + 1).
        num_classes: Number of labels, at least 2.
        use_cudnn: Passed to every LSTM/GRU; the export uses ``False`` so the saved graph holds no GPU-only op.
        wide: ``(analyzers, sizes)`` of a fitted wide branch (:func:`wide_of`), or ``None``.  With it the model
            takes two inputs, ``[ids, text]`` (``text``: ``[batch]`` raw strings), and blends the branch's logits
            with the recurrent head's output.
    """
    import keras

    from textclf.model.layers import Blend, GatherEmbedding, NgramTfidfLogits

    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 2:
        raise TextclfError(f"`vocabulary_size` must be an integer >= 2. Received: vocabulary_size={vocabulary_size!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise TextclfError(f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}")

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    hidden = GatherEmbedding(
        vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding",
        trainable=not config.freeze_embeddings,
    )(ids)
    if config.spatial_dropout_rate:
        # Drops whole embedding channels: the same features vanish at every step.
        hidden = keras.layers.SpatialDropout1D(config.spatial_dropout_rate, name="spatial_dropout")(hidden)
    hidden = _pooled(config, _recurrent_layers(config, hidden, use_cudnn))
    hidden = keras.layers.Dropout(config.dropout_rate, name="head_dropout")(hidden)
    outputs = _head(config, num_classes)(hidden)
    if wide is None:
        return keras.Model(ids, outputs, name=f"textclf_{config.arch}")
    # The wide branch beside the recurrent one, on the raw text (fitted by textclf.training.wide).
    text = keras.Input(shape=(), dtype="string", name="text")
    logits = NgramTfidfLogits(wide[0], wide[1], outputs.shape[-1], name="ngram_tfidf")(text)
    outputs = Blend(outputs.shape[-1], name="blend")([outputs, logits])
    return keras.Model([ids, text], outputs, name=f"textclf_{config.arch}")


def _recurrent_layers(config: TrainConfig, hidden, use_cudnn):
    """``config.num_layers`` recurrent layers on ``hidden``; sequences out unless the last feeds ``pooling="last"``."""
    import keras

    recurrent_class = keras.layers.GRU if config.arch.endswith("gru") else keras.layers.LSTM
    for layer_number in range(1, config.num_layers + 1):
        recurrent = recurrent_class(
            config.units,
            dropout=config.dropout_rate,
            recurrent_dropout=config.recurrent_dropout_rate,
            return_sequences=config.pooling != "last" or layer_number < config.num_layers,
            use_cudnn=use_cudnn,
            name=f"{config.arch.removeprefix('bi')}_{layer_number}",
        )
        if config.arch.startswith("bi"):
            recurrent = keras.layers.Bidirectional(recurrent, name=f"{config.arch}_{layer_number}")
        output = recurrent(hidden)
        # Residual connections between recurrent layers of equal width (not around the first, fed the embedding).
        if config.residual and layer_number > 1 and output.shape[-1] == hidden.shape[-1] and len(output.shape) == 3:
            output = keras.layers.Add(name=f"residual_{layer_number}")([hidden, output])
        hidden = output
    return hidden


def _pooled(config: TrainConfig, hidden):
    """``hidden`` pooled over time as ``config.pooling`` says (``"last"``: already one vector per row)."""
    import keras

    from textclf.model.layers import AttentionPooling, MaskedMaxPooling

    pooled = []
    if config.pooling in ("max", "max_mean"):
        pooled.append(MaskedMaxPooling(name="max_pooling")(hidden))
    if config.pooling in ("mean", "max_mean"):
        pooled.append(keras.layers.GlobalAveragePooling1D(name="mean_pooling")(hidden))
    if config.pooling == "attention":
        pooled.append(AttentionPooling(config.units, name="attention_pooling")(hidden))
    if not pooled:
        return hidden
    return pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="max_mean_pooling")(pooled)


def _head(config: TrainConfig, num_classes: int):
    """The output layer: one sigmoid for two classes, a softmax for more, a sigmoid per class for multi-label."""
    import keras

    if config.multi_label:
        # Independent probabilities: a text may belong to several classes, or none.
        return keras.layers.Dense(num_classes, activation="sigmoid", dtype="float32", name="label_probabilities")
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")


def wide_of(model):
    """``(analyzers, sizes)`` of ``model``'s wide branch (``build_model``'s ``wide``), or ``None`` without one."""
    if "ngram_tfidf" not in {layer.name for layer in model.layers}:
        return None
    layer = model.get_layer("ngram_tfidf")
    return layer.analyzers, layer.sizes


def recurrent_head(model):
    """The recurrent branch's Dense head (the model's output layer unless a wide branch is blended in)."""
    names = ("label_probabilities", "probability", "probabilities")
    return next(layer for layer in model.layers if layer.name in names)


def class_probabilities(outputs):
    """``[batch, num_classes]`` probabilities: the binary head's one sigmoid ``p`` becomes ``[1 - p, p]``."""
    if outputs.shape[-1] == 1:
        import keras

        return keras.ops.concatenate([1.0 - outputs, outputs], axis=-1)
    return outputs


def _without_padding_columns(ids: np.ndarray) -> np.ndarray:
    """``ids`` less the columns that are padding in every row, at either end (no row is all padding).

    Masked steps change no output, so this is exact, and short texts do not run over a long ``max_len``.
    """
    used = np.flatnonzero(ids.any(axis=0))
    return ids[:, used[0]: used[-1] + 1] if used.size else ids


_COMPILED = weakref.WeakKeyDictionary()


def compiled_call(model):
    """``model(ids, training=False)`` as one ``tf.function`` for any ``[rows, length]`` int32 batch; a model with
    a wide branch is called as ``call(ids, text)`` (``text``: ``[rows]`` strings).

    Eagerly, a recurrent layer's loop runs step by step from Python (21 s against under 1 s compiled for 600
    800-token articles); one trace serves every batch shape.
    """
    if model not in _COMPILED:
        import tensorflow as tf

        ids = tf.TensorSpec([None, None], tf.int32)
        if wide_of(model) is None:
            _COMPILED[model] = tf.function(lambda ids: model(ids, training=False), reduce_retracing=True,
                                           autograph=False, input_signature=[ids])
        else:
            _COMPILED[model] = tf.function(lambda ids, text: model([ids, text], training=False),
                                           reduce_retracing=True, autograph=False,
                                           input_signature=[ids, tf.TensorSpec([None], tf.string)])
    return _COMPILED[model]


def predict_probabilities(model, ids, texts=None, batch_size=1024) -> np.ndarray:
    """``[rows, num_classes]`` probabilities of the padded ``ids`` (and of the raw ``texts`` they encode, which a
    model with a wide branch reads too), computed batch by batch."""
    call, wide = compiled_call(model), wide_of(model) is not None
    if wide and (texts is None or len(texts) != len(ids)):
        raise TextclfError("A model with a wide branch needs the raw texts beside their ids")
    outputs = []
    for start in range(0, len(ids), batch_size):
        batch = [_without_padding_columns(ids[start : start + batch_size])]
        if wide:
            batch.append(np.asarray(list(texts[start : start + batch_size]), dtype=object))
        outputs.append(np.asarray(class_probabilities(call(*batch))))
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)
