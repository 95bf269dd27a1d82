"""textclf: LSTM/GRU text classification on Keras 3, served from raw text.

Example:
    >>> from textclf import TrainConfig, train, load
    >>> result = train("data/rt_polarity.csv", TrainConfig(epochs=3), output="saved_models/rt_polarity")
    >>> load("saved_models/rt_polarity").predict(["a gorgeous, witty, seductive movie"])[0].label
    'fresh'
"""

import os
import time

# When textclf was first imported: the CLI's start-up phase (imports, TensorFlow, parsing) is measured from here.
IMPORTED_AT = time.perf_counter()

# TensorFlow's C++ chatter (oneDNN, CUDA probing) is not for users; set before TensorFlow is imported anywhere.
# Level 3, not 2: on CPUs without AVX-512, oneDNN logs an ERROR line ("supports DT_BOOL only on platforms with
# AVX-512") at the first op of such a dtype; TF's real errors reach Python as exceptions.  An explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The lines TensorFlow's libraries write while loading come before that level applies: discarded, wherever
# TensorFlow is first imported (textclf.native_lines).
from textclf.native_lines import quiet_import  # noqa: E402

quiet_import()

from textclf.config import TrainConfig  # noqa: E402
from textclf.data.dataset import Dataset, load_dataset  # noqa: E402
from textclf.serve.export import export_run  # noqa: E402
from textclf.model.factory import build_model  # noqa: E402
from textclf.serve.predict import Prediction, evaluate, load  # noqa: E402
from textclf.text.sequences import encode  # noqa: E402
from textclf.text.tokenizer import Tokenizer, tokenizer_from_json  # noqa: E402
from textclf.training.run import train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Dataset", "Prediction", "TrainConfig", "Tokenizer", "build_model", "encode", "evaluate",
    "export_run", "load", "load_dataset", "tokenizer_from_json", "train",
]
