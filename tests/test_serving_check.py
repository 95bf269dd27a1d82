"""Exports served through TF Serving's own loading path (the C API's TF_LoadSessionFromSavedModel).

Every architecture the factory builds is exported and then run three ways on
the same batches: by the C++ loader (``textclf.serve.check``), by Python's
``tf.saved_model.load`` and by the Python pipeline (tokenizer, pad_sequences,
Keras model).  Labels must be identical and scores agree within 1e-5.
"""

import json
import random
import re

import numpy as np
import pytest
import tensorflow as tf

from textclf import TrainConfig
from textclf.model.factory import build_model
from textclf.cli import main
from textclf.serve.export import export_run
from textclf.training.prepare import new_tokenizer
from textclf.text.ngrams import count_matrix
from textclf.serve.predict import RunClassifier
from textclf.serve.check import (PROBE_TEXTS, ServingError, ServingSession, check_export, forbidden_ops,
                                   graph_ops)

WORDS = ["good", "great", "awful", "dull", "the", "movie", "plot", "goal", "vote", "atom", "rain", "sun"]
CJK_WORDS = ["电影", "很好", "好看", "无聊", "剧情", "演员", "中文", "分类"]
SPECIAL = ["", "?!... ---", "great film 👍🎬", "这部电影很好看", " ".join(["movie"] * 5000), "GOOD & DULL"]


def sentences(words, count, seed, joiner=" "):
    """``count`` texts of 1-15 words (several longer than the tiny max_len used here)."""
    rng = random.Random(seed)
    return [joiner.join(rng.choice(words) for _ in range(rng.randint(1, 15))) for _ in range(count)]


def write_random_run(folder, config, texts, classes, seed=0, recurrent_scale=0.7):
    """A run folder as ``textclf train`` writes it, with random (not trained) weights of a decisive size."""
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(texts)
    rng = np.random.default_rng(seed)
    wide = None
    if config.wide == "tfidf":
        # The wide branch's n-grams are those of the texts, so the served graph looks real keys up.
        analyzers = (("word", 1, 2), ("char_wb", 2, 5))
        keys = [count_matrix(texts, analyzer)[1] for analyzer in analyzers]
        wide = (analyzers, [len(part) for part in keys])
    model = build_model(config, tokenizer.vocabulary_size, len(classes), wide=wide)
    # Biases zero: a random head bias alone can outweigh what the texts change.
    model.set_weights([rng.normal(0.0, 0.5, weight.shape).astype(np.float32) if weight.ndim > 1
                       else np.zeros(weight.shape, np.float32) for weight in model.get_weights()])
    if wide is not None:
        outputs = model.output.shape[-1]
        model.get_layer("ngram_tfidf").set_weights(
            [weight for part in keys for weight in (part, rng.uniform(1.0, 3.0, len(part)).astype(np.float32),
                                                     rng.normal(0.0, 2.0, (len(part), outputs)).astype(np.float32))]
            + [np.zeros(outputs, np.float32)])
        model.get_layer("blend").set_weights([np.array([recurrent_scale, 1.3], np.float32),
                                              np.zeros(model.output.shape[-1], np.float32)])
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    (folder / "tokenizer.json").write_text(tokenizer.to_json(ensure_ascii=False), encoding="utf-8")
    (folder / "labels.json").write_text(json.dumps({"classes": classes}), encoding="utf-8")
    model.save(folder / "model.keras")
    return folder


BASE = dict(units=6, embedding_dim=5, max_len=12, spatial_dropout_rate=0.0, split_mode="word")
# (id, settings, export options): every architecture, pooling, two residual layers, both padding sides,
# multi-label, the CJK modes, and the fast LSTM path (both its batch paths, with and without the projection
# table) as well as the Keras graph.
CASES = [
    ("lstm-max-fast", dict(arch="lstm"), {}),
    ("lstm-max-keras", dict(arch="lstm"), {"fast": False}),
    ("lstm-last-pre", dict(arch="lstm", pooling="last", padding="pre", truncating="post"), {}),
    ("gru-mean", dict(arch="gru", pooling="mean"), {}),
    ("gru-last-pre", dict(arch="gru", pooling="last", padding="pre"), {}),
    ("bilstm-max-fast", dict(arch="bilstm"), {}),
    ("bilstm-mean-keras-pre", dict(arch="bilstm", pooling="mean", padding="pre"), {"fast": False}),
    ("bilstm-attention-no-table", dict(arch="bilstm", pooling="attention"),
     {"fast_options": {"table_limit_bytes": 0}}),
    ("bilstm-last", dict(arch="bilstm", pooling="last"), {}),
    ("bilstm-2-layers-max-mean", dict(arch="bilstm", num_layers=2, units=5, embedding_dim=10, pooling="max_mean"),
     {}),
    ("bigru-2-layers-attention", dict(arch="bigru", num_layers=2, units=5, embedding_dim=10, pooling="attention"),
     {}),
    ("bigru-last", dict(arch="bigru", pooling="last"), {}),
    ("bilstm-multi-label", dict(arch="bilstm", multi_label=True, threshold=0.4), {}),
    ("lstm-cjk", dict(arch="lstm", split_mode="cjk"), {}),
    ("bigru-cjk-bigrams", dict(arch="bigru", split_mode="cjk_bigrams", pooling="max_mean"), {}),
    ("lstm-wide-fast", dict(arch="lstm", wide="tfidf"), {}),
    ("bilstm-wide-keras-pre", dict(arch="bilstm", wide="tfidf", padding="pre"), {"fast": False}),
    ("bigru-wide-cjk", dict(arch="bigru", wide="tfidf", split_mode="cjk"), {}),
]


def served_three_ways(version, run_dir, texts):
    """(C API outputs of both signatures, tf.saved_model.load's outputs, the Python pipeline)."""
    with ServingSession(version) as session:
        served = session.run("serving_default", texts)
        ids = session.run("tokenize", texts)["ids"]
    loaded = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    return served, ids, {key: value.numpy() for key, value in loaded.items()}, RunClassifier(run_dir)


# The default run keeps one fast-path LSTM, one Keras-graph LSTM, one GRU and the wide branch; `pytest --all` runs every case.
QUICK_CASES = ("lstm-max-fast", "lstm-max-keras", "gru-mean", "lstm-wide-fast")


@pytest.mark.parametrize("case", [case if case[0] in QUICK_CASES else pytest.param(case, marks=pytest.mark.slow)
                                  for case in CASES], ids=[case[0] for case in CASES])
def test_the_cpp_loader_serves_every_architecture_as_python_and_keras_do(case, tmp_path):
    name, settings, options = case
    config = TrainConfig(**{**BASE, **settings})
    cjk = config.split_mode != "word"
    texts = sentences(CJK_WORDS if cjk else WORDS, 200, seed=len(name), joiner="" if cjk else " ")
    classes = ["alpha", "beta"] if config.arch == "lstm" else ["alpha", "beta", "gamma"]
    run_dir = write_random_run(tmp_path / "run", config, texts, classes)
    version = export_run(run_dir, tmp_path / "export", **options)
    assert version == tmp_path / "export" / "1"
    assert forbidden_ops(version) == []

    batch = SPECIAL + texts[: 300 - len(SPECIAL)] + sentences(WORDS, 300 - len(SPECIAL) - 200, seed=3)
    for rows in ([SPECIAL[4]], [SPECIAL[0]], batch):  # One row (the fused-op path), then 300.
        served, ids, python, pipeline = served_three_ways(version, run_dir, rows)
        assert sorted(served) == sorted(python) == (
            ["classes", "label", "labels", "score", "scores"] if config.multi_label
            else ["classes", "label", "score", "scores"])
        np.testing.assert_array_equal(ids, pipeline.tokenize(rows))
        assert ids.shape == (len(rows), 12)
        assert served["label"].tolist() == python["label"].tolist()
        probabilities = pipeline.probabilities(rows)
        expected_labels = [pipeline.classes[index].encode() for index in probabilities.argmax(axis=1)]
        assert served["label"].tolist() == expected_labels
        np.testing.assert_allclose(served["scores"], python["scores"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(served["scores"], probabilities, atol=1e-5, rtol=0)
        np.testing.assert_allclose(served["score"], probabilities.max(axis=1), atol=1e-5, rtol=0)
        assert served["classes"].tolist() == [[name.encode() for name in classes]] * len(rows)
        if config.multi_label:
            expected = [[name.encode() if value >= 0.4 else b"" for name, value in zip(classes, row)]
                        for row in served["scores"]]
            assert served["labels"].tolist() == expected == python["labels"].tolist()
    # The comparison means something: the texts move the scores.
    assert np.ptp(served["scores"][:, 0]) > 0.05


def test_a_blend_that_leaves_the_recurrent_part_out_is_served_without_it(tmp_path):
    config = TrainConfig(**{**BASE, "arch": "bilstm", "wide": "tfidf"})
    texts = sentences(WORDS, 200, seed=7)
    run_dir = write_random_run(tmp_path / "run", config, texts, ["alpha", "beta", "gamma"], recurrent_scale=0.0)
    version = export_run(run_dir, tmp_path / "export")
    rows = SPECIAL + texts[:50]
    served, ids, python, pipeline = served_three_ways(version, run_dir, rows)
    np.testing.assert_array_equal(ids, pipeline.tokenize(rows))
    np.testing.assert_allclose(served["scores"], pipeline.probabilities(rows), atol=1e-5, rtol=0)
    assert np.ptp(served["scores"][:, 0]) > 0.05  # The n-grams move the scores.
    # Only the wide branch's and the blend's variables are served: no embedding, no recurrent weight.
    loaded = tf.saved_model.load(str(version))
    assert sorted(variable.name for variable in loaded.served_variables) == sorted(
        [f"ngram_tfidf/{name}_{index}:0" for index in range(2) for name in ("keys", "idf", "kernel")]
        + ["ngram_tfidf/bias:0", "blend/scales:0", "blend/bias:0"])


# Whichever read runs first names its variable.
MISSING_VARIABLE = "Could not find variable (probabilities/(kernel|bias)|attached_embedding/embeddings)"


class KerasAttached(tf.Module):
    """How textclf exported before: a Keras model attached to a tf.Module, saved with tf.saved_model.save."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text):
        return {"ids": tf.cast(tf.strings.length(text), tf.int32)[:, tf.newaxis] % 4 + 1}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def classify(self, text):
        return {"scores": self.model(self.tokenize(text)["ids"])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def explain(self, text):
        return {"attributions": self.classify(text)["scores"]}


def keras_attached_module():
    import keras

    inputs = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(5, 3, name="attached_embedding")(inputs)
    outputs = keras.layers.Dense(2, name="probabilities")(embedded[:, 0])
    return KerasAttached(keras.Model(inputs, outputs))


def keras_attached_export(folder):
    module = keras_attached_module()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.classify})
    return folder


def test_an_export_of_attached_keras_variables_fails_in_the_cpp_loader_but_not_in_python(tmp_path):
    folder = keras_attached_export(tmp_path / "1")
    # Python's object-based loader runs it...
    scores = tf.saved_model.load(str(folder)).signatures["serving_default"](text=tf.constant(["ab"]))["scores"]
    assert scores.shape == (1, 2)
    # ...TF Serving's loader does not: the graph reads variables the saver never restores.
    with pytest.raises(ServingError, match=MISSING_VARIABLE):
        check_export(folder, ["ab"])


def test_check_export_command_reports_the_failure_and_exits_2(tmp_path, capsys):
    keras_attached_export(tmp_path / "old" / "1")
    assert main(["check-export", str(tmp_path / "old")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"textclf check-export: error: {tmp_path / 'old' / '1'} would not serve in TF Serving's "
                            "C++ loader: Running signature 'serving_default' (TF_SessionRun): ")
    assert re.search(MISSING_VARIABLE, error)


def test_check_export_command_reports_success_with_the_outputs(binary_result, capsys):
    assert main(["check-export", str(binary_result.export_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = RunClassifier(binary_result.run_dir).predict(list(PROBE_TEXTS))
    assert report["export"] == str(binary_result.export_dir)
    assert report["servable"] is True and report["forbidden_ops"] == []
    assert report["python_loader_agrees"] is True and report["largest_difference"] <= 1e-5
    assert report["signatures"] == {"serving_default": ["classes", "label", "score", "scores"], "tokenize": ["ids"],
                                    "explain": ["attributions", "label", "lengths", "score", "tokens", "unweighed"]}
    assert [row["label"] for row in report["outputs"]] == [prediction.label for prediction in expected]
    np.testing.assert_allclose([row["score"] for row in report["outputs"]],
                               [prediction.score for prediction in expected], atol=1e-5, rtol=0)
    assert report["outputs"][5]["text"] == "word " * 11 + "wo..."


def test_ops_inside_the_function_library_are_found(tmp_path):
    class WithPyFunction(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify(self, text):
            return {"length": tf.py_function(lambda t: tf.strings.length(t), [text], tf.int32)}

    module = WithPyFunction()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.classify})
    assert "EagerPyFunc" in graph_ops(tmp_path / "1")
    assert forbidden_ops(tmp_path / "1") == ["EagerPyFunc"]
    assert main(["check-export", str(tmp_path)]) == 2


def test_an_export_that_would_not_serve_is_never_written(binary_result, tmp_path, monkeypatch):
    import textclf.serve.export

    monkeypatch.setattr(textclf.serve.export, "serving_module", lambda run, **_: keras_attached_module())
    with pytest.raises(ValueError, match="^The export would not run in TF Serving's C\\+\\+ loader: "):
        export_run(binary_result.run_dir, tmp_path / "base")
    assert list((tmp_path / "base").iterdir()) == []  # Neither a version nor a staging folder.


def test_without_the_c_api_library_the_export_is_written_with_a_warning(binary_result, tmp_path, monkeypatch,
                                                                       capsys):
    import textclf.serve.session
    from textclf.serve.session import CApiUnavailable

    def missing():
        raise CApiUnavailable("TensorFlow's C API library (libtensorflow_cc) was not found beside x")

    monkeypatch.setattr(textclf.serve.session, "_library", missing)
    assert export_run(binary_result.run_dir, tmp_path / "base") == tmp_path / "base" / "1"
    assert capsys.readouterr().err == ("warning: the export was not checked through TF Serving's loader "
                                       "(TensorFlow's C API library (libtensorflow_cc) was not found beside x)\n")
    # Without the library the export records no tensor names, and predict loads it with tf.saved_model.load.
    import json

    from textclf import load

    assert "signatures" not in json.loads((tmp_path / "base" / "1" / "textclf.json").read_text())
    classifier = load(tmp_path / "base")
    assert classifier._session is None
    expected = load(binary_result.export_dir).predict(["good great film", "awful dull plot"])
    assert ([p.label for p in classifier.predict(["good great film", "awful dull plot"])]
            == [p.label for p in expected])


def test_a_session_fetches_only_the_outputs_asked_for(binary_result):
    from textclf.serve.check import ServingError, ServingSession

    texts = ["good great film", "awful dull plot"]
    with ServingSession(binary_result.export_dir) as session:
        every = session.run("serving_default", texts)
        scores = session.run("serving_default", texts, keys=["scores"])
        assert list(scores) == ["scores"]
        np.testing.assert_array_equal(scores["scores"], every["scores"])
        with pytest.raises(ServingError, match=r"^Signature 'serving_default' has no output 'logits'; it has "
                                               r"\['classes', 'label', 'score', 'scores'\]$"):
            session.run("serving_default", texts, keys=["logits"])


def test_a_session_takes_its_options_from_a_config_proto(binary_result):
    import tensorflow as tf

    from textclf.serve.check import ServingError, ServingSession

    texts = ["good great film", "awful dull plot"]
    with ServingSession(binary_result.export_dir) as session:
        expected = session.run("serving_default", texts, keys=["scores"])["scores"]
    one_thread = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1).SerializeToString()
    with ServingSession(binary_result.export_dir, session_config=one_thread) as session:
        np.testing.assert_array_equal(session.run("serving_default", texts, keys=["scores"])["scores"], expected)
    # The bytes reach TF_SetConfig: ones that are no ConfigProto are refused with TensorFlow's message.
    with pytest.raises(ServingError, match=r"^Setting the session options \(TF_SetConfig\): .*ConfigProto"):
        ServingSession(binary_result.export_dir, session_config=b"\xff\xff\xff")


def test_one_session_serves_concurrent_requests_as_it_serves_them_one_by_one(binary_result):
    # TF Serving runs every request of a model version through one session, several at a time. Batches of 1 and 3
    # take the fused-op path of the LSTM, 40 and 200 the sorted loop; each thread sends them in its own order.
    import threading

    from textclf.serve.check import ServingSession

    batches = [sentences(WORDS, size, seed) + SPECIAL[:1] for seed, size in enumerate([0, 2, 39, 199])]
    with ServingSession(binary_result.export_dir) as session:
        alone = [session.run("serving_default", batch, keys=["scores", "label"]) for batch in batches]
        results, errors = {}, []

        def client(number):
            try:
                order = random.Random(number).sample(range(len(batches)), len(batches)) * 5
                results[number] = [(index, session.run("serving_default", batches[index], keys=["scores", "label"]))
                                   for index in order]
            except BaseException as error:  # Raised in the test's thread below.
                errors.append(error)

        threads = [threading.Thread(target=client, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert sorted(results) == [0, 1, 2, 3] and all(len(answers) == 20 for answers in results.values())
    for answers in results.values():
        for index, outputs in answers:
            np.testing.assert_array_equal(outputs["scores"], alone[index]["scores"])
            np.testing.assert_array_equal(outputs["label"], alone[index]["label"])


def test_a_session_takes_any_iterable_of_texts_and_refuses_unencodable_ones_before_allocating(binary_result):
    from textclf.serve.check import ServingSession

    texts = ["good great film", "x" * 40, "awful dull plot"]  # 40 bytes: a string stored on the heap.
    with ServingSession(binary_result.export_dir) as session:
        expected = session.run("serving_default", texts, keys=["scores"])["scores"]
        np.testing.assert_array_equal(
            session.run("serving_default", (text for text in texts), keys=["scores"])["scores"], expected)
        with pytest.raises(UnicodeEncodeError):
            session.run("serving_default", ["fine", "\udcff"], keys=["scores"])
        # The session still serves after the refusal.
        np.testing.assert_array_equal(session.run("serving_default", texts, keys=["scores"])["scores"], expected)


def test_check_export_reports_a_savedmodel_of_other_tools_with_its_own_input_and_outputs(tmp_path, capsys):
    class Lengths(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
        def measure(self, sentence):
            return {"length": tf.strings.length(sentence), "upper": tf.strings.upper(sentence)}

    module = Lengths()
    tf.saved_model.save(module, str(tmp_path / "lengths" / "1"), signatures={"serving_default": module.measure})
    assert main(["check-export", str(tmp_path / "lengths"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["python_loader_agrees"] is True and report["largest_difference"] == 0.0
    assert report["signatures"] == {"serving_default": ["length", "upper"]}
    assert report["outputs"][:3] == [{"text": "", "length": 0, "upper": ""},
                                     {"text": "?!... ---", "length": 9, "upper": "?!... ---"},
                                     {"text": "great film 👍🎬", "length": 19, "upper": "GREAT FILM 👍🎬"}]
    assert report["outputs"][5]["upper"] == "WORD " * 11 + "WO..."
    assert main(["check-export", str(tmp_path / "lengths")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  signatures: serving_default(sentence) -> length, upper"
    assert lines[4] == '  "" -> {"length": 0, "upper": ""}'


class Signatures(tf.Module):
    """Another tool's SavedModel: one signature takes text, the others an int32, a scalar text or two texts."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
    def measure(self, sentence):
        return {"length": tf.strings.length(sentence)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids")])
    def double(self, ids):
        return {"doubled": ids * 2}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="name")])
    def greet(self, name):
        return {"greeting": "hello " + name}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=name) for name in ("a", "b")])
    def join(self, a, b):
        return {"joined": a + b}


class FloatInput(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def twice(self, x):
        return {"y": x * 2}


def test_check_export_runs_only_the_signatures_taking_text_and_says_which_it_skipped_and_why(tmp_path, capsys):
    # Strings were fed to every one-input signature: the int32 one failed, "would not serve", exit 2.
    module = Signatures()
    tf.saved_model.save(module, str(tmp_path / "signatures" / "1"), signatures={
        "serving_default": module.measure, "double": module.double, "greet": module.greet, "join": module.join})
    assert main(["check-export", str(tmp_path / "signatures")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"{tmp_path / 'signatures' / '1'}: servable — loaded with TF_LoadSessionFromSavedModel (TF Serving's C++ "
        "loader) and run with TF_SessionRun",
        "  signatures: serving_default(sentence) -> length",
        "  skipped: double (its input 'ids' is int32, not text); greet (its input 'name' has shape [], not [None]); "
        "join (takes 2 inputs (a, b), not one text)"]
    assert lines[4:6] == ["  tf.saved_model.load agrees: largest difference 0.00e+00", '  "" -> {"length": 0}']
    assert main(["check-export", str(tmp_path / "signatures"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == {"double": "its input 'ids' is int32, not text",
                                 "greet": "its input 'name' has shape [], not [None]",
                                 "join": "takes 2 inputs (a, b), not one text"}
    # A float-input model loads and has nothing to run: not "would not serve".
    module = FloatInput()
    tf.saved_model.save(module, str(tmp_path / "floats" / "1"), signatures={"serving_default": module.twice})
    assert main(["check-export", str(tmp_path / "floats")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / 'floats' / '1'}: servable — loaded with TF_LoadSessionFromSavedModel (TF Serving's C++ loader) "
        "and not run: no signature takes one text",
        "  signatures: none run",
        "  skipped: serving_default (its input 'x' is float32, not text)",
        "  no Cudnn*/PyFunc op in the graph or its 4 functions",
        "  tf.saved_model.load: not compared (serving_default takes no text)"]


class ScalarsAndBooleans(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def measure(self, text):
        length = tf.strings.length(text)
        return {"long": length > 10, "count": tf.size(text), "any_empty": tf.reduce_any(tf.equal(length, 0))}


def test_check_export_shows_scalar_and_boolean_outputs_once_or_per_text(tmp_path, capsys):
    # A scalar output: IndexError (a row per text was read from it); a bool output: TypeError (numpy subtracts no
    # booleans when comparing with Python's loader).
    module = ScalarsAndBooleans()
    tf.saved_model.save(module, str(tmp_path / "scalars" / "1"), signatures={"serving_default": module.measure})
    assert main(["check-export", str(tmp_path / "scalars")]) == 0
    assert capsys.readouterr().out.splitlines()[3:7] == [
        "  tf.saved_model.load agrees: largest difference 0.00e+00",
        '  whole batch: {"any_empty": true, "count": %d}' % len(PROBE_TEXTS),
        '  "" -> {"long": false}',
        '  "?!... ---" -> {"long": false}']


class EveryDtype(tf.Module):
    """Outputs of each dtype a graph computes on a CPU, scalars, booleans and handles, from the texts' lengths."""

    def __init__(self):
        super().__init__()
        self.weight = tf.Variable(1.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def measure(self, text):
        from tensorflow.python.framework import dtypes

        length = tf.strings.length(text)
        outputs = {name: tf.cast(length, name) for name in ("float16", "bfloat16", "int8", "uint8", "int16", "uint16",
                                                            "uint32", "uint64", "complex64", "complex128")}
        outputs["float8_e5m2"] = tf.cast(tf.cast(length, tf.float32), dtypes.float8_e5m2)
        outputs["qint8"] = tf.raw_ops.QuantizeV2(input=tf.cast(length, tf.float32), min_range=0.0, max_range=100.0,
                                                 T=tf.qint8).output
        outputs.update(long=length > 10, count=tf.size(text), any_empty=tf.reduce_any(tf.equal(length, 0)),
                       handle=self.weight.handle, lengths=tf.raw_ops.TensorListFromTensor(
                           tensor=length, element_shape=tf.constant([], tf.int32)))
        return outputs


def test_check_export_shows_outputs_of_every_dtype_scalars_booleans_and_handles(tmp_path, capsys):
    # float16, bfloat16, int8, uint8, uint64, complex64...: "Unsupported output dtype code N"; a scalar: IndexError;
    # a bool: TypeError (numpy subtracts no booleans).
    module = EveryDtype()
    tf.saved_model.save(module, str(tmp_path / "dtypes" / "1"), signatures={"serving_default": module.measure})
    assert main(["check-export", str(tmp_path / "dtypes"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["python_loader_agrees"], report["largest_difference"], report["skipped"]) == (True, 0.0, {})
    assert report["whole_batch"] == {"any_empty": True, "count": len(PROBE_TEXTS), "handle": "<resource>",
                                     "lengths": "<variant>"}
    numbers = ("bfloat16", "float16", "int16", "int8", "uint16", "uint32", "uint64", "uint8")
    assert report["outputs"][2] == {"text": "great film 👍🎬", "complex128": "(19+0j)", "complex64": "(19+0j)",
                                    "float8_e5m2": 20.0, "long": True, "qint8": -80, **dict.fromkeys(numbers, 19)}
    # The 5,000-word text's 24,999 bytes as each type holds them.
    assert report["outputs"][5] == {
        "text": "word " * 11 + "wo...", "bfloat16": 24960.0, "complex128": "(24999+0j)", "complex64": "(24999+0j)",
        "float16": 24992.0, "float8_e5m2": 24576.0, "int16": 24999, "int8": -89, "long": True, "qint8": 127,
        "uint16": 24999, "uint32": 24999, "uint64": 24999, "uint8": 167}
    assert main(["check-export", str(tmp_path / "dtypes")]) == 0
    assert capsys.readouterr().out.splitlines()[4] == (
        '  whole batch: {"any_empty": true, "count": %d, "handle": "<resource>", "lengths": "<variant>"}'
        % len(PROBE_TEXTS))


def test_the_cpp_loader_serves_the_word_product_path_as_the_pair_path(tmp_path, monkeypatch):
    # Batches with many n-grams count char_wb (row, n-gram) entries by a CSR sparse product, variant-typed ops inside
    # the graph; exported with the product for every batch and run by TF Serving's loader, it serves the scores of the
    # pairs' expansion (the path of a few short texts).
    from textclf.model import layers

    config = TrainConfig(**{**BASE, "arch": "bilstm", "wide": "tfidf"})
    texts = sentences(WORDS, 200, seed=7)
    run_dir = write_random_run(tmp_path / "run", config, texts, ["alpha", "beta", "gamma"])
    pairs = export_run(run_dir, tmp_path / "pairs")
    monkeypatch.setattr(layers, "PRODUCT_MIN_NGRAMS", 0)
    product = export_run(run_dir, tmp_path / "product")
    assert forbidden_ops(product) == []
    rows = SPECIAL + texts[:50]
    with ServingSession(pairs) as expanded, ServingSession(product) as multiplied:
        expected, served = (session.run("serving_default", rows)["scores"] for session in (expanded, multiplied))
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    assert np.ptp(served[:, 0]) > 0.05  # The n-grams move the scores.
