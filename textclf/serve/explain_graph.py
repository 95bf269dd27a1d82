"""The export's ``explain`` signature: ``textclf explain``'s occlusion, computed in the graph with core TF ops.

The definition is :func:`textclf.serve.explain.occlusion`'s and the variant texts are written the same way, so
the weights are those ``textclf explain`` computes in Python on the same export.  A text is split by the export's
own rules and truncated to ``max_len`` as the model truncates it; with ``cjk_bigrams`` each character (or Latin
word) is a unit and takes its bigrams with it, otherwise each token is one.  At most ``max_tokens`` units of a
text are weighed (its first ones, or its last when the model truncates ``"pre"``): each is left out in turn, and
the texts, their units written back whole (the reference each variant is compared with) and all their variants
are scored in one batch, so a text costs at most ``max_tokens + 2`` rows of at most ``max_len`` tokens through the
model.
"""

from __future__ import annotations

from textclf.text.rules import is_cjk_bigram_graph

# Units weighed per text by the explain signature: each one is one more row of the text through the model.
EXPLAIN_MAX_TOKENS = 128


def _kept_tokens(texts, rules, max_len: int, truncating: str):
    """The tokens the model reads, flat and in order: ``(tokens, rows, is_bigram, units_in_text)``.

    ``units_in_text``: int32 ``[batch]``, each text's units before truncation (what a client is told was left
    unweighed is counted from it).
    """
    import tensorflow as tf

    tokens, rows = rules.split_graph_flat(texts)
    rows = tf.cast(rows, tf.int32)
    batch = tf.shape(texts)[0]
    bigram = is_cjk_bigram_graph(tokens) if rules.cjk == "bigrams" else tf.zeros_like(rows, tf.bool)
    units_in_text = tf.math.unsorted_segment_sum(tf.cast(tf.logical_not(bigram), tf.int32), rows, batch)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, batch)
    positions = tf.range(tf.size(rows)) - tf.gather(tf.cumsum(counts, exclusive=True), rows)
    # The encoder's truncation: "post" keeps a row's first max_len tokens, "pre" its last.
    kept = positions >= tf.gather(counts, rows) - max_len if truncating == "pre" else positions < max_len
    return (tf.boolean_mask(tokens, kept), tf.boolean_mask(rows, kept), tf.boolean_mask(bigram, kept),
            units_in_text)


def _units(texts, rules, max_len: int, truncating: str):
    """Each text's units as the model reads them: ``(units, glue, counts, units_in_text)``.

    ``units`` and ``glue`` are string ``[batch, N]`` ("" beyond a row's ``counts``); ``glue[b, i]`` is written
    between units ``i`` and ``i + 1`` in a variant that keeps both.
    """
    import tensorflow as tf

    tokens, rows, bigram, units_in_text = _kept_tokens(texts, rules, max_len, truncating)
    if rules.cjk == "bigrams":
        size = tf.size(rows)
        following = tf.minimum(tf.range(size) + 1, tf.maximum(size - 1, 0))
        # A unit followed by its bigram is written together with the next unit: the bigram forms again.
        together = ((tf.range(size) < size - 1) & tf.equal(tf.gather(rows, following), rows)
                    & tf.gather(bigram, following))
        glue = tf.where(together, tf.constant(""), tf.constant(rules.split))
    else:
        glue = tf.fill(tf.shape(tokens), "" if rules.char_level else rules.split)
    unit = tf.logical_not(bigram)
    tokens, rows, glue = (tf.boolean_mask(values, unit) for values in (tokens, rows, glue))
    counts = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, tf.shape(texts)[0])
    width = tf.reduce_max(tf.concat([counts, [0]], 0))
    columns = tf.range(width)[tf.newaxis, :]
    # Flat index of each dense cell; cells beyond a row's count point at the "" appended last.
    index = tf.where(columns < counts[:, tf.newaxis], tf.cumsum(counts, exclusive=True)[:, tf.newaxis] + columns,
                     tf.size(rows))
    return (tf.gather(tf.concat([tokens, [""]], 0), index), tf.gather(tf.concat([glue, [""]], 0), index), counts,
            units_in_text)


def _variants(units, glue, counts, skip: str, max_tokens: int, truncating: str):
    """The texts with one weighed unit left out: ``(variants, left_out, weighed)``.

    ``left_out``: int32 ``[batch, L]``, the unit each variant leaves out (``L``: the batch's most weighed units);
    ``weighed``: int32 ``[batch]``; ``variants``: string ``[sum(weighed)]``, row by row.  ``skip`` is written where
    a unit was left out.
    """
    import tensorflow as tf

    weighed = tf.minimum(counts, max_tokens)
    # The units the model keeps are weighed from the same end: the last ones when it truncates "pre".
    first = counts - weighed if truncating == "pre" else tf.zeros_like(counts)
    steps = tf.reduce_max(tf.concat([weighed, [0]], 0))
    left_out = first[:, tf.newaxis] + tf.range(steps)[tf.newaxis, :]
    width = tf.shape(units)[1]
    i, j = tf.range(width)[tf.newaxis, tf.newaxis, :], left_out[:, :, tf.newaxis]
    glue_before = tf.gather(glue, tf.maximum(tf.range(width) - 1, 0), axis=1)[:, tf.newaxis, :]
    starts = tf.equal(i, 0) | (tf.equal(i, 1) & tf.equal(j, 0))  # The variant's first unit: nothing before it.
    prefix = tf.where(starts, tf.constant(""), tf.where(tf.equal(i - 1, j), tf.constant(skip), glue_before))
    pieces = tf.strings.join([prefix, tf.tile(units[:, tf.newaxis, :], [1, steps, 1])])
    pieces = tf.where(tf.equal(i, j) | (i >= counts[:, tf.newaxis, tf.newaxis]), tf.constant(""), pieces)
    valid = tf.range(steps)[tf.newaxis, :] < weighed[:, tf.newaxis]
    return tf.boolean_mask(tf.strings.reduce_join(pieces, axis=-1), valid), left_out, weighed


def _whole(units, glue, counts):
    """``[batch]`` strings: each row's units written back with nothing left out (``_variants``'s glue)."""
    import tensorflow as tf

    width = tf.shape(units)[1]
    glue_before = tf.gather(glue, tf.maximum(tf.range(width) - 1, 0), axis=1)
    prefix = tf.where(tf.equal(tf.range(width), 0)[tf.newaxis, :], tf.constant(""), glue_before)
    pieces = tf.where(tf.range(width)[tf.newaxis, :] < counts[:, tf.newaxis], tf.strings.join([prefix, units]),
                      tf.constant(""))
    return tf.strings.reduce_join(pieces, axis=-1)


def explain_outputs(texts, config, max_tokens: int, probabilities_of, class_names) -> dict:
    """The explain signature's outputs for a ``[batch]`` string tensor (see the README's "explain" section).

    Args:
        texts: ``tf.string [batch]``, raw text.
        config: The run's ``TrainConfig`` (its text rules, ``max_len``, ``truncating``, multi-label threshold).
        max_tokens: Units weighed per text at most.
        probabilities_of: ``[n]`` strings → ``[n, C]`` class probabilities (the serving signature's).
        class_names: ``tf.string [C]``.
    """
    import tensorflow as tf

    rules = config.text_rules()
    units, glue, counts, units_in_text = _units(texts, rules, config.max_len, config.truncating)
    skip = "" if rules.char_level and rules.cjk != "bigrams" else rules.split
    variants, left_out, weighed = _variants(units, glue, counts, skip, max_tokens, config.truncating)
    batch = tf.shape(texts)[0]
    # Drops are measured from the units written back whole (occlusion's reference), the label from the text.
    probabilities = probabilities_of(tf.concat([texts, _whole(units, glue, counts), variants], 0))
    base, whole, without = probabilities[:batch], probabilities[batch:2 * batch], probabilities[2 * batch:]
    valid = tf.range(tf.shape(left_out)[1])[tf.newaxis, :] < weighed[:, tf.newaxis]
    shape = tf.concat([tf.shape(left_out), tf.shape(base)[1:]], 0)
    without = tf.scatter_nd(tf.cast(tf.where(valid), tf.int32), without, shape)
    drops = tf.where(valid[:, :, tf.newaxis], whole[:, tf.newaxis, :] - without, tf.zeros_like(without))
    best = tf.argmax(base, axis=-1, output_type=tf.int32)
    last = tf.maximum(tf.shape(units)[1] - 1, 0)
    tokens = tf.where(valid, tf.gather(units, tf.minimum(left_out, last), batch_dims=1), tf.constant(""))
    outputs = {"tokens": tokens, "attributions": tf.gather(drops, best, axis=2, batch_dims=1),
               "lengths": weighed, "unweighed": units_in_text - weighed,
               "label": tf.gather(class_names, best), "score": tf.reduce_max(base, axis=-1)}
    if config.multi_label:
        classes = tf.tile(class_names[tf.newaxis], [batch, 1])
        outputs.update(classes=classes, labels=tf.where(base >= config.threshold, classes, tf.constant("")),
                       class_attributions=drops)
    return outputs
