"""The baseline's splits and fits on classes of one or two rows: a result, or one line saying what is wrong."""

from collections import Counter

import pytest

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


def test_the_held_out_split_of_many_small_classes_holds_out_a_share_of_each():
    from textclf.evaluation.baseline import held_out_split

    # 30 classes of 3 rows: train_test_split's 18 test rows cannot hold one of each of 30 classes (its ValueError was
    # a traceback from `textclf baseline`); each class holds out round(0.2 * 3) = 1 row instead.
    data = Dataset([f"text {index}" for index in range(90)], [f"c{index // 3}" for index in range(90)], "data.csv")
    rest, test = held_out_split(data, 0.2, 0)
    assert Counter(test.labels) == {f"c{index}": 1 for index in range(30)}
    assert Counter(rest.labels) == {f"c{index}": 2 for index in range(30)}
    assert sorted(rest.texts + test.texts) == sorted(data.texts)
    # Where the shares are whole enough, it is scikit-learn's split as before.
    many = Dataset([f"text {index}" for index in range(100)], [f"c{index % 2}" for index in range(100)], "data.csv")
    assert Counter(held_out_split(many, 0.2, 0)[1].labels) == {"c0": 10, "c1": 10}


def test_the_held_out_split_of_two_rows_per_class_is_refused_in_one_line():
    from textclf.evaluation.baseline import held_out_split
    from textclf.errors import TextclfError

    data = Dataset(["a b", "c d", "e f", "g h"], ["x", "x", "y", "y"], "data.csv")
    with pytest.raises(TextclfError) as raised:
        held_out_split(data, 0.2, 0)
    assert str(raised.value) == ("Too few rows (4) to hold out a validation set with validation_fraction=0.2; add rows "
                                 "or pass a validation file with --valid")


# Chinese without spaces: each sentence is one "word", and no sentence repeats, so no word n-gram is in two rows.
CJK = Dataset(["电影很好看", "演员很棒", "故事精彩", "非常无聊", "很难看"], ["好", "好", "好", "差", "差"], "cjk.csv")


def test_features_with_no_ngram_in_two_rows_are_one_zero_column_beside_the_others():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from textclf.evaluation.tfidf import SparseTfidf

    # scikit-learn's "After pruning, no terms remain" was a traceback from `textclf baseline` on such data.
    words = SparseTfidf(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    assert words.fit_transform(CJK.texts).toarray().tolist() == [[0.0]] * 5
    assert words.transform(["新的句子", "好"]).toarray().tolist() == [[0.0], [0.0]]
    assert SparseTfidf().fit(["🙂", "!"]).transform(["🙂"]).shape == (1, 1)  # "empty vocabulary" too.
    union = _vectorizer(STRONGEST_FEATURES["word 1-2 + char_wb 2-5"]).fit(CJK.texts)
    characters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2).fit(CJK.texts)
    assert union.transform(CJK.texts).shape == (5, 1 + len(characters.vocabulary_))


def test_the_baselines_on_text_without_shared_words_predict_what_their_features_allow():
    from textclf.evaluation.baseline import run_baseline

    # Word n-grams alone: no feature, so the intercept alone: the larger class for every row.
    plain = run_baseline(CJK, CJK, ["好", "差"], cjk=False)
    assert plain["confusion_matrix"] == [[3, 0], [2, 0]]
    # The search scores every choice, those with word n-grams included, and no longer stops at the first fold.
    strongest = run_strongest(CJK, CJK, ["好", "差"])
    assert strongest["chosen"] == {"features": "word 1-2", "C": 4.0, "class_weight": None}
    assert strongest["confusion_matrix"] == [[3, 0], [2, 0]]
