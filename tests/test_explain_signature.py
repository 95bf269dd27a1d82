"""The export's ``explain`` signature, run as TF Serving runs it (the C API's TF_LoadSessionFromSavedModel), gives
``textclf explain``'s Python occlusion: the same tokens, weights within 1e-6, the same count of unweighed tokens."""

import json
import shutil

import numpy as np
import pytest

from test_serving_check import BASE, CJK_WORDS, WORDS, sentences, write_random_run
from textclf import TrainConfig
from textclf.cli import main
from textclf.serve.check import check_report
from textclf.serve.explain import explain, occlusion
from textclf.serve.export import export_run
from textclf.serve.predict import load
from textclf.serve.session import ServingSession

OUTPUTS = ["attributions", "label", "lengths", "score", "tokens", "unweighed"]


def assert_served_is_python_occlusion(version, texts, max_tokens, session=None):
    """Each text's row of the served outputs against :func:`occlusion` on the same export; returns the outputs."""
    if session is None:
        with ServingSession(version) as session:  # TF Serving's loader, tensor names from the MetaGraphDef.
            return assert_served_is_python_occlusion(version, texts, max_tokens, session)
    outputs, classifier = session.run("explain", texts), load(version)
    width = max(outputs["lengths"].tolist(), default=0)
    assert outputs["tokens"].shape == outputs["attributions"].shape == (len(texts), width)
    for row, text in enumerate(texts):
        python, count = occlusion(classifier, text, max_tokens), int(outputs["lengths"][row])
        assert [token.decode() for token in outputs["tokens"][row, :count]] == python.tokens
        # Padding to the batch's longest row: "" and 0.
        assert outputs["tokens"][row, count:].tolist() == [b""] * (width - count)
        assert outputs["attributions"][row, count:].tolist() == [0.0] * (width - count)
        np.testing.assert_allclose(outputs["attributions"][row, :count], python.weights, atol=1e-6, rtol=0)
        assert (outputs["label"][row].decode(), int(outputs["unweighed"][row])) == (python.label, python.unweighed)
        np.testing.assert_allclose(outputs["score"][row], python.score, atol=1e-6, rtol=0)
        if python.label_weights is not None:
            assert [name.decode() for name in outputs["labels"][row] if name] == list(python.label_weights)
    return outputs


def test_a_trained_word_model_explains_through_the_c_api_as_textclf_explain_does(binary_result, tmp_path, capsys):
    version = binary_result.export_dir
    metadata = json.loads((version / "textclf.json").read_text())
    assert metadata["explain"] == {"max_tokens": 128}
    texts = ["The movie was a story and the plot was brilliant", "awful, dull plot!", "", "!!!", "GREAT lovely film",
             "great " * 200]
    session = ServingSession(version)
    outputs = assert_served_is_python_occlusion(version, texts, 128, session)
    assert sorted(outputs) == OUTPUTS
    # max_len is 8 and the model truncates "pre": the last 8 tokens are weighed, the rest counted.
    assert outputs["lengths"].tolist() == [8, 3, 0, 0, 3, 8]
    assert outputs["unweighed"].tolist() == [2, 0, 0, 0, 0, 192]
    assert outputs["tokens"][1].tolist() == [b"awful", b"dull", b"plot", b"", b"", b"", b"", b""]

    # The definition, from serving_default alone: the drop in the predicted class's probability without the token.
    scores = session.run("serving_default", ["awful, dull plot!", "dull plot", "awful plot", "awful dull"])["scores"]
    best = int(scores[0].argmax())
    np.testing.assert_allclose(outputs["attributions"][1, :3], scores[0, best] - scores[1:, best], atol=1e-6, rtol=0)

    empty = session.run("explain", [])
    session.close()
    assert {key: value.shape for key, value in empty.items()} == {
        "attributions": (0, 0), "label": (0,), "lengths": (0,), "score": (0,), "tokens": (0, 0), "unweighed": (0,)}

    # `textclf explain` reads the signature; an older export (no explain in textclf.json) takes the Python path.
    assert main(["explain", str(version.parent), "awful, dull plot!", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tokens"] == ["awful", "dull", "plot"] and printed["unweighed"] == 0
    np.testing.assert_allclose(printed["weights"], outputs["attributions"][1, :3], atol=1e-6, rtol=0)
    older = tmp_path / "older" / "1"
    shutil.copytree(version, older)
    del metadata["signatures"]["explain"], metadata["explain"]
    (older / "textclf.json").write_text(json.dumps(metadata))
    classifier = load(older)
    assert not classifier.has_signature("explain")
    np.testing.assert_allclose(explain(classifier, "awful, dull plot!").weights, printed["weights"], atol=1e-6, rtol=0)

    report = check_report(version)
    assert "explain(text) -> " + ", ".join(OUTPUTS) in report and "tf.saved_model.load agrees" in report


def random_export(tmp_path, settings, words, joiner, explain_tokens, classes=("alpha", "beta", "gamma")):
    config = TrainConfig(**{**BASE, **settings})
    texts = sentences(words, 120, seed=7, joiner=joiner)
    run_dir = write_random_run(tmp_path / "run", config, texts, list(classes))
    return export_run(run_dir, tmp_path / "export", explain_tokens=explain_tokens), texts


@pytest.mark.parametrize("split_mode, truncating", [("cjk_bigrams", "pre"), ("cjk", "post")])
def test_a_cjk_model_explains_each_character_through_the_c_api_as_in_python(split_mode, truncating, tmp_path):
    version, texts = random_export(tmp_path, dict(arch="gru", split_mode=split_mode, truncating=truncating),
                                   CJK_WORDS, "", explain_tokens=4)
    batch = ["电影很好看", "电影很好 film", "", "。！", "这部iPhone 15 手机很好用"] + texts[:10]
    outputs = assert_served_is_python_occlusion(version, batch, 4)
    # 电影很好看: 5 characters, of which 4 are weighed from the end the model keeps; the rest is counted.
    expected = ["影", "很", "好", "看"] if truncating == "pre" else ["电", "影", "很", "好"]
    assert [token.decode() for token in outputs["tokens"][0]] == expected
    assert outputs["unweighed"][0] == 1 and outputs["lengths"][2:4].tolist() == [0, 0]
    # Some texts are longer than max_len (12 tokens) and than the limit: the bound is exercised.
    assert outputs["lengths"].max() == 4 and outputs["unweighed"].max() > 4


def test_a_multi_label_model_explains_every_class_through_the_c_api_as_in_python(tmp_path):
    settings = dict(arch="bilstm", multi_label=True, threshold=0.4, truncating="post")
    version, texts = random_export(tmp_path, settings, WORDS, " ", explain_tokens=3)
    batch = ["good goal vote", "", "the movie plot was dull and the sun came out"] + texts[:10]
    outputs = assert_served_is_python_occlusion(version, batch, 3)
    assert sorted(outputs) == sorted(OUTPUTS + ["class_attributions", "classes", "labels"])
    assert outputs["class_attributions"].shape == (len(batch), 3, 3)
    assert outputs["tokens"][0].tolist() == [b"good", b"goal", b"vote"]
    assert outputs["tokens"][2].tolist() == [b"the", b"movie", b"plot"] and outputs["unweighed"][2] == 7
    # Each class's column is that class's drop: with every class selected Python weighs them all.
    classifier = load(version)
    classifier.threshold = 0.0
    for row, text in enumerate(batch):
        python = occlusion(classifier, text, 3)
        assert list(python.label_weights) == classifier.classes
        for column, name in enumerate(classifier.classes):
            np.testing.assert_allclose(outputs["class_attributions"][row, : len(python.tokens), column],
                                       python.label_weights[name], atol=1e-6, rtol=0)
    # The selected labels' weights reach `textclf explain` through the signature.
    signature = explain(load(version), batch[0])
    assert sorted(signature.label_weights) == sorted(name.decode() for name in outputs["labels"][0] if name)
    np.testing.assert_allclose(signature.weights, outputs["attributions"][0], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_a_char_level_model_with_the_wide_branch_explains_as_in_python(tmp_path):
    version, texts = random_export(tmp_path, dict(arch="lstm", char_level=True, wide="tfidf"), WORDS, " ",
                                   explain_tokens=6, classes=("alpha", "beta"))
    outputs = assert_served_is_python_occlusion(version, ["ab c", "", "GOOD & DULL"] + texts[:10], 6)
    assert outputs["tokens"][0].tolist() == [b"a", b"b", b" ", b"c", b"", b""]


def test_weights_are_drops_from_the_tokens_written_back_whole_not_from_the_texts_punctuation():
    # A model that reads punctuation (as the wide branch's n-grams do): "!" raises "pos", which no variant written
    # back from the tokens holds. The weights compare like with like; the label and score are the text's own.
    class Classifier:
        classes = ["neg", "pos"]
        run = type("Run", (), {"config": TrainConfig().replace(max_len=10)})()
        threshold = None

        def probabilities(self, texts):
            scores = [0.9 if "!" in text else 0.6 + 0.1 * ("great" in text) for text in texts]
            return np.array([[1 - score, score] for score in scores])

    explanation = occlusion(Classifier(), "Great movie!")
    assert (explanation.label, explanation.score, explanation.tokens) == ("pos", 0.9, ["great", "movie"])
    np.testing.assert_allclose(explanation.weights, [0.1, 0.0], atol=1e-12)
