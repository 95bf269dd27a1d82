"""The wide TF-IDF branch: the graph computes what training fitted, the choice by cross-validation, the blend, and a
trained run (training/wide.py)."""

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf import TrainConfig
from textclf.model import layers
from textclf.model.layers import Blend, NgramTfidfLogits
from textclf.text.ngrams import count_matrix
from textclf.training.blend import blend_weights as _blend_weights
from textclf.training.blend import blended, choose_blend, temperature
from textclf.training.linear_choice import FEATURE_SETS, cross_validate
from textclf.training.linear_choice import features_of as _features
from textclf.training.wide import LinearPart, subsample_rows

from conftest import NEGATIVE, POSITIVE, make_rows, tiny_config, write_csv


TEXTS = ["a good film", "good good plot", "dull plot", "a dull, dull film!", "Good acting", "awful"]


@pytest.mark.parametrize("fill", [0, 10**9], ids=["counted-by-unique", "counted-in-a-buffer"])
def test_the_graph_layer_computes_scikit_learns_tfidf_times_the_fitted_kernel(fill, monkeypatch):
    # The layer, given keys and idf of the n-grams in at least two rows, gives TfidfVectorizer(min_df=2)'s
    # features times the kernel, each analyzer normalised on its own as FeatureUnion does; whichever way the
    # (row, n-gram) entries are counted (BUFFER_FILL 0: tf.unique always; 10**9: the buffer always).
    from scipy import sparse

    monkeypatch.setattr(layers, "BUFFER_FILL", fill)
    from sklearn.pipeline import make_union

    analyzers = (("word", 1, 2), ("char_wb", 2, 5))
    matrices = {analyzer: count_matrix(TEXTS, analyzer) for analyzer in analyzers}
    features, kept = _features({a: m for a, (m, _) in matrices.items()}, analyzers, np.arange(len(TEXTS)))
    union = make_union(*(TfidfVectorizer(analyzer=kind, ngram_range=(low, high), sublinear_tf=True, min_df=2)
                         for kind, low, high in analyzers))
    expected = union.fit_transform(TEXTS)
    # Same values up to the order of columns: compare each row's sorted values, and the products with a kernel.
    assert features.shape == expected.shape == (6, features.shape[1]) and features.nnz == expected.nnz
    for row in range(len(TEXTS)):
        np.testing.assert_allclose(np.sort(features[row].data), np.sort(expected[row].data), rtol=1e-6)
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(features.shape[1], 3)).astype(np.float32), np.array([0.5, -1, 0], np.float32)
    part = LinearPart(analyzers, [matrices[a][1][columns] for a, (columns, _) in zip(analyzers, kept)],
                      [idf for _, idf in kept], kernel, bias)
    layer = NgramTfidfLogits(analyzers, [len(keys) for keys in part.keys], 3)
    layer.set_weights(part.weights())
    outputs = np.asarray(layer(tf.constant(TEXTS + ["", "zzz unseen"])))
    np.testing.assert_allclose(outputs[:6], sparse.csr_matrix(features) @ kernel + bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[6:], [bias, bias])  # No known n-gram: the bias alone.


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["good", "bad", "film", "plot", "ok", " ", " ", "\xa0", "!", "É"]),
                         max_size=12).map("".join), min_size=2, max_size=8), st.booleans())
def test_any_batch_gets_the_fitted_tfidf_times_the_kernel(texts, product):
    # The char_wb counts go through words (a sparse product of pair counts and word counts, or the pairs expanded
    # on a few short texts): the same values as the count matrix's TF-IDF the linear part was fitted on.
    minimum = layers.PRODUCT_MIN_NGRAMS
    layers.PRODUCT_MIN_NGRAMS = 0 if product else 10**9
    try:
        _check_layer_against_count_matrix(texts)
    finally:
        layers.PRODUCT_MIN_NGRAMS = minimum


def _check_layer_against_count_matrix(texts):
    from scipy import sparse

    analyzers = (("char_wb", 1, 3), ("word", 1, 2))
    matrices = {analyzer: count_matrix(texts, analyzer) for analyzer in analyzers}
    features, kept = _features({a: m for a, (m, _) in matrices.items()}, analyzers, np.arange(len(texts)))
    kernel = np.random.default_rng(len(texts)).normal(size=(features.shape[1], 2)).astype(np.float32)
    part = LinearPart(analyzers, [matrices[a][1][columns] for a, (columns, _) in zip(analyzers, kept)],
                      [idf for _, idf in kept], kernel, np.zeros(2, np.float32))
    layer = NgramTfidfLogits(analyzers, [len(keys) for keys in part.keys], 2)
    layer.set_weights(part.weights())
    np.testing.assert_allclose(np.asarray(layer(tf.constant(texts))), sparse.csr_matrix(features) @ kernel,
                               rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(1, 3)), max_size=60), st.booleans())
def test_entries_are_counted_alike_in_a_buffer_and_by_unique(pairs, in_buffer):
    # Each distinct index once, with the sum of its weights, whichever branch the fill chooses.
    from collections import Counter

    index = tf.constant([i for i, _ in pairs], tf.int64)
    weight = tf.constant([float(w) for _, w in pairs], tf.float32)
    fill = layers.BUFFER_FILL
    try:
        layers.BUFFER_FILL = 10**9 if in_buffer else 0
        entries, counts = layers._entry_counts(index, weight, tf.constant(30, tf.int64))
    finally:
        layers.BUFFER_FILL = fill
    expected = Counter()
    for i, w in pairs:
        expected[i] += w
    assert len(entries.numpy()) == len(counts.numpy()) == len(expected)
    assert dict(zip(entries.numpy().tolist(), counts.numpy().tolist())) == dict(expected)
    if in_buffer:  # The buffer gives them in order.
        assert entries.numpy().tolist() == sorted(expected)


def test_cross_validation_picks_the_features_that_separate_the_classes():
    # The label is carried by one character in the middle of a word: only character n-grams see it.
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("bcdfg"), 4)) for _ in range(60)]
    texts = [word[:2] + ("x" if index % 2 else "y") + word[2:] for index, word in enumerate(words)]
    targets = np.arange(60) % 2
    matrices = {analyzer: count_matrix(texts, analyzer)[0]
                for analyzer in {a for analyzers in FEATURE_SETS.values() for a in analyzers}}
    choice, out_of_fold, scores = cross_validate(matrices, targets, folds=5, seed=0)
    # The full grid, in GridSearchCV's order; character 1-grams hold "x" and "y".
    assert list(scores) == [f"{features}, C={c}, {weight}" for features in FEATURE_SETS for c in (4, 16)
                            for weight in ("unweighted", "balanced")]
    assert choice.features == "char_wb 1-3" and scores[choice.describe()] == max(scores.values()) > 0.98
    # The two-stage grid: every feature set at C=16, balanced; then C and weighting for the best.
    choice, out_of_fold, scores = cross_validate(matrices, targets, folds=5, seed=0, grid="two-stage")
    assert list(scores) == ["word 1-2, C=16, balanced", "word 1-2 + char_wb 2-5, C=16, balanced",
                            "char_wb 1-3, C=16, balanced", "char_wb 2-5, C=16, balanced", "char_wb 1-3, C=4, unweighted",
                            "char_wb 1-3, C=4, balanced", "char_wb 1-3, C=16, unweighted"]
    assert choice.features == "char_wb 1-3" and scores[
        f"char_wb 1-3, C={choice.C:g}, {choice.class_weight or 'unweighted'}"] == max(scores.values()) > 0.98
    # Words are all different: no word n-gram is in two rows, so the word-only choice predicts one class.
    assert scores["word 1-2, C=16, balanced"] == pytest.approx(1 / 3, abs=1e-4)
    assert out_of_fold.shape == (60, 1)
    assert np.mean((out_of_fold[:, 0] > 0) == targets) > 0.98


def test_the_full_grid_fits_in_float64_and_the_two_stage_grid_in_float32(monkeypatch):
    from textclf.training import linear_choice

    dtypes, fit = [], linear_choice.fit
    monkeypatch.setattr(linear_choice, "fit", lambda choice, features, *rest: (dtypes.append(features.dtype),
                                                                               fit(choice, features, *rest))[1])
    texts = [f"w{index % 7} x{index % 3} common" for index in range(30)]
    targets = np.arange(30) % 2
    matrices = {analyzer: count_matrix(texts, analyzer)[0]
                for analyzer in {a for analyzers in FEATURE_SETS.values() for a in analyzers}}
    cross_validate(matrices, targets, folds=3, seed=0)
    assert dtypes == [np.float64] * 16 * 3
    dtypes.clear()
    cross_validate(matrices, targets, folds=3, seed=0, grid="two-stage")
    assert dtypes == [np.float32] * 7 * 3


def test_the_subsample_keeps_every_class():
    targets = np.array([0, 0, 0, 0, 1])
    assert subsample_rows(5, targets, seed=0, limit=5).tolist() == [0, 1, 2, 3, 4]
    for seed in range(20):
        drawn = np.random.default_rng(seed).choice(5, 2, replace=False).tolist()
        assert subsample_rows(5, targets, seed=seed, limit=2).tolist() == sorted(set(drawn) | {4})


def test_the_blend_recovers_the_weights_that_made_the_labels():
    rng = np.random.default_rng(1)
    logits, wide = rng.normal(size=(20000, 1)), rng.normal(size=(20000, 1))
    truth = 0.5 * logits + 2.0 * wide  # Classes of equal size: the balanced likelihood is the plain one.
    targets = (rng.uniform(size=20000) < 1 / (1 + np.exp(-truth[:, 0]))).astype(np.int64)
    scales, bias = _blend_weights(1 / (1 + np.exp(-logits)), wide, targets)
    np.testing.assert_allclose(scales, [0.5, 2.0], atol=0.08)
    np.testing.assert_allclose(bias, [0.0], atol=0.06)
    # Three rows of class 0 to one of class 1, inputs that say nothing: the balanced fit leaves no prior (bias 0),
    # where the plain likelihood would give ln(1 / 3) = -1.0986.
    skewed = np.array([0, 0, 0, 1] * 500)
    _, skewed_bias = _blend_weights(np.full((2000, 1), 0.5), np.zeros((2000, 1)), skewed)
    np.testing.assert_allclose(skewed_bias, [0.0], atol=1e-4)
    # On 40 rows where the recurrent part says nothing, the blend stays where the prior holds it: the linear part
    # alone, whatever the wide logits' scale the rows would prefer.
    few_wide = rng.normal(size=(40, 1))
    few_targets = (few_wide[:, 0] > 0).astype(np.int64)
    few_scales, few_bias = _blend_weights(np.full((40, 1), 0.5), few_wide, few_targets)
    assert few_scales[0] == 0.0 and abs(few_bias[0]) < 0.1 and 1.0 < few_scales[1] < 4.0
    free = _blend_weights(np.full((20000, 1), 0.5), np.tile(few_wide, (500, 1)), np.tile(few_targets, 500))[0]
    assert free[1] > 2 * few_scales[1]  # 500 times the rows: the data, not the prior, sets the scale.
    # A part that predicts the labels backwards gets scale 0, not a negative one.
    scales_backwards, _ = _blend_weights(1 / (1 + np.exp(logits)), wide, targets)
    assert scales_backwards[0] == 0.0
    np.testing.assert_allclose(scales_backwards[1], 2.0, atol=0.15)
    layer = Blend(1)
    layer.build([(None, 1), (None, 1)])
    layer.set_weights([scales, np.array([-0.3], np.float32)])
    probabilities = np.array([[0.2], [0.9]], np.float32)
    expected = 1 / (1 + np.exp(-(scales[0] * np.log(probabilities / (1 - probabilities)) + scales[1] * 1.5 - 0.3)))
    np.testing.assert_allclose(np.asarray(layer([probabilities, np.full((2, 1), 1.5, np.float32)])), expected,
                               rtol=1e-5)


def test_a_recurrent_part_far_behind_the_linear_one_is_left_out_of_the_blend():
    targets = np.array([0, 1, 2] * 40)
    wide = np.eye(3)[targets] * 3.0  # The linear part is right on every row.
    guessing = np.full((120, 3), 1 / 3)
    guessing[:, 0] += 0.01  # The recurrent part says class 0 every time: macro-F1 1/6 against 1.
    scales, bias, parts = choose_blend(guessing / guessing.sum(1, keepdims=True), wide, targets)
    assert scales.tolist() == [0.0, 1.0] and bias.tolist() == [0.0, 0.0, 0.0]
    assert parts == {"recurrent": pytest.approx(1 / 6), "tfidf": 1.0, "blend": 1.0}
    # Within MAX_RECURRENT_SHORTFALL of it, the blend is fitted, and kept where it scores higher: the linear part
    # says nothing on the last 20 rows (argmax class 0), the recurrent part is right on every row.
    right = np.eye(3)[targets] * 0.8 + 0.1
    unsure = wide.copy()
    unsure[100:] = 0.0
    scales, _, parts = choose_blend(right, unsure, targets)
    # Class 0 takes the 14 rows of classes 1 and 2 among them: F1 80/94, and 66/73 for each of the others.
    linear_alone = (80 / 94 + 2 * 66 / 73) / 3
    assert parts == {"recurrent": 1.0, "tfidf": pytest.approx(linear_alone), "blend": 1.0} and scales[0] > 0
    # 12 rows, the linear part confidently wrong on 6, the recurrent part right on all: the prior (10 rows' worth)
    # holds the blend near the linear part, which it does not beat, and the recurrent part never stands alone.
    few = targets[:12]
    half = np.eye(3)[few] * 3.0
    half[6:] = np.eye(3)[(few[6:] + 1) % 3] * 3.0
    scales, bias, parts = choose_blend(right[:12], half, few)
    assert scales.tolist() == [0.0, 1.0] and bias.tolist() == [0.0] * 3
    assert parts == {"recurrent": 1.0, "tfidf": 0.5, "blend": 0.5}
    # A blend no better than the linear part alone (both right everywhere) leaves the recurrent part out.
    scales, bias, parts = choose_blend(right, wide, targets)
    assert scales.tolist() == [0.0, 1.0] and bias.tolist() == [0.0] * 3
    assert parts == {"recurrent": 1.0, "tfidf": 1.0, "blend": 1.0}
    # Left out, the linear part keeps its calibrating temperature.
    scales, _, _ = choose_blend(guessing / guessing.sum(1, keepdims=True), wide, targets, scale=2.5)
    assert scales.tolist() == [0.0, 2.5]


def test_the_temperature_is_the_factor_that_made_the_labels():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(20000, 1))
    targets = (rng.uniform(size=20000) < 1 / (1 + np.exp(-3.0 * logits[:, 0]))).astype(np.int64)
    assert temperature(logits, targets) == pytest.approx(3.0, rel=0.05)
    many = rng.normal(size=(20000, 4))
    drawn = np.array([rng.choice(4, p=np.exp(0.5 * row) / np.exp(0.5 * row).sum()) for row in many])
    assert temperature(many, drawn) == pytest.approx(0.5, rel=0.05)
    assert temperature(np.zeros((0, 3)), np.zeros(0, np.int64)) == 1.0
    # Every row right: the loss falls as t grows; the prior (10 rows' worth against 20) holds t at the t where
    # t e^-t / (1 + e^-t) = log t, not at the bound, so served probabilities stay short of 1.
    separated = np.array([[-1.0], [1.0]] * 10)
    t = temperature(separated, np.array([0, 1] * 10))
    assert t == pytest.approx(1.3208, abs=1e-3) and abs(t * np.exp(-t) / (1 + np.exp(-t)) - np.log(t)) < 1e-3
    # The blend's prior is the calibrated linear part: rows where the recurrent part says nothing leave it there.
    few = rng.normal(size=(30, 1))
    few_targets = (few[:, 0] > 0).astype(np.int64)
    scales, _ = _blend_weights(np.full((30, 1), 0.5), few, few_targets, scale=40.0)
    assert scales[0] == 0.0 and 30.0 < scales[1] < 45.0


def test_wide_is_refused_for_multi_label_and_auto_resolves_where_it_applies(tmp_path, capsys):
    from textclf.training.prepare import prepare_in_memory, prepare_streamed

    with pytest.raises(ValueError, match=r"`wide` applies to single-label tasks only. Received: wide='tfidf' with "
                                         r"multi_label=True"):
        TrainConfig(wide="tfidf", multi_label=True)
    path = write_csv(tmp_path / "reviews.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 40, seed=1))
    assert prepare_in_memory(TrainConfig(wide="auto"), path).config.wide == "tfidf"
    assert prepare_in_memory(TrainConfig(wide="auto", multi_label=True), path).config.wide == "none"
    assert prepare_in_memory(TrainConfig(wide="none"), path).config.wide == "none"
    assert prepare_streamed(TrainConfig(wide="auto", split_mode="word"), path).config.wide == "none"
    capsys.readouterr()
    assert prepare_streamed(TrainConfig(wide="tfidf", split_mode="word"), path).config.wide == "none"
    assert "this run streams, so it trains without it" in capsys.readouterr().err


def test_a_wide_run_saves_and_serves_the_branch(binary_csv, tmp_path):
    import json

    from textclf import load, load_dataset, train

    result = train(binary_csv, tiny_config(wide="tfidf"), output=tmp_path / "wide", verbose=0)
    assert result.config.wide == "tfidf"
    run = load(result.run_dir)
    model = run.run.model
    assert [layer.name for layer in model.layers][-2:] == ["ngram_tfidf", "blend"]
    # The choice and how it was made are in run.json; the exported part was refitted on every row.
    chosen = json.loads((result.run_dir / "run.json").read_text())["wide"]
    assert chosen["method"] == "5-fold cross-validated macro-F1 on 80 rows, full grid"
    assert len(chosen["scores"]) == 16
    best = max(chosen["scores"].values())
    name = f"{chosen['features']}, C={chosen['C']:g}, {'unweighted' if chosen['class_weight'] == 'none' else 'balanced'}"
    assert chosen["scores"][name] == best
    analyzers = FEATURE_SETS[chosen["features"]]
    assert model.get_layer("ngram_tfidf").analyzers == [tuple(a) for a in analyzers]
    data = load_dataset(binary_csv)
    keys = count_matrix(data.texts, analyzers[0])[1]
    counts, _ = count_matrix(data.texts, analyzers[0])
    in_two = keys[np.bincount(counts.indices, minlength=len(keys)) >= 2]
    assert model.get_layer("ngram_tfidf").get_weights()[0].tolist() == in_two.tolist()
    texts = ["good great film", "awful dull plot", ""]
    served = load(result.export_dir).predict(texts)
    in_python = run.predict(texts)
    assert [p.label for p in served] == [p.label for p in in_python]
    np.testing.assert_allclose([p.score for p in served], [p.score for p in in_python], atol=1e-5)


@pytest.mark.parametrize("data", ["binary_csv", "multiclass_csv"])
def test_the_validation_metrics_are_those_of_the_blend_of_out_of_fold_logits(data, request):
    # The blend's validation outputs are computed in NumPy when it is fitted, from the validation rows'
    # out-of-fold linear logits (no fold model saw its row) and the recurrent head's outputs.
    import textclf.training.fit as fit_module
    from textclf.model.factory import class_probabilities, compiled_call
    from textclf.training.fit import fit_prepared, validation_metrics
    from textclf.training.prepare import prepare_in_memory

    seen = {}
    original = fit_module.fit_wide

    def spy(model, config, tokenizer, classes, valid_rows, linear):
        seen["recurrent"] = np.concatenate([np.asarray(compiled_call(model)(ids)) for ids, _ in
                                            valid_rows.batches(1024)])
        seen["logits"] = linear.valid_logits
        return original(model, config, tokenizer, classes, valid_rows, linear)

    prepared = prepare_in_memory(tiny_config(wide="tfidf"), request.getfixturevalue(data))
    try:
        fit_module.fit_wide = spy
        fitted = fit_prepared(prepared.config, prepared, verbose=0)
    finally:
        fit_module.fit_wide = original
    scales, bias = fitted.model.get_layer("blend").get_weights()
    layer = Blend(bias.shape[0])
    layer.set_weights([scales, bias])
    expected = np.asarray(class_probabilities(layer([seen["recurrent"], seen["logits"]])))
    np.testing.assert_allclose(fitted.validation_probabilities, expected, atol=2e-6)
    _, metrics = validation_metrics(fitted, prepared.classes)
    truths = fitted.valid_rows.class_indices()
    assert metrics["accuracy"] == pytest.approx(np.mean(expected.argmax(axis=1) == truths))
    # The NumPy blend is the layer's rule: a binary head's sigmoid becomes [1 - p, p].
    np.testing.assert_allclose(blended(np.array([[0.25]]), np.array([[0.0]]), np.array([1.0, 0.0]), np.zeros(1)),
                               [[0.75, 0.25]], rtol=1e-6)


def test_a_row_set_within_a_counted_one_is_sliced_from_it_with_the_same_features():
    from textclf.training.wide import NgramCounts

    texts = TEXTS * 2 + ["good plot twist", "dull acting"]
    analyzer = ("char_wb", 2, 5)
    counts = NgramCounts(texts)
    every, keys = counts(analyzer, np.arange(len(texts)))
    some = np.array([0, 2, 5, 7, 12])
    sliced, sliced_keys = counts(analyzer, some)
    direct, direct_keys = NgramCounts(texts)(analyzer, some)
    assert sliced_keys is keys and sliced.shape == (5, len(keys))  # Sliced: every column of the larger set.
    used = np.flatnonzero(np.asarray(sliced.sum(axis=0)).ravel())
    assert keys[used].tolist() == direct_keys.tolist()
    assert (sliced[:, used] != direct).nnz == 0
    # The fitted features are the same either way: columns with no count are dropped by min_df.
    np.testing.assert_array_equal(_features({analyzer: sliced}, (analyzer,), np.arange(5))[0].toarray(),
                                  _features({analyzer: direct}, (analyzer,), np.arange(5))[0].toarray())


class _Rows:
    """The part of :class:`textclf.training.rows.TokenizedRows` the linear fits read."""

    def __init__(self, texts, targets):
        self.texts, self.targets = texts, np.asarray(targets)

    def __len__(self):
        return len(self.texts)

    def __len__(self):
        return len(self.texts)

    def class_indices(self):
        return self.targets


def _noisy_rows():
    """``(texts, labels)``: 150 noisy 3-class rows.  Each text has 2 of its class's 12 words among 4 words any
    class uses, a word reversed now and then; 30% of the labels are random.  The grid's choices score differently."""
    rng = np.random.default_rng(4)
    shared = [f"w{index}" for index in range(30)]
    own = {label: [f"{label}{index}x" for index in range(12)] for label in ("ab", "cd", "ef")}
    labels = [str(label) for label in rng.choice(list(own), 150)]
    texts = []
    for label in labels:
        words = [*rng.choice(own[label], 2), *rng.choice(shared, 4)]
        if rng.random() < 0.3:
            words[0] = words[0][::-1]
        texts.append(" ".join(rng.permutation(words)))
    return texts, [label if rng.random() > 0.3 else str(rng.choice(list(own))) for label in labels]


def _fit_linear_as_train_does(texts, labels):
    """``(fits, classes, train, valid)``: the wide branch's linear fits on ``texts`` with validation rows held out as
    ``textclf train`` holds them out."""
    from textclf.data.dataset import stratified_split
    from textclf.training.wide import fit_linear

    classes = sorted(set(labels))
    targets = np.array([classes.index(label) for label in labels])
    train, valid = stratified_split(labels, 0.2, seed=0)
    fits = fit_linear(classes, _Rows([texts[row] for row in train], targets[train]),
                      _Rows([texts[row] for row in valid], targets[valid]), seed=0,
                      positions=np.concatenate([train, valid]))
    return fits, classes, train, valid


def test_where_the_full_search_is_affordable_the_linear_part_is_the_strongest_baseline():
    from textclf.evaluation.baseline import strongest_search
    from textclf.training.wide import _part_logits

    texts, labels = _noisy_rows()
    fits, _, _, _ = _fit_linear_as_train_does(texts, labels)
    searched = strongest_search(seed=0).fit(texts, labels)
    # The same 16 mean macro-F1s (GridSearchCV's folds on the same rows in the file's order), the same choice.
    means = searched.cv_results_["mean_test_score"]
    assert fits.report["method"] == "5-fold cross-validated macro-F1 on 150 rows, full grid"
    assert list(fits.report["scores"].values()) == [round(float(mean), 4) for mean in means]
    assert len(set(fits.report["scores"].values())) > 4  # The choices do differ.
    # The grid's order is features (slowest), C, class weighting: 4 points per feature set.
    best = searched.best_params_
    assert (fits.report["features"], fits.report["C"], fits.report["class_weight"]) == (
        list(FEATURE_SETS)[searched.best_index_ // 4], best["linear__C"], best["linear__class_weight"] or "none")
    # The refitted part gives the baseline's decision values on new text.
    new = ["ab1x w3 w7 cd2x", "x1fe w2", "entirely unseen words"]
    expected = searched.best_estimator_.decision_function(new)
    np.testing.assert_allclose(_part_logits(fits.final, new), expected.reshape(len(new), -1), atol=1e-4)


def test_a_holdout_on_drawn_training_rows_calibrates_on_the_refit_of_the_training_rows(monkeypatch):
    from textclf.training import linear_choice
    from textclf.training.blend import temperature
    from textclf.training.wide import _fit_part, _part_logits, NgramCounts

    texts, labels = _noisy_rows()
    # A budget below any cross-validation: the holdout, its training rows drawn at random.
    monkeypatch.setattr(linear_choice, "CV_MAX_COST", 1_000)
    monkeypatch.setattr(linear_choice, "SEARCH_MAX_COST", 200_000)
    fits, classes, train, valid = _fit_linear_as_train_does(texts, labels)
    method = fits.report["method"]
    assert method.startswith("macro-F1 on the 30 validation rows, fitted on ")
    assert "two-stage grid; 2-fold cross-validation would cost" in method
    assert len(fits.report["scores"]) == 7  # The two-stage grid.
    # The validation rows' logits come from the choice refitted on the 120 training rows, and calibrate the part.
    ordered = [texts[row] for row in train] + [texts[row] for row in valid]
    targets = np.array([classes.index(labels[row]) for row in [*train, *valid]])
    choice = linear_choice.Choice(fits.report["features"], fits.report["C"],
                                  None if fits.report["class_weight"] == "none" else "balanced")
    part = _fit_part(NgramCounts(ordered), np.arange(120), targets, choice, seed=0)
    expected = _part_logits(part, ordered[120:])
    np.testing.assert_allclose(fits.valid_logits, expected, atol=1e-5)
    assert fits.temperature == pytest.approx(temperature(expected, targets[120:]), rel=1e-5)


@pytest.mark.slow
def test_a_trained_runs_choice_is_grid_search_cvs_on_the_same_file(tmp_path):
    # End to end: `train` holds out its validation rows, yet the branch's cross-validation sees the file's rows in
    # the file's order, so run.json's 16 scores are GridSearchCV's on the whole file.
    from textclf import train
    from textclf.evaluation.baseline import strongest_search

    texts, labels = _noisy_rows()
    data = write_csv(tmp_path / "noisy.csv", list(zip(texts, labels)))
    result = train(data, tiny_config(wide="tfidf", epochs=1), output=tmp_path / "out", verbose=0)
    chosen = json.loads((result.run_dir / "run.json").read_text())["wide"]
    means = strongest_search(seed=0).fit(texts, labels).cv_results_["mean_test_score"]
    assert list(chosen["scores"].values()) == [round(float(mean), 4) for mean in means]


def test_the_validation_logits_come_before_the_refit_on_every_row_and_errors_reach_both_waits(monkeypatch):
    from textclf.errors import TextclfError
    from textclf.training import wide

    texts, labels = _noisy_rows()
    refits, seen = [], []
    fit_part = wide._fit_part
    monkeypatch.setattr(wide, "_fit_part", lambda *args, **kwargs: refits.append(1) or fit_part(*args, **kwargs))
    original = wide.fit_linear
    monkeypatch.setattr(wide, "fit_linear", lambda *args, on_validation=None, **kwargs: original(
        *args, on_validation=lambda logits, scale: seen.append(len(refits)) or on_validation(logits, scale), **kwargs))
    classes = sorted(set(labels))
    targets = np.array([classes.index(label) for label in labels])
    background = wide.LinearFitsInBackground(classes, _Rows(texts[:120], targets[:120]),
                                             _Rows(texts[120:], targets[120:]), seed=0)
    valid_logits, scale = background.validation()
    fits = background.result()
    # Cross-validated on every row: the validation logits are the search's, known before the one refit.
    assert (seen, len(refits)) == ([0], 1)
    assert valid_logits is fits.valid_logits and scale == fits.temperature
    failing = wide.LinearFitsInBackground([*classes, "never seen"], _Rows(texts[:120], targets[:120]),
                                          _Rows(texts[120:], targets[120:]), seed=0)
    for wait in (failing.validation, failing.result):
        with pytest.raises(TextclfError, match="`wide` needs rows of every class; the training rows hold 3 of 4"):
            wait()


def test_the_linear_fits_run_with_one_blas_thread_and_restore_the_setting(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from textclf.training import linear_choice, wide

    seen = []

    def recording(original):
        def fit(*args, **kwargs):
            seen.append({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})
            return original(*args, **kwargs)
        return fit

    monkeypatch.setattr(linear_choice, "fit", recording(linear_choice.fit))  # The search's fits.
    monkeypatch.setattr(wide, "fit", recording(wide.fit))  # The final refit.
    texts, labels = _noisy_rows()
    with threadpool_limits(2, user_api="blas"):
        _fit_linear_as_train_does(texts, labels)
        after = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
    assert len(seen) == 16 * 5 + 1 and all(threads == {1} for threads in seen)  # The full grid in 5 folds, the refit.
    assert after == {2}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_the_fits_beside_the_epochs_run_nicer_than_the_training_thread(monkeypatch):
    # Every fit (the search's threads and the refit's) runs FIT_NICENESS nicer than the main thread, which keeps
    # its own priority: where they compete for a core, the epochs go first.
    import os
    import threading

    from textclf.training import fit_threads, linear_choice, wide

    seen = []

    def recording(original):
        def fit(*args, **kwargs):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return original(*args, **kwargs)
        return fit

    monkeypatch.setattr(linear_choice, "fit", recording(linear_choice.fit))
    monkeypatch.setattr(wide, "fit", recording(wide.fit))
    texts, labels = _noisy_rows()
    classes = sorted(set(labels))
    targets = np.array([classes.index(label) for label in labels])
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if main >= 19:
        pytest.skip("the tests run at the lowest priority already")
    background = wide.LinearFitsInBackground(classes, _Rows(texts[:120], targets[:120]),
                                             _Rows(texts[120:], targets[120:]), seed=0)
    background.result()
    assert len(seen) == 16 * 5 + 1
    assert set(seen) == {min(19, main + fit_threads.FIT_NICENESS)}
    # A search called from the training thread itself (not the background thread) still runs its fits nicer.
    seen.clear()
    _fit_linear_as_train_does(texts, labels)
    assert len(seen) == 16 * 5 + 1 and set(seen[:-1]) == {min(19, main + fit_threads.FIT_NICENESS)}
    assert seen[-1] == main  # The refit in the calling thread, whose priority is left alone.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_tensorflows_threads_keep_the_training_threads_priority():
    # The nicer fits' thread must not be the one that starts TensorFlow's runtime: its worker threads (which run
    # the epochs' ops) would inherit its nice value.  A fresh process, the Python API, no op run before the fits
    # (a helper thread TensorFlow starts later, tf_graph_runner, takes the nice value of the thread that needs it).
    import subprocess

    done = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    workers = done.stdout.split()
    assert len(workers) >= 2  # TensorFlow's compute threads are there to look at.
    assert set(workers) == {"0"}


THREADS_SCRIPT = """
import os
import numpy as np
from textclf.training.wide import LinearFitsInBackground

class Rows:
    def __init__(self, texts, targets):
        self.texts, self.targets = texts, np.asarray(targets)
    def __len__(self):
        return len(self.texts)

    def class_indices(self):
        return self.targets

texts = [f"w{i % 7} x{i % 3} film {i}" for i in range(60)]
targets = [i % 2 for i in range(60)]
LinearFitsInBackground(["a", "b"], Rows(texts[:48], targets[:48]), Rows(texts[48:], targets[48:]), 0).result()
for task in os.listdir("/proc/self/task"):  # The nice value (stat's 19th field) of TensorFlow's compute threads.
    with open(f"/proc/self/task/{task}/stat") as handle:
        name, fields = handle.read().split("(", 1)[1].rsplit(")", 1)
    if name.startswith("tf_Compute"):
        print(fields.split()[16])
"""


def test_the_wide_branch_is_placed_on_the_cpu():
    # Its string ops have no GPU kernels, and on a GPU its sparse products would refuse the deterministic ops that
    # seed_everything turns on: every op the layer adds to a graph asks for the CPU.
    layer = NgramTfidfLogits((("char_wb", 1, 3), ("word", 1, 2)), [3, 2], 2)
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None], tf.string))
    # Not the input, the output's Identity, or the variables' reads (placed with their variables).
    layer_ops = [op for op in traced.graph.get_operations()
                 if op.type not in ("Placeholder", "NoOp", "ReadVariableOp") and op.name != "Identity"]
    assert len(layer_ops) > 50
    assert {op.device for op in layer_ops} == {"/device:CPU:0"}
