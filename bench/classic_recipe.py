"""The classic recipe as a user's script: legacy Keras Tokenizer → pad_sequences → Embedding → LSTM → Dense.

Usage: python bench/classic_recipe.py TRAIN.csv TEST.csv OUT_DIR [--epochs 2]

What the tutorials do, on legacy Keras (``tf_keras``, the Keras 2 API, since Keras 3 has no ``Tokenizer``):
Tokenizer(num_words=20000), ``pad_sequences`` to the 95th-percentile length (pre-padding and pre-truncation,
Keras's defaults, no mask), Embedding(20000, 128) → LSTM(64) → Dense, Adam 1e-3, batch 32, ``model.fit`` for
``--epochs`` epochs on every training row, then save the model and the tokenizer and predict the test rows.
Prints one JSON line: wall seconds per phase (imports, reading, tokenizing, epochs, saving, predicting) and
the test macro-F1.  ``bench/end_to_end.py`` runs it as a whole process.
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402


def read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    seconds = {"imports": time.perf_counter() - STARTED}
    mark = time.perf_counter()

    def lap(name):
        nonlocal mark
        now = time.perf_counter()
        seconds[name] = now - mark
        mark = now

    texts, labels = read(args.train)
    test_texts, test_labels = read(args.test)
    lap("reading")
    tokenizer = keras.preprocessing.text.Tokenizer(num_words=20000)
    tokenizer.fit_on_texts(texts)
    sequences = tokenizer.texts_to_sequences(texts)
    max_len = int(math.ceil(np.percentile([len(sequence) for sequence in sequences], 95)))
    x_train = keras.preprocessing.sequence.pad_sequences(sequences, maxlen=max_len)
    classes = sorted(set(labels))
    y_train = np.array([classes.index(label) for label in labels])
    lap("tokenizing")
    binary = len(classes) == 2
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.layers.Embedding(20000, 128, input_length=max_len),
        keras.layers.LSTM(64),
        keras.layers.Dense(1, activation="sigmoid") if binary else keras.layers.Dense(len(classes), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0)
    lap("epochs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    (out / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
    lap("saving")
    x_test = keras.preprocessing.sequence.pad_sequences(tokenizer.texts_to_sequences(test_texts), maxlen=max_len)
    probabilities = model.predict(x_test, batch_size=256, verbose=0)
    predicted = (probabilities[:, 0] > 0.5).astype(int) if binary else probabilities.argmax(axis=1)
    lap("predicting")
    macro_f1 = f1_score([classes.index(label) for label in test_labels], predicted, average="macro")
    print(json.dumps({"seconds": seconds, "macro_f1": float(macro_f1)}))


if __name__ == "__main__":
    main()
