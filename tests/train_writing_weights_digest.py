"""The ``textclf`` command, writing the SHA-256 of each fitted model's final weights to a file (a test hook).

    python tests/train_writing_weights_digest.py DIGEST_FILE train ARGS...

``test_distributed`` starts each worker so and compares the digests: the weights
:func:`textclf.training.fit.fit_prepared` returns, wide branch included.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np


def weights_digest(model) -> str:
    """SHA-256 of the model's weights, in order."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(weight.numpy()).tobytes()
                                   for weight in model.weights)).hexdigest()


def write_digests_to(path) -> None:
    """Wraps ``fit_prepared`` so that every fit writes its weights' digest to ``path``."""
    import textclf.training.fit
    import textclf.training.run

    fit_prepared = textclf.training.fit.fit_prepared

    def fit_prepared_writing_digest(*args, **kwargs):
        fitted = fit_prepared(*args, **kwargs)
        Path(path).write_text(weights_digest(fitted.model) + "\n", encoding="utf-8")
        return fitted

    # run.py imported the function by name: both names must lead to the wrapper.
    textclf.training.fit.fit_prepared = textclf.training.run.fit_prepared = fit_prepared_writing_digest


if __name__ == "__main__":
    write_digests_to(sys.argv[1])
    from textclf.cli import main

    sys.exit(main(sys.argv[2:]))
