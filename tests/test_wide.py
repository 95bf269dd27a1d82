"""The wide TF-IDF branch: the graph computes what training fitted, the blend, and a trained run (train/wide.py)."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from textclf import TrainConfig
from textclf.model.layers import Blend, TfidfLogits
from textclf.training.wide import (_blend_weights, _combined, _linear, at_most, bigram_keys, blended, fit_linear,
                                   tfidf_features)

from conftest import NEGATIVE, POSITIVE, make_rows, tiny_config, write_csv


def flat(rows):
    return np.array([value for row in rows for value in row], dtype=np.int32), np.array([len(row) for row in rows])


ROWS = [[2, 3, 2, 3, 4], [3, 4], [5], [2, 3], [6, 6, 6, 2]]  # Ids 1..7 of a vocabulary of 8.


def test_features_are_scikit_learns_sublinear_tfidf_of_the_ids_1_and_2_grams():
    values, lengths = flat(ROWS)
    keys = bigram_keys(values, lengths, 8)
    assert keys.tolist() == [2 * 8 + 3, 3 * 8 + 4]  # "2 3" in rows 0 and 3, "3 4" in rows 0 and 1; others once.
    features, idf = tfidf_features(values, lengths, 8, keys)
    # The same rows as words for scikit-learn, with its vocabulary fixed to the same 1- and 2-grams.
    documents = [" ".join(f"w{value}" for value in row) for row in ROWS]
    vocabulary = {f"w{index}": index for index in range(8)} | {"w2 w3": 8, "w3 w4": 9}
    expected = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary,
                               token_pattern=r"\S+").fit(documents)
    np.testing.assert_allclose(idf[1:], expected.idf_[1:], rtol=1e-6)
    np.testing.assert_allclose(features.toarray(), expected.transform(documents).toarray(), rtol=1e-6, atol=1e-9)


def test_the_unknown_id_is_no_feature():
    # Id 2 is the OOV id here: it gets idf 0, no 2-gram holds it, and the rows are normalised without it.
    values, lengths = flat(ROWS)
    keys = bigram_keys(values, lengths, 8, unknown=2)
    assert keys.tolist() == [3 * 8 + 4]  # "2 3" (rows 0 and 3) is left out; "3 4" stays.
    features, idf = tfidf_features(values, lengths, 8, keys, unknown=2)
    assert idf[2] == 0.0
    documents = [" ".join(f"w{value}" for value in row if value != 2) for row in ROWS]
    vocabulary = {f"w{index}": index for index in range(8)} | {"w3 w4": 8}
    expected = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary,
                               token_pattern=r"\S+").fit(documents)
    np.testing.assert_allclose(features.toarray(), expected.transform(documents).toarray(), rtol=1e-6, atol=1e-9)
    assert features[:, 2].nnz == 0
    # The graph layer, given the same keys and idf, leaves the id out too: same logits as the features'.
    kernel, bias = np.random.default_rng(0).normal(size=(9, 2)).astype(np.float32), np.zeros(2, np.float32)
    layer = TfidfLogits(8, len(keys), 2)
    layer.build((None, None))
    layer.set_weights([keys, idf, kernel, bias])
    ids = np.zeros((len(ROWS), 6), np.int32)
    for row, sequence in enumerate(ROWS):
        ids[row, : len(sequence)] = sequence
    np.testing.assert_allclose(np.asarray(layer(ids)), features @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_the_linear_part_weighs_classes_alike():
    # Features that say nothing, 30 rows of class 0 and 10 of class 1: balanced weights leave no prior towards
    # class 0 (bias 0, probability 0.5); an unweighted fit would give bias ln(10 / 30) = -1.0986.
    from scipy import sparse

    kernel, bias = _linear(sparse.csr_matrix((40, 3)), np.array([0] * 30 + [1] * 10), [0, 1], seed=0)
    np.testing.assert_allclose(bias, [0.0], atol=1e-4)
    assert kernel.shape == (3, 1) and not kernel.any()


def test_at_most_draws_whole_rows_and_keeps_every_class():
    values, lengths = flat(ROWS)
    targets = np.array([0, 0, 0, 0, 1])
    assert at_most(values, lengths, targets, seed=0, limit=5) == (values, lengths, targets)  # Not above the limit.
    for seed in range(20):
        kept_values, kept_lengths, kept_targets = at_most(values, lengths, targets, seed=seed, limit=2)
        kept_rows = np.split(kept_values, np.cumsum(kept_lengths)[:-1])
        # Each kept row is a whole source row with its own label, in source order, none twice.
        positions = [next(index for index, row in enumerate(ROWS) if row == kept.tolist()) for kept in kept_rows]
        assert positions == sorted(set(positions))
        assert kept_targets.tolist() == targets[positions].tolist()
        # The seed's two drawn rows, plus row 4 (the only row of class 1) where the draw missed it.
        drawn = np.random.default_rng(seed).choice(5, 2, replace=False).tolist()
        assert positions == sorted(set(drawn) | {4})


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_the_graph_layer_computes_the_fitted_linear_model(padding):
    values, lengths = flat(ROWS)
    keys = bigram_keys(values, lengths, 8)
    features, idf = tfidf_features(values, lengths, 8, keys)
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(10, 3)).astype(np.float32), np.array([0.5, -1.0, 0.0], np.float32)
    layer = TfidfLogits(8, len(keys), 3)
    layer.build((None, None))
    layer.set_weights([keys, idf, kernel, bias])
    ids = np.zeros((len(ROWS), 6), np.int32)
    for row, sequence in enumerate(ROWS):
        if padding == "post":
            ids[row, : len(sequence)] = sequence
        else:
            ids[row, 6 - len(sequence):] = sequence
    np.testing.assert_allclose(np.asarray(layer(ids)), features @ kernel + bias, rtol=1e-5, atol=1e-6)
    # No 2-grams at all, and a row of padding only (its logits are the bias).
    empty = TfidfLogits(8, 0, 3)
    empty.build((None, None))
    empty.set_weights([np.zeros(0, np.int64), idf[:8], kernel[:8], bias])
    unigrams, _ = tfidf_features(values, lengths, 8, np.zeros(0, np.int64), idf[:8])
    outputs = np.asarray(empty(np.vstack([ids, np.zeros((1, 6), np.int32)])))
    np.testing.assert_allclose(outputs[:-1], unigrams @ kernel[:8] + bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[-1], bias)


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
    from textclf import load, train

    result = train(binary_csv, tiny_config(wide="tfidf"), output=tmp_path / "wide", verbose=0)
    config = result.config
    assert config.wide == "tfidf" and config.wide_bigrams > 0
    run = load(result.run_dir)
    model = run.run.model
    assert [layer.name for layer in model.layers][-2:] == ["tfidf_logits", "blend"]
    # The exported linear part was refitted on every row, validation rows included: its 2-grams are all rows'.
    from textclf import load_dataset
    from textclf.training.rows import TokenizedRows

    data = load_dataset(binary_csv)
    every_row = TokenizedRows(run.run.tokenizer, data.texts, data.labels, config, ["fresh", "rotten"])
    keys = bigram_keys(*every_row.id_rows(), run.run.tokenizer.vocabulary_size)
    assert model.get_layer("tfidf_logits").get_weights()[0].tolist() == keys.tolist()
    assert config.wide_bigrams == len(keys)
    texts = ["good great film", "awful dull plot", ""]
    served = load(result.export_dir).predict(texts)
    in_python = run.predict(texts)
    assert [p.label for p in served] == [p.label for p in in_python]
    np.testing.assert_allclose([p.score for p in served], [p.score for p in in_python], atol=1e-5)


@pytest.mark.parametrize("data", ["binary_csv", "multiclass_csv"])
def test_the_validation_metrics_are_those_of_the_blend_with_the_training_rows_linear_part(data, request):
    # The blend's validation outputs are computed in NumPy when it is fitted; they must be what the Keras model
    # with the linear part fitted on the training rows alone (not the refitted one it ships) gives.
    from textclf.model.factory import class_probabilities, compiled_call
    from textclf.training.fit import fit_prepared, validation_metrics
    from textclf.training.prepare import prepare_in_memory

    prepared = prepare_in_memory(tiny_config(wide="tfidf"), request.getfixturevalue(data))
    fitted = fit_prepared(prepared.config, prepared, verbose=0)
    train_rows, valid_rows = prepared.parts(fitted.tokenizer, fitted.config)
    linear = fit_linear(fitted.tokenizer, prepared.classes, train_rows, valid_rows, fitted.config.seed)
    scales, bias = fitted.model.get_layer("blend").get_weights()
    assert fitted.model.get_layer("tfidf_logits").get_weights()[0].tolist() == linear.final.keys.tolist()
    validation_model, _ = _combined(fitted.model, fitted.config, fitted.tokenizer.vocabulary_size, prepared.classes,
                                     linear.first, scales, bias)
    call = compiled_call(validation_model)
    expected = np.concatenate([np.asarray(class_probabilities(call(ids))) for ids, _ in valid_rows.batches(1024)])
    assert fitted.validation_probabilities.shape == (len(valid_rows), len(prepared.classes))
    np.testing.assert_allclose(fitted.validation_probabilities, expected, atol=2e-6)
    _, metrics = validation_metrics(fitted, prepared.classes)
    truths = valid_rows.class_indices()
    assert metrics["accuracy"] == pytest.approx(np.mean(expected.argmax(axis=1) == truths))
    # The NumPy blend is the layer's rule: a binary head's sigmoid becomes [1 - p, p].
    np.testing.assert_allclose(blended(np.array([[0.25]]), np.array([[0.0]]), np.array([1.0, 0.0]), np.zeros(1)),
                               [[0.75, 0.25]], rtol=1e-6)
