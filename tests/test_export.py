"""The export: raw text in, labels and scores out, with TensorFlow alone in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from textclf import load
from textclf.serve.artifacts import load_run
from textclf.serve.export import _inference_model

TEXTS = ["great lovely film", "awful dull plot", "", "!!!", "A GOAL, a vote & an atom?", "Σ İ 中文 ", "x" * 500]

# Runs in a new interpreter: TensorFlow only, no textclf import.
PLAIN_TENSORFLOW = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
outputs = model.signatures["serving_default"](text=tf.constant(texts))
ids = model.signatures["tokenize"](text=tf.constant(texts))["ids"]
print(json.dumps({
    "label": [value.decode() for value in outputs["label"].numpy()],
    "score": outputs["score"].numpy().tolist(),
    "classes": [[value.decode() for value in row] for row in outputs["classes"].numpy()],
    "scores": outputs["scores"].numpy().tolist(),
    "ids": ids.numpy().tolist(),
    "textclf_imported": "textclf" in sys.modules,
}))
"""


@pytest.mark.parametrize("result_name", ["binary_result", "multiclass_result"])
def test_fresh_process_with_plain_tensorflow_matches_the_python_pipeline(result_name, request):
    result = request.getfixturevalue(result_name)
    process = subprocess.run(
        [sys.executable, "-c", PLAIN_TENSORFLOW, str(result.export_dir)],
        input=json.dumps(TEXTS), capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert process.returncode == 0, process.stderr[-3000:]
    served = json.loads(process.stdout)
    assert served["textclf_imported"] is False

    pipeline = load(result.run_dir)  # Python tokenizer + pad_sequences + Keras model.
    predictions = pipeline.predict(TEXTS)
    np.testing.assert_array_equal(served["ids"], pipeline.tokenize(TEXTS))
    assert served["label"] == [prediction.label for prediction in predictions]
    np.testing.assert_allclose(served["score"], [prediction.score for prediction in predictions], atol=1e-6, rtol=0)
    np.testing.assert_allclose(served["scores"], pipeline.probabilities(TEXTS), atol=1e-6, rtol=0)
    assert served["classes"] == [pipeline.classes] * len(TEXTS)


# Runs in a new interpreter: textclf's predict on an export, which must not import TensorFlow's Python package.
TEXTCLF_PREDICT = """
import json, sys
from textclf import load
classifier = load(sys.argv[1])
texts = json.loads(sys.stdin.read())
predictions = classifier.predict(texts)
print(json.dumps({"label": [p.label for p in predictions], "scores": classifier.probabilities(texts).tolist(),
                  "ids": classifier.tokenize(texts).tolist(), "tensorflow_imported": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("result_name", ["binary_result", "multiclass_result"])
def test_predict_on_an_export_runs_tf_servings_c_api_without_importing_tensorflow(result_name, request):
    result = request.getfixturevalue(result_name)
    metadata = json.loads((result.export_dir / "textclf.json").read_text())
    assert sorted(metadata["signatures"]) == ["explain", "serving_default", "tokenize"]
    inputs, outputs = metadata["signatures"]["serving_default"]
    assert list(inputs) == ["text"] and sorted(outputs) == ["classes", "label", "score", "scores"]
    assert sorted(metadata["signatures"]["tokenize"][1]) == ["ids"]
    process = subprocess.run([sys.executable, "-c", TEXTCLF_PREDICT, str(result.export_dir)],
                             input=json.dumps(TEXTS), capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert process.returncode == 0, process.stderr[-3000:]
    served = json.loads(process.stdout)
    assert served["tensorflow_imported"] is False
    pipeline = load(result.run_dir)
    assert served["label"] == [prediction.label for prediction in pipeline.predict(TEXTS)]
    np.testing.assert_allclose(served["scores"], pipeline.probabilities(TEXTS), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(served["ids"], pipeline.tokenize(TEXTS))


def test_signature_inputs_and_outputs(multiclass_result):
    loaded = tf.saved_model.load(str(multiclass_result.export_dir))
    signature = loaded.signatures["serving_default"]
    spec = signature.structured_input_signature[1]["text"]
    assert (spec.dtype, spec.shape.as_list()) == (tf.string, [None])
    outputs = signature.structured_outputs
    assert {name: (tensor.dtype, tensor.shape.as_list()) for name, tensor in outputs.items()} == {
        "label": (tf.string, [None]),
        "score": (tf.float32, [None]),
        "classes": (tf.string, [None, 3]),
        "scores": (tf.float32, [None, 3]),
    }
    assert sorted(loaded.signatures) == ["explain", "serving_default", "tokenize"]
    explain = loaded.signatures["explain"].structured_outputs
    assert {name: (tensor.dtype, tensor.shape.as_list()) for name, tensor in explain.items()} == {
        "tokens": (tf.string, [None, None]), "attributions": (tf.float32, [None, None]), "lengths": (tf.int32, [None]),
        "unweighed": (tf.int32, [None]), "label": (tf.string, [None]), "score": (tf.float32, [None])}
    empty = signature(text=tf.constant([], dtype=tf.string))
    assert empty["label"].shape == (0,) and empty["scores"].shape == (0, 3)
    result = signature(text=tf.constant(["goal match team", "vote minister party"]))
    assert [label.decode() for label in result["label"].numpy()] == ["sport", "politics"]
    metadata = json.loads((multiclass_result.export_dir / "textclf.json").read_text())
    assert (metadata["classes"], metadata["task"]) == (["politics", "science", "sport"], "multiclass")


def test_export_graph_holds_no_cudnn_only_op(binary_result, tmp_path):
    from textclf.serve.export import export_run

    # A blend that weighs the recurrent part, so the graph computes it (the tiny run's may leave it out).
    run = load_run(binary_result.run_dir)
    run.model.get_layer("blend").set_weights([np.array([0.5, 1.0], np.float32), np.zeros(1, np.float32)])
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((export_run(run, tmp_path / "export") / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    assert not [op for op in ops if "Cudnn" in op]
    assert {"StringSplitV2", "LookupTableFindV2", "StringLower", "StaticRegexReplace"} <= ops
    # The LSTM forward pass of textclf/serve/fast_lstm.py: a fused op with CPU and GPU kernels, and a while loop.
    assert {"BlockLSTMV2", "While"} <= ops
    assert not {"PyFunc", "EagerPyFunc"} & ops
    # The export is built from a copy that never asks for cuDNN, so tracing it
    # on a GPU machine cannot produce CudnnRNNV3 either.
    copy = _inference_model(load_run(binary_result.run_dir))
    recurrent = [layer.forward_layer if hasattr(layer, "forward_layer") else layer for layer in copy.layers
                 if hasattr(layer, "use_cudnn") or hasattr(layer, "forward_layer")]
    assert recurrent and all(layer.use_cudnn is False for layer in recurrent)


def test_python_api_predict_returns_labels_and_scores(binary_result):
    classifier = load(binary_result.export_dir.parent)
    predictions = classifier.predict(["great lovely superb film", "awful dull terrible plot"])
    assert [prediction.label for prediction in predictions] == ["fresh", "rotten"]
    expected = load(binary_result.run_dir).probabilities(["great lovely superb film", "awful dull terrible plot"])
    np.testing.assert_allclose([prediction.score for prediction in predictions], expected.max(axis=1),
                               atol=1e-6, rtol=0)
    assert predictions[0].top_k(1) == [{"label": "fresh", "score": predictions[0].score}]
    with pytest.raises(ValueError, match=r"`texts` must be strings. Received: texts\[1\]=3"):
        classifier.predict(["ok", 3])


def test_the_export_traces_each_function_once(binary_result, tmp_path, monkeypatch):
    from textclf.serve import export

    traced, scores_function = [], export._scores_function

    def counting(*args, **kwargs):
        scores = scores_function(*args, **kwargs)

        def traced_scores(text):
            traced.append(text.shape.as_list())
            return scores(text)
        return traced_scores

    monkeypatch.setattr(export, "_scores_function", counting)
    run = load_run(binary_result.run_dir)
    run.model.get_layer("blend").set_weights([np.array([0.5, 1.0], np.float32), np.zeros(1, np.float32)])
    export.export_run(run, tmp_path / "export")
    # classify and explain each compute the scores once in their graph: no trace again when saved or verified.
    assert traced == [[None], [None]]
