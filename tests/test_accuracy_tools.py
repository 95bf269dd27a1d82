"""Pooling layers, pretrained vectors, class weights, the baseline, the estimator and explanations."""

import gzip
import json
import os

import numpy as np
import pytest

from textclf import Tokenizer, TrainConfig, build_model, load, load_dataset
from textclf.cli import main
from textclf.evaluation.baseline import held_out_split, strongest_search
from textclf.evaluation.metrics import classification_metrics
from textclf.model.embeddings import load_embeddings
from textclf.serve.explain import explain, html_page, terminal_line
from textclf.model.layers import AttentionPooling, MaskedMaxPooling

from conftest import NEGATIVE, POSITIVE, make_rows


def test_masked_max_pooling_ignores_padding():
    values = np.array([[[-1.0, -2.0], [-3.0, -0.5], [9.0, 9.0]]], dtype="float32")
    mask = np.array([[True, True, False]])
    assert np.asarray(MaskedMaxPooling()(values, mask=mask)).tolist() == [[-1.0, -0.5]]


def test_attention_pooling_gives_masked_steps_no_weight():
    layer = AttentionPooling(units=3)
    values = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    layer.build(values.shape)
    weights = np.asarray(layer.attention_weights(values, mask))
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert weights[0, 2:].tolist() == [0.0, 0.0]
    pooled = np.asarray(layer(values, mask=mask))
    np.testing.assert_allclose(pooled[0], (weights[0, :2, None] * values[0, :2]).sum(axis=0), rtol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention", "max_mean"])
def test_every_pooling_ignores_extra_padding(pooling):
    config = TrainConfig(arch="bigru", units=4, embedding_dim=3, pooling=pooling, num_layers=2, spatial_dropout_rate=0.1)
    model = build_model(config, vocabulary_size=10, num_classes=3)
    short = np.asarray(model(np.array([[5, 6, 7]], dtype="int32")))
    padded = np.asarray(model(np.array([[5, 6, 7, 0, 0]], dtype="int32")))
    np.testing.assert_allclose(short, padded, rtol=1e-5)
    # The residual joins sequence outputs; with "last" the top layer returns one vector.
    assert any(layer.name == "residual_2" for layer in model.layers) == (pooling != "last")


def write_vectors(path, lines, header=None, compress=False):
    text = ((header + "\n") if header else "") + "\n".join(lines) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_vectors_are_mapped_onto_the_vocabulary(tmp_path, compress):
    tokenizer = Tokenizer(oov_token="[UNK]")
    tokenizer.fit_on_texts(["good good film", "bad Film"])  # [UNK]=1 good=2 film=3 bad=4
    path = write_vectors(tmp_path / ("v.vec.gz" if compress else "v.vec"),
                         ["good 1 2 3", "FILM 4 5 6", "film 7 8 9", "unused 0 0 1"], header="4 3", compress=compress)
    vectors = load_embeddings(path, tokenizer, tokenizer.vocabulary_size, dimension=3)
    assert (vectors.found, vectors.total) == (2, 4)  # good, film (exact form wins over FILM); not [UNK], bad.
    assert vectors.matrix[0].tolist() == [0.0, 0.0, 0.0]
    assert vectors.matrix[2].tolist() == [1.0, 2.0, 3.0]
    assert vectors.matrix[3].tolist() == [7.0, 8.0, 9.0]
    assert vectors.matrix.shape == (5, 3)


@pytest.mark.parametrize("lines, header, message", [
    (["good 1 2"], None, "holds vectors of dimension 2, but embedding_dim is 3; pass --embedding-dim 2"),
    (["good 1 2 3"], "1 5", "holds vectors of dimension 5, but embedding_dim is 3"),
    (["good 1 2 3", "film 1 2 3", "bad 1 2"], None, "line 3: expected 3 numbers after the word, found 2"),
    (["good 1 2 3", "film 1 x 3"], None, "line 2: the numbers after 'film' are not all numbers"),
])
def test_bad_vector_files_name_the_problem(tmp_path, lines, header, message):
    tokenizer = Tokenizer(oov_token="[UNK]")
    tokenizer.fit_on_texts(["good film bad"])
    path = write_vectors(tmp_path / "v.txt", lines, header)
    with pytest.raises(ValueError) as error:
        load_embeddings(path, tokenizer, tokenizer.vocabulary_size, dimension=3)
    assert message in str(error.value)


@pytest.mark.slow
def test_training_with_frozen_vectors_reports_coverage(binary_csv, tmp_path, capsys):
    words = POSITIVE + NEGATIVE
    path = write_vectors(tmp_path / "glove.txt", [f"{word} " + " ".join(["0.5" if word in POSITIVE else "-0.5"] * 4)
                                                 for word in words])
    status = main([str(a) for a in ["train", binary_csv, "--output", tmp_path / "vec", "--embeddings", path,
                                    "--embedding-dim", "4", "--freeze-embeddings", "--epochs", "1", "--units", "4"]])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "vectors for 12 of 21 vocabulary words (57.1% coverage), frozen" in err
    run_dir = tmp_path / "vec" / "runs" / os.listdir(tmp_path / "vec" / "runs")[0]
    embedding = load(run_dir).run.model.get_layer("embedding")
    assert not embedding.trainable
    tokenizer = load(run_dir).run.tokenizer
    assert np.asarray(embedding.embeddings)[tokenizer.word_index["great"]].tolist() == [0.5] * 4


def test_embedding_dimension_mismatch_exits_2(binary_csv, tmp_path, capsys):
    path = write_vectors(tmp_path / "glove.txt", ["good 1 2"])
    status = main([str(a) for a in ["train", binary_csv, "--output", tmp_path / "x", "--embeddings", path]])
    assert status == 2
    assert "holds vectors of dimension 2, but embedding_dim is 128; pass --embedding-dim 2" in capsys.readouterr().err


def test_unknown_class_weight_value_is_refused():
    with pytest.raises(ValueError, match=r"`class_weight` must be one of none, balanced. Received: class_weight='heavy'"):
        TrainConfig(class_weight="heavy")


@pytest.mark.slow
def test_baseline_scores_both_models_on_rows_neither_trained_on(binary_csv, tmp_path, capsys):
    rest, test_rows = held_out_split(load_dataset(binary_csv), 0.2, 42)
    status = main([str(a) for a in ["baseline", binary_csv, "--output", tmp_path / "b", "--epochs", "2",
                                    "--units", "4", "--class-weight", "balanced", "--lr-schedule", "plateau"]])
    out = capsys.readouterr().out
    assert status == 0
    # 80 rows (40 per class): 16 held out for testing; of the other 64, textclf early-stops on 12 (6 per class).
    assert "all trained on 64 rows (textclf early-stopping on 12 of them), all tested on 16 held-out rows" in out
    lines = out.splitlines()
    assert "| model | accuracy | macro-F1 |" in lines
    assert any(line.startswith("| textclf (bilstm, pooling=") for line in lines)
    run_dir = tmp_path / "b" / "runs" / os.listdir(tmp_path / "b" / "runs")[0]
    assert json.loads((run_dir / "run.json").read_text())["train_rows"] == 64 - 12
    compared = json.loads((run_dir / "baseline.json").read_text())
    assert list(compared) == ["textclf (bilstm, pooling=max)", "TF-IDF + LogReg", "TF-IDF + LogReg, CV-chosen"]
    # The strongest baseline is GridSearchCV's choice, refitted on the 64 rows and scored on the 16.
    search = strongest_search(seed=42).fit(rest.texts, rest.labels)
    best = compared["TF-IDF + LogReg, CV-chosen"]
    assert best["macro_f1"] == classification_metrics(test_rows.labels, search.predict(test_rows.texts).tolist(),
                                                      ["fresh", "rotten"])["macro_f1"]
    assert (best["chosen"]["C"], best["chosen"]["class_weight"]) == (search.best_params_["linear__C"],
                                                                     search.best_params_["linear__class_weight"])
    assert f"TF-IDF + LogReg, CV-chosen: {best['chosen']['features']}, C=" in out
    # The flags reached the textclf run: its settings, and the plateau schedule's learning-rate history.
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["class_weight"], config["lr_schedule"], config["epochs"], config["units"]) == (
        "balanced", "plateau", 2, 4)
    history = json.loads((run_dir / "history.json").read_text())
    assert history["learning_rate"][0] == pytest.approx(2e-3)
    # The textclf row is the export's predictions on the 16 test rows, not the run's validation metrics.
    test = held_out_split(load_dataset(binary_csv), 0.2, 42)[1]
    predicted = [prediction.label for prediction in load(tmp_path / "b").predict(test.texts)]
    expected = classification_metrics(test.labels, predicted, ["fresh", "rotten"])
    assert compared["textclf (bilstm, pooling=max)"] == {key: expected[key] for key in ("accuracy", "macro_f1")}


@pytest.mark.slow
def test_estimator_works_with_clone_cross_validation_and_grid_search():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

    from textclf.estimator import TextClassifier

    rows = make_rows({1: POSITIVE, 0: NEGATIVE}, 48, seed=9)
    texts, labels = [text for text, _ in rows], np.array([label for _, label in rows])
    estimator = TextClassifier(epochs=3, units=4, embedding_dim=4, max_len=6, learning_rate=0.03, batch_size=8)
    assert estimator.get_params()["units"] == 4 and estimator.get_params()["arch"] == "bilstm"
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator
    with pytest.raises(NotFittedError, match="This TextClassifier instance is not fitted yet"):
        estimator.predict(["good film"])
    scores = cross_val_score(estimator, texts, labels, cv=2)
    # The same folds fitted and scored by hand: cross_val_score really fits a clone per fold (training is seeded).
    folds = list(StratifiedKFold(2).split(texts, labels))
    by_hand = {units: [clone(estimator).set_params(units=units).fit([texts[i] for i in train], labels[train])
                       .score([texts[i] for i in test], labels[test]) for train, test in folds] for units in (2, 4)}
    assert scores.tolist() == by_hand[4]
    search = GridSearchCV(estimator, {"units": [2, 4]}, cv=2).fit(texts, labels)
    assert search.cv_results_["mean_test_score"].tolist() == [np.mean(by_hand[2]), np.mean(by_hand[4])]
    assert search.best_params_ == {"units": max((2, 4), key=lambda units: np.mean(by_hand[units]))}
    fitted = clone(estimator).set_params(epochs=6).fit(texts, labels)
    assert fitted.classes_.tolist() == [0, 1]
    assert fitted.predict(["great superb lovely film"]).tolist() == [1]
    assert fitted.predict_proba(["awful dull film"]).shape == (1, 2)
    assert fitted.score(texts, labels) > 0.8


def test_explanation_gives_the_deciding_word_the_largest_weight(binary_result, tmp_path, capsys):
    classifier = load(binary_result.export_dir.parent)
    explanation = explain(classifier, "The movie was a story and the plot was brilliant")
    assert explanation.label == "fresh"
    # The tiny model keeps 8 tokens and truncates "pre" (the default): the explanation weighs the last 8.
    assert explanation.tokens == ["was", "a", "story", "and", "the", "plot", "was", "brilliant"]
    assert explanation.tokens[int(np.argmax(explanation.weights))] == "brilliant"
    assert len(explanation.weights) == len(explanation.tokens) == 8  # max_len of the tiny model
    assert "\033[48;5;" in terminal_line(explanation)
    assert "brilliant</span>" in html_page(explanation)

    empty = explain(classifier, "")
    assert (empty.tokens, empty.weights) == ([], [])
    assert "no tokens to weigh" in terminal_line(empty)

    page = tmp_path / "why.html"
    status = main(["explain", str(binary_result.export_dir.parent), "awful, dull plot!", "--html", str(page)])
    out = capsys.readouterr().out
    assert status == 0 and page.read_text().startswith("<!DOCTYPE html>")
    assert out.startswith("rotten (")


def test_explanation_weighs_the_tokens_the_model_keeps_for_either_truncation():
    from textclf.serve.explain import explain

    class Scorer:
        """Stands in for a loaded export that keeps 3 words: P(fresh) is the share of "good" among them."""

        classes = ["rotten", "fresh"]

        def __init__(self, truncating):
            self.truncating = truncating
            self.metadata = {"config": TrainConfig(max_len=3, truncating=truncating).to_dict()}

        def probabilities(self, texts):
            kept = [text.split()[-3:] if self.truncating == "pre" else text.split()[:3] for text in texts]
            shares = [words.count("good") / max(len(words), 1) for words in kept]
            return np.array([[1 - share, share] for share in shares])

    text = "good plot dull actors and good music"
    assert explain(Scorer("post"), text).tokens == ["good", "plot", "dull"]
    kept_end = explain(Scorer("pre"), text)
    assert kept_end.tokens == ["and", "good", "music"]
    # Without "and" or "music" half the kept words are "good" (rotten 1/2 instead of 2/3); without "good", none.
    assert kept_end.label == "rotten" and kept_end.weights == pytest.approx([1 / 6, -1 / 3, 1 / 6])


def test_held_out_split_is_stratified_disjoint_and_keeps_single_rows_for_training():
    from textclf import Dataset

    labels = ["a"] * 10 + ["b"] * 5 + ["c"]
    data = Dataset([f"text {index}" for index in range(16)], labels)
    rest, test = held_out_split(data, 0.2, seed=0)
    assert sorted(test.labels) == ["a", "a", "b"]  # 20% of each class with more than one row (rounded up).
    assert "c" in rest.labels and len(rest) == 13
    assert sorted(rest.texts + test.texts) == sorted(data.texts)
    assert held_out_split(data, 0.2, seed=0)[1].texts == test.texts  # A function of the seed.
    assert held_out_split(data, 0.2, seed=1)[1].texts != test.texts


def test_classes_named_like_the_reports_averages_keep_their_own_scores():
    from textclf.evaluation.metrics import classification_metrics, format_metrics
    from textclf.evaluation.multilabel import multilabel_metrics

    # scikit-learn's report writes its accuracy over a class named "accuracy" (format_metrics then raised) and its
    # macro average over one named "macro avg".
    classes = ["accuracy", "macro avg", "neg"]
    metrics = classification_metrics(["accuracy", "neg", "accuracy", "macro avg"],
                                     ["accuracy", "neg", "neg", "macro avg"], classes)
    assert metrics["per_class"] == {
        "accuracy": {"precision": 1.0, "recall": 0.5, "f1-score": pytest.approx(2 / 3), "support": 2},
        "macro avg": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1},
        "neg": {"precision": 0.5, "recall": 1.0, "f1-score": pytest.approx(2 / 3), "support": 1}}
    lines = format_metrics(metrics).splitlines()
    assert lines[5:8] == [
        "accuracy                     1.000     0.500     0.667         2",
        "macro avg                    1.000     1.000     1.000         1",
        "neg                          0.500     1.000     0.667         1"]
    multilabel = multilabel_metrics(np.array([[1, 0], [1, 1]]), np.array([[0.9, 0.2], [0.1, 0.8]]), ["accuracy", "b"],
                                    0.5)
    assert multilabel["per_class"] == {"accuracy": {"precision": 1.0, "recall": 0.5, "f1-score": pytest.approx(2 / 3),
                                                    "support": 2},
                                       "b": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}}
    assert "accuracy                     1.000     0.500     0.667         2" in format_metrics(multilabel)


def test_explanation_of_a_bigram_model_weighs_each_character_with_its_bigrams():
    from textclf.serve.explain import explain
    from textclf.text.rules import TextRules

    class Scorer:
        """Stands in for a cjk_bigrams export: P(pos) is 0.9 when the bigram 很好 is among the text's tokens."""

        classes = ["neg", "pos"]
        metadata = {"config": TrainConfig(split_mode="cjk_bigrams", max_len=50).to_dict()}
        seen = []

        def probabilities(self, texts):
            self.seen.extend(texts)
            tokens = [TextRules(cjk="bigrams").split_python(text) for text in texts]
            return np.array([[0.1, 0.9] if "很好" in row else [0.6, 0.4] for row in tokens])

    explanation = explain(Scorer(), "电影很好 film")
    # Rebuilt from its tokens (电 电影 影 影很 很 很好 好 film), each variant would have held every character twice.
    assert explanation.tokens == ["电", "影", "很", "好", "film"]
    # The text, its tokens written back whole (the variants' reference; here the same text), then each variant.
    assert Scorer.seen == ["电影很好 film", "电影很好 film", "影很好 film", "电 很好 film", "电影 好 film", "电影很 film",
                           "电影很好"]
    assert (explanation.label, explanation.score) == ("pos", 0.9)
    assert explanation.weights == pytest.approx([0.0, 0.0, 0.5, 0.5, 0.0])
