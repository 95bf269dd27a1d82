"""Streaming (larger than memory): incremental readers, the counting pass, the split, the pipelines, train()."""

import gzip
import io
import json
import re

import numpy as np
import pyarrow
import pyarrow.parquet
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textclf import TrainConfig, Tokenizer, load_dataset
from textclf.training.prepare import new_tokenizer
from textclf.data.progress import ProgressBar
from textclf.data.reading import decode, decoded_chunks, physical_lines
import textclf.data.streaming
from textclf.data.streaming import RowSplit, StreamSource, count_pass, should_stream
from textclf.training.streamed_rows import StreamedRows

from conftest import TOPICS, Crash, crash_at_save, make_rows, multilabel_rows, write_csv

TEXTS = ["The cat sat on the mat.", "The dog ate the cat!", "A dog; a CAT, a mat?", "", "dog dog DOG"]
ROWS = [("Hello, world", "pos"), ("Bye now", "neg"), ("naïve café, très bien", "pos"), ("Line one\nline two", "neg")]


def tokenizer_state(tokenizer):
    return json.loads(tokenizer.to_json())["config"]


def test_streaming_fit_gives_exactly_what_fit_on_texts_gives():
    whole = Tokenizer(num_words=5, oov_token="<unk>")
    whole.fit_on_texts(TEXTS)
    streamed = Tokenizer(num_words=5, oov_token="<unk>")
    assert [streamed.count_text(text) for text in TEXTS] == [6, 5, 6, 0, 3]
    streamed.finish_fit()
    assert tokenizer_state(streamed) == tokenizer_state(whole)
    # dog 5, the 4, cat 3 and a 3 (cat seen first), mat 2, then once-seen words in first-seen order.
    assert streamed.word_index == {"<unk>": 1, "dog": 2, "the": 3, "cat": 4, "a": 5, "mat": 6, "sat": 7, "on": 8,
                                   "ate": 9}
    assert (streamed.document_count, streamed.word_counts["dog"], streamed.word_docs["dog"]) == (5, 5, 3)
    from_generator = Tokenizer(num_words=5, oov_token="<unk>")
    from_generator.fit_on_texts(text for text in TEXTS)  # Any iterable, read once.
    assert tokenizer_state(from_generator) == tokenizer_state(whole)


def write_formats(folder, rows):
    """The same rows as CSV, TSV, JSONL, fastText and Parquet, plain and gzip."""
    files = {
        "a.csv": "text,label\n" + "".join(
            '"{}",{}\n'.format(text.replace('"', '""'), label) for text, label in rows),
        "a.tsv": "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows if "\n" not in text),
        "a.jsonl": "".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in rows),
        "a.ft": "".join(f"__label__{label} {text}\n" for text, label in rows if "\n" not in text),
    }
    paths = []
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
        (folder / f"{name}.gz").write_bytes(gzip.compress(content.encode("utf-8")))
        paths += [folder / name, folder / f"{name}.gz"]
    texts, labels = zip(*rows)
    pyarrow.parquet.write_table(pyarrow.table({"text": list(texts), "label": list(labels)}), folder / "a.parquet")
    (folder / "a.parquet.gz").write_bytes(gzip.compress((folder / "a.parquet").read_bytes()))
    return paths + [folder / "a.parquet", folder / "a.parquet.gz"]


def test_streamed_rows_equal_the_in_memory_rows_in_every_format(tmp_path):
    config = TrainConfig()
    for path in write_formats(tmp_path, ROWS + [("", "pos"), ("kept", "neg")]):
        loaded = load_dataset(path)
        streamed = list(StreamSource.of(path, config).rows())
        assert [text for _, text, _ in streamed] == loaded.texts, path.name
        assert [label for _, _, label in streamed] == loaded.labels, path.name


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=list("ab,\"é€\n\r\u2028\x0c")),
       encoding=st.sampled_from(["utf-8", "utf-16", "cp1252", "latin-1"]), chunk=st.integers(1, 7))
def test_chunked_decoding_and_lines_equal_reading_whole(text, encoding, chunk):
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        return
    pieces = [raw[start:start + chunk] for start in range(0, len(raw), chunk)]
    decoded = "".join(decoded_chunks(pieces, "x", encoding))
    assert decoded == decode(raw, "x", encoding) == text
    chunked_lines = list(physical_lines(text[start:start + chunk] for start in range(0, len(text), chunk)))
    assert chunked_lines == io.StringIO(text, newline="").readlines()


def test_an_undecodable_byte_is_named_by_line_across_chunks():
    raw = "text,label\nok,x\n".encode("utf-16-le") + b"\x00\xdc"
    with pytest.raises(ValueError, match=r"x.csv line 3: bytes b'\\x00\\xdc' are not valid utf-16-le"):
        list(decoded_chunks([raw[:5], raw[5:13], raw[13:]], "x.csv", "utf-16-le"))
    raw = "a\nb\nc\u00e9\n".encode("utf-8")[:-2] + b"\n"  # The second byte of é is missing.
    for pieces in ([raw], [raw[:4], raw[4:]], [raw[:6], raw[6:]]):
        with pytest.raises(ValueError, match=r"y.csv line 3: bytes b'\\xc3' are not valid UTF-8 \(save the file"):
            list(decoded_chunks(pieces, "y.csv"))


def test_the_split_is_a_function_of_seed_and_row_number():
    first, second = RowSplit(seed=7, fraction=0.2), RowSplit(seed=7, fraction=0.2)
    rows = range(200_000)
    flags = [first.is_validation(row) for row in rows]
    assert flags == [second.is_validation(row) for row in reversed(rows)][::-1]  # Any order of asking.
    assert 0.19 < np.mean(flags) < 0.21
    other_seed, nothing_held_out = RowSplit(seed=8, fraction=0.2), RowSplit(seed=7, fraction=0.0)
    assert flags != [other_seed.is_validation(row) for row in rows]
    assert not any(nothing_held_out.is_validation(row) for row in range(1000))


@pytest.fixture
def topics_csv(tmp_path):
    return write_csv(tmp_path / "topics.csv", make_rows(TOPICS, 60, seed=3) + [("", "sport")])


def test_the_counting_pass_fits_what_the_in_memory_path_fits(topics_csv):
    config = TrainConfig(validation_fraction=0.25, seed=5)
    split = RowSplit(config.seed, config.validation_fraction)
    tokenizer = new_tokenizer(config)
    summary = count_pass(config, tokenizer, StreamSource.of(topics_csv, config), split, show_progress=False)
    loaded = load_dataset(topics_csv)
    training = [index for index in range(len(loaded)) if not split.is_validation(index)]
    expected = new_tokenizer(config)
    expected.fit_on_texts(loaded.texts[index] for index in training)
    assert tokenizer_state(tokenizer) == tokenizer_state(expected)
    assert (summary.train_rows, summary.valid_rows) == (len(training), 60 - len(training))
    assert (summary.dropped_rows, summary.dropped_lines) == (1, [("topics.csv", 62)])
    assert summary.classes == ["politics", "science", "sport"]
    assert summary.label_counts == {name: sum(loaded.labels[index] == name for index in training)
                                    for name in summary.classes}
    lengths = [len(sequence) for sequence in expected.texts_to_sequences(loaded.texts[index] for index in training)]
    assert summary.lengths == {length: lengths.count(length) for length in set(lengths)}


@pytest.mark.parametrize("rows, valid_rows, message", [
    ([("a b", "x"), ("c d", "x")], None, r"one.csv: training needs at least two different labels; found only 'x'"),
    ([("a b", "x"), ("c d", "y")], [("e", "z")],
     r"valid.csv: labels 'z' do not occur in the training data \(training labels: 'x', 'y'\)"),
    ([("a b", "x"), ("c d", "y")], None,
     r"Too few rows in .*one.csv to hold out a validation set with validation_fraction=0.0; add rows or pass"),
])
def test_counting_pass_errors_name_the_file(tmp_path, rows, valid_rows, message):
    config = TrainConfig(validation_fraction=0.0)
    path = write_csv(tmp_path / "one.csv", rows)
    valid = StreamSource.of(write_csv(tmp_path / "valid.csv", valid_rows), config) if valid_rows else None
    split = None if valid else RowSplit(1, config.validation_fraction)
    with pytest.raises(ValueError, match=message):
        count_pass(config, new_tokenizer(config), StreamSource.of(path, config), split, valid, show_progress=False)


def test_streamed_batches_hold_the_rows_the_in_memory_encoding_gives(topics_csv):
    from textclf.text.sequences import encode

    config = TrainConfig(max_len=4, validation_fraction=0.25, seed=5)
    split = RowSplit(config.seed, config.validation_fraction)
    tokenizer = new_tokenizer(config)
    source = StreamSource.of(topics_csv, config)
    summary = count_pass(config, tokenizer, source, split, show_progress=False)
    loaded = load_dataset(topics_csv)
    valid = [index for index in range(len(loaded)) if split.is_validation(index)]
    rows = StreamedRows(source, "valid", split, summary.valid_rows, tokenizer, config, summary.classes)
    ids, targets = zip(*[(batch[0].numpy(), batch[1].numpy()) for batch in rows.batches(batch_size=4)])
    expected = encode(tokenizer, [loaded.texts[index] for index in valid], 4, truncating=config.truncating)
    padded = np.concatenate([np.pad(batch, [[0, 0], [0, 4 - batch.shape[1]]]) for batch in ids])
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(np.concatenate(targets),
                                  [summary.classes.index(loaded.labels[index]) for index in valid])
    pre = StreamedRows(source, "valid", split, summary.valid_rows, tokenizer, config.replace(padding="pre"),
                       summary.classes)
    np.testing.assert_array_equal(np.concatenate([batch[0].numpy() for batch in pre.batches(batch_size=4)]),
                                  encode(tokenizer, [loaded.texts[index] for index in valid], 4, padding="pre",
                                         truncating=config.truncating))


def test_training_rows_are_sharded_and_shuffled_by_seed_and_epoch(topics_csv):
    config = TrainConfig(max_len=4, validation_fraction=0.25, seed=5)
    split = RowSplit(config.seed, config.validation_fraction)
    tokenizer = new_tokenizer(config)
    source = StreamSource.of(topics_csv, config)
    summary = count_pass(config, tokenizer, source, split, show_progress=False)
    rows = StreamedRows(source, "train", split, summary.train_rows, tokenizer, config, summary.classes)

    def order(pipeline_id=0, pipelines=1, epoch=0):
        return [(tuple(ids), target) for chunk in rows.chunks(pipeline_id, pipelines, seed=3, epoch=epoch)
                for ids, target in zip(np.split(chunk[0], np.cumsum(chunk[1])[:-1]), chunk[2].tolist())]

    plain = [(tuple(ids), target) for ids, target in rows.encoded_rows()]
    assert order() == order() != order(epoch=1)
    assert sorted(order()) == sorted(plain) == sorted(order(epoch=1))
    shards = [order(index, 3) for index in range(3)]
    assert sorted(shards[0] + shards[1] + shards[2]) == sorted(plain)
    assert [len(shard) for shard in shards] == [len(plain[index::3]) for index in range(3)]


def stream_above(monkeypatch, size: int) -> None:
    """Makes ``streaming="auto"`` stream data of more than ``size`` bytes (not a share of the memory)."""
    monkeypatch.setattr(textclf.data.streaming, "streaming_threshold", lambda: size)


def test_auto_streams_when_the_file_is_above_the_threshold(tmp_path, monkeypatch, binary_csv):
    messages = []
    stream_above(monkeypatch, binary_csv.stat().st_size - 1)
    assert should_stream(TrainConfig(), binary_csv, log=messages.append)
    assert "streaming auto:" in messages[0] and "so it is streamed" in messages[0]
    assert not should_stream(TrainConfig(streaming="off"), binary_csv)
    stream_above(monkeypatch, binary_csv.stat().st_size)
    assert not should_stream(TrainConfig(), binary_csv, log=messages.append)
    gzipped = tmp_path / "b.csv.gz"
    gzipped.write_bytes(gzip.compress(binary_csv.read_bytes()))
    stream_above(monkeypatch, 4 * gzipped.stat().st_size - 1)  # Compressed: counted x4.
    assert should_stream(TrainConfig(), gzipped, log=messages.append)
    (tmp_path / "folder" / "a").mkdir(parents=True)
    assert not should_stream(TrainConfig(), tmp_path / "folder")
    with pytest.raises(ValueError, match=r"folder is a folder per class, which is read in memory; streaming reads"):
        should_stream(TrainConfig(streaming="on"), tmp_path / "folder")


def test_streaming_setting_is_validated():
    with pytest.raises(ValueError, match=r"`streaming` must be one of auto, on, off. Received: streaming='yes'"):
        TrainConfig(streaming="yes")


def test_progress_bar_writes_tenths_to_a_log():
    stream = io.StringIO()
    bar = ProgressBar("counting a.csv", total=100 * 2**20, stream=stream)
    for done in range(0, 101, 5):
        bar.update(done * 2**20, rows=done)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[-1].startswith("counting a.csv [==============================] 100%  100.0 MB/100.0 MB")
    assert "100 rows" in lines[-1]


@pytest.mark.slow
def test_train_streamed_exports_a_classifier(binary_csv, tmp_path, monkeypatch, capfd):
    from textclf import load, train

    from conftest import tiny_config

    output = tmp_path / "reviews"
    stream_above(monkeypatch, 100)
    result = train(binary_csv, tiny_config(epochs=2, max_len=None), output=output, verbose=0)
    log = capfd.readouterr().err
    assert "streaming auto: " in log and "counting reviews.csv [" in log and "not stratified" in log
    run = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["streaming"] is True and run["train_rows"] + run["valid_rows"] == 80
    assert result.metrics["support"] == run["valid_rows"]
    assert sum(map(sum, result.metrics["confusion_matrix"])) == run["valid_rows"]
    # Every text is 5 words (2 of its label, 3 filler): the counted lengths' 95th percentile is 5.
    assert result.config.max_len == json.loads((result.run_dir / "config.json").read_text())["max_len"] == 5
    classifier = load(output)
    texts = ["great lovely superb film", "awful dull boring plot"]
    predictions = classifier.predict(texts)
    expected = load(result.run_dir).predict(texts)  # The run folder's Python pipeline.
    assert [prediction.label for prediction in predictions] == [prediction.label for prediction in expected]
    np.testing.assert_allclose([prediction.score for prediction in predictions],
                               [prediction.score for prediction in expected], atol=1e-6, rtol=0)
    assert not (output / "runs" / ".in-progress").exists()


@pytest.mark.slow
def test_an_interrupted_streamed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch, capfd):
    # Multi-label, so the streamed multi-hot targets and the tuned threshold are covered too.
    from textclf import load

    from conftest import tiny_config, whole_and_resumed

    data = write_csv(tmp_path / "topics.csv", multilabel_rows(120, seed=6))
    config = tiny_config(epochs=2, batch_size=8, checkpoint_every=3, patience=3, multi_label=True, streaming="on")
    whole, resumed, log = whole_and_resumed(data, config, tmp_path, monkeypatch, capfd, 2)
    # Saves every 3 steps: the second, at step 6, is in the middle of epoch 1, so the resume skips 6 batches.
    assert re.search(r"resuming from \S+/ckpt-2: epoch 1/2, step 6 \(6 steps trained\)", log)
    assert resumed.history == whole.history and resumed.metrics == whole.metrics
    assert whole.metrics["task"] == "multilabel" and whole.config.threshold == whole.metrics["threshold"]
    # Tuned on the streamed validation rows: the grid point of best micro-F1 on their saved scores (ties: nearest 0.5).
    saved = [json.loads(line) for line in (whole.run_dir / "validation_predictions.jsonl").open(encoding="utf-8")]
    pairs = [(score, name in row["true"]) for row in saved for name, score in row["scores"].items()]

    def micro_f1(threshold):
        true_positives = sum(score >= threshold and true for score, true in pairs)
        return 2 * true_positives / (sum(score >= threshold for score, _ in pairs) + sum(true for _, true in pairs))

    grid = [round(0.05 * step, 2) for step in range(1, 20)]
    assert len(saved) == whole.metrics["support"]
    assert whole.config.threshold == max(grid, key=lambda threshold: (micro_f1(threshold), -abs(threshold - 0.5)))
    for expected, actual in zip(load(whole.run_dir).run.model.get_weights(),
                                load(resumed.run_dir).run.model.get_weights()):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.slow
def test_a_resumed_auto_run_follows_the_interrupted_runs_streaming_decision(binary_csv, tmp_path, monkeypatch, capfd):
    # The first run streams (forced low threshold); the rerun would load the file in memory on its own.
    from textclf import train

    from conftest import tiny_config

    output = tmp_path / "reviews"
    stream_above(monkeypatch, 100)
    crash_at_save(monkeypatch, 1)
    with pytest.raises(Crash):
        train(binary_csv, tiny_config(epochs=2), output=output, verbose=0)
    monkeypatch.undo()
    capfd.readouterr()
    result = train(binary_csv, tiny_config(epochs=2), output=output, verbose=0)
    log = capfd.readouterr().err
    assert "streaming auto: on, as in the interrupted run being resumed" in log
    assert re.search(r"resuming from \S+/ckpt-1: epoch 2/2, step 0", log), log
    assert json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))["streaming"] is True
    assert result.config.streaming == "on"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "bc", "\n", "\r", "\r\n", "\u2028", ""]), max_size=30), st.data())
def test_physical_lines_of_any_chunking_equal_readlines_of_the_whole(pieces, data):
    from textclf.data.reading import physical_lines

    text = "".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[start:end] for start, end in zip([0] + cuts, cuts + [len(text)])]
    assert list(physical_lines(chunks)) == io.StringIO(text, newline="").readlines()


@pytest.mark.parametrize("streaming", ["on", "off"])
def test_a_run_into_a_busy_output_is_refused_before_reading_its_data(streaming, binary_csv, tmp_path, capfd):
    from textclf import train
    from textclf.training.prepare import prepare_in_memory
    from textclf.training.resume import InProgress

    from conftest import tiny_config

    holder = InProgress.open(tmp_path / "reviews" / "runs", TrainConfig(), prepare_in_memory(TrainConfig(), binary_csv))
    capfd.readouterr()
    try:
        with pytest.raises(ValueError, match=r"Another `textclf train` is training into .*reviews \(it holds "):
            train(binary_csv, tiny_config(streaming=streaming), output=tmp_path / "reviews", verbose=0)
    finally:
        holder.close()
    log = capfd.readouterr().err
    assert "training rows" not in log and "counting reviews.csv" not in log
