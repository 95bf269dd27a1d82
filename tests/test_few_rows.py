"""The baseline's splits and fits on classes of one or two rows: a result, or one line saying what is wrong."""

from collections import Counter

from textclf.data.dataset import Dataset
from textclf.evaluation.baseline import STRONGEST_FALLBACK, STRONGEST_FEATURES, _vectorizer, run_strongest, \
    strongest_search
from textclf.evaluation.metrics import classification_metrics

TRAIN = Dataset(["good film", "good fun film", "great good film", "bad film", "bad dull film", "awful bad film",
                 "so so film"], ["fresh", "fresh", "fresh", "rotten", "rotten", "rotten", "meh"], "train.csv")
TEST = Dataset(["good great fun", "bad awful", "so so"], ["fresh", "rotten", "meh"], "test")


def test_the_strongest_baseline_with_a_one_row_class_fits_the_fixed_choice():
    # StratifiedKFold(1) raised scikit-learn's ValueError (a traceback from `textclf baseline`).
    metrics = run_strongest(TRAIN, TEST, ["fresh", "meh", "rotten"], seed=0)
    assert metrics["chosen"] == {"features": "word 1-2 + char_wb 2-5", "C": 16.0, "class_weight": "balanced",
                                 "fixed": "a class has one training row, too few to cross-validate"}
    fixed = strongest_search(0).estimator.set_params(
        features=_vectorizer(STRONGEST_FEATURES[STRONGEST_FALLBACK[0]]), linear__C=16.0,
        linear__class_weight="balanced").fit(TRAIN.texts, TRAIN.labels)
    expected = classification_metrics(TEST.labels, fixed.predict(TEST.texts).tolist(), ["fresh", "meh", "rotten"])
    assert (metrics["accuracy"], metrics["macro_f1"]) == (expected["accuracy"], expected["macro_f1"])
    assert Counter(TRAIN.labels)["meh"] == 1
