"""The baselines' TF-IDF features, where no n-gram may be frequent enough to keep.

scikit-learn's ``TfidfVectorizer`` raises ``ValueError`` when ``min_df`` leaves no n-gram ("After pruning, no terms
remain") or the texts hold none ("empty vocabulary"): text without spaces (Chinese, Japanese) is one "word" per
sentence, so word n-grams in two rows are only repeated sentences.  Within a ``FeatureUnion`` that error also lost
the character n-grams beside them.  :class:`SparseTfidf` instead gives one column of zeros, as the wide branch keeps
no column there (``textclf.training.linear_choice.tfidf``): the logistic regression on it has its intercept alone.
"""

from __future__ import annotations

from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

# scikit-learn's messages for a vocabulary left empty (CountVectorizer._limit_features and _count_vocab).
_EMPTY = ("no terms remain", "empty vocabulary")


class SparseTfidf(TfidfVectorizer):
    """``TfidfVectorizer`` that, when it keeps no n-gram, transforms every text to one zero (``vocabulary_`` empty)."""

    def fit(self, raw_documents, y=None):
        self.fit_transform(raw_documents, y)
        return self

    def fit_transform(self, raw_documents, y=None):
        documents = list(raw_documents)
        try:
            return super().fit_transform(documents, y)
        except ValueError as error:
            if not any(message in str(error) for message in _EMPTY):
                raise
        self.vocabulary_ = {}
        return sparse.csr_matrix((len(documents), 1), dtype=self.dtype)

    def transform(self, raw_documents):
        if getattr(self, "vocabulary_", None) == {}:
            return sparse.csr_matrix((len(list(raw_documents)), 1), dtype=self.dtype)
        return super().transform(raw_documents)
