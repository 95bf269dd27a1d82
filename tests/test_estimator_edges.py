"""The estimator follows scikit-learn's conventions: numpy scalars, missing labels, bare strings, DataFrames."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from textclf.estimator import TextClassifier, _plain, _texts

from conftest import NEGATIVE, POSITIVE, make_rows

SETTINGS = dict(epochs=1, units=4, embedding_dim=4, batch_size=16, max_len=6, wide="none")


def test_numpy_scalars_are_plain_values():
    assert [type(_plain(v)) for v in (np.int64(16), np.float32(0.5), np.bool_(True), "x", 3)] == [
        int, float, bool, str, int]
    assert _plain(np.int64(16)) == 16 and _plain(np.float32(0.5)) == 0.5


def rows(count=40):
    data = make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, count, seed=3)
    return [text for text, _ in data], [label for _, label in data]


def test_fit_takes_numpy_scalar_settings_and_round_trips_through_pickle_and_clone():
    texts, labels = rows()
    model = TextClassifier(**{**SETTINGS, "units": np.int64(4), "dropout_rate": np.float32(0.1),
                              "residual": np.bool_(True)})
    model.fit(texts, labels)
    assert model.config_.units == 4 and type(model.config_.units) is int
    assert model.config_.dropout_rate == pytest.approx(0.1) and model.config_.residual is True
    assert clone(model).get_params()["units"] == np.int64(4)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict(texts[:5]).tolist() == model.predict(texts[:5]).tolist()


@pytest.mark.parametrize("missing", [None, np.nan, "", "  "])
def test_a_missing_label_is_refused_with_its_position(missing):
    texts, labels = rows(10)
    labels[3] = missing
    with pytest.raises(ValueError, match=r"missing \(None, NaN or blank\) at position\(s\) 3$"):
        TextClassifier(**SETTINGS).fit(texts, labels)


def test_x_must_be_texts_not_a_string():
    with pytest.raises(ValueError, match="not a single string"):
        _texts("one text")
    assert _texts(np.array(["a b", "c"], dtype=object)) == ["a b", "c"]


def test_a_one_column_frame_is_its_column():
    pd = pytest.importorskip("pandas")  # Not a dependency of textclf: checked where it is installed.
    assert _texts(pd.DataFrame({"text": ["a b", "c"]})) == ["a b", "c"]
    with pytest.raises(ValueError, match="a DataFrame of 2 columns"):
        _texts(pd.DataFrame({"text": ["a"], "other": ["b"]}))


def test_a_two_column_y_is_refused():
    texts, labels = rows(10)
    with pytest.raises(ValueError, match="y should be a 1d array"):
        TextClassifier(**SETTINGS).fit(texts, np.array([labels, labels]).T)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_predict_refuses_a_batch_size_that_is_no_positive_integer(binary_result, batch_size):
    from textclf import load

    with pytest.raises(ValueError, match=rf"`batch_size` must be a positive integer. Received: "
                                         rf"batch_size={batch_size!r}"):
        load(binary_result.run_dir).predict(["a film"], batch_size=batch_size)


def test_fit_is_silent_by_default_and_leaves_the_logging_level_as_it_was(capsys):
    import logging

    from textclf.log import logger

    texts, labels = rows()
    TextClassifier(**SETTINGS).fit(texts, labels)  # verbose=0, as scikit-learn's estimators: a grid search is quiet.
    assert capsys.readouterr() == ("", "")
    assert logger.level == logging.INFO


@pytest.mark.slow
def test_verbose_fit_logs_and_a_silenced_program_stays_silenced(capsys):
    import logging

    from textclf.log import logger

    texts, labels = rows()
    TextClassifier(**SETTINGS, verbose=1).fit(texts, labels)
    err = capsys.readouterr().err
    assert "32 training rows, 8 validation rows" in err and "epoch 1/1: loss " in err
    logger.setLevel(logging.ERROR)
    try:
        TextClassifier(**SETTINGS).fit(texts, labels)
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(logging.INFO)


def test_verbose_is_a_parameter_that_clone_keeps():
    model = TextClassifier(units=4, verbose=1)
    assert (model.get_params()["verbose"], clone(model).get_params()["verbose"]) == (1, 1)
    assert TextClassifier().get_params()["verbose"] == 0
