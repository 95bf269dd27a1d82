"""TrainConfig round trip and validation; the model factory's shapes and GPU-friendly defaults."""

import json

import keras
import numpy as np
import pytest

from textclf import TrainConfig, build_model
from textclf.config import ARCHITECTURES
from textclf.model.factory import class_probabilities


def test_every_setting_round_trips_through_json(tmp_path):
    config = TrainConfig(arch="bigru", num_layers=2, max_len=17, num_words=None, filters="", lower=False,
                         split="|", char_level=True, oov_token="<u>", padding="pre", truncating="pre",
                         dropout_rate=0.1, recurrent_dropout_rate=0.05, learning_rate=0.01, seed=7)
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("changes, message", [
    ({"max_len": 0}, "`max_len` must be a positive integer. Received: max_len=0"),
    ({"max_len_limit": 1_000_001}, "`max_len_limit` must be at most 1,000,000 tokens (the export's int32 ids are "
                                   "[batch, max_len]). Received: max_len_limit=1000001"),
    ({"epochs": -1}, "`epochs` must be a positive integer. Received: epochs=-1"),
    ({"arch": "transformer"}, "`arch` must be one of lstm, gru, bilstm, bigru. Received: arch='transformer'"),
    ({"dropout_rate": 1.0}, "`dropout_rate` must be a number in [0.0, 1.0). Received: dropout_rate=1.0"),
    ({"num_words": 1}, "`num_words` must be an integer >= 2 or null. Received: num_words=1"),
    ({"padding": "left"}, "`padding` must be 'pre' or 'post'. Received: padding='left'"),
    ({"label_column": "text"}, "`text_column` and `label_column` must differ."),
    ({"split": ""}, "`split` must be a non-empty string. Received: split=''"),
    # A JSON config's "false" is a string: Python reads it as true (it trained a multi-label model).
    ({"multi_label": "false"}, "`multi_label` must be true or false. Received: multi_label='false'"),
    ({"lower": 0}, "`lower` must be true or false. Received: lower=0"),
    ({"bucketing": None}, "`bucketing` must be true or false. Received: bucketing=None"),
])
def test_invalid_settings_are_named(changes, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**changes)
    assert message in str(error.value)


def test_unknown_setting_in_a_config_file_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"epochs": 2, "hidden_units": 4}')
    with pytest.raises(ValueError, match=r"Unknown setting\(s\) 'hidden_units' in config file .*bad.json"):
        TrainConfig.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json is not valid JSON"):
        TrainConfig.load(path)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("num_classes", [2, 4])
def test_each_architecture_builds_with_the_right_head(arch, num_classes):
    config = TrainConfig(arch=arch, units=4, embedding_dim=3, num_layers=2)
    model = build_model(config, vocabulary_size=10, num_classes=num_classes)
    ids = np.array([[3, 4, 0, 0], [1, 0, 0, 0]], dtype="int32")
    outputs = np.asarray(model(ids))
    assert outputs.shape == ((2, 1) if num_classes == 2 else (2, num_classes))
    probabilities = np.asarray(class_probabilities(outputs))
    if num_classes == 2:
        # One sigmoid unit p, the probability of the second class, read as [1 - p, p].
        assert model.layers[-1].activation.__name__ == "sigmoid"
        np.testing.assert_array_equal(probabilities, np.concatenate([1.0 - outputs, outputs], axis=1))
    else:
        assert model.layers[-1].activation.__name__ == "softmax"
        np.testing.assert_array_equal(probabilities, outputs)
    recurrent = [layer for layer in model.layers if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]
    assert len(recurrent) == 2
    assert all(isinstance(layer, keras.layers.Bidirectional) == arch.startswith("bi") for layer in recurrent)


def test_defaults_keep_the_cudnn_kernel_eligible():
    config = TrainConfig()
    assert (config.padding, config.recurrent_dropout_rate) == ("post", 0.0)
    model = build_model(config, vocabulary_size=10, num_classes=2)
    layer = model.get_layer(config.arch + "_1").forward_layer
    assert (layer.cell.activation.__name__, layer.cell.recurrent_activation.__name__) == ("tanh", "sigmoid")
    assert (layer.unroll, layer.cell.use_bias, layer.use_cudnn) == (False, True, "auto")
    assert model.get_layer("embedding").mask_zero


def test_padding_does_not_change_the_output():
    # Right padding is masked: the same text with more padding gives the same output.
    model = build_model(TrainConfig(arch="lstm", units=4, embedding_dim=3), vocabulary_size=10, num_classes=3)
    short = np.asarray(model(np.array([[5, 6, 7]], dtype="int32")))
    padded = np.asarray(model(np.array([[5, 6, 7, 0, 0, 0]], dtype="int32")))
    np.testing.assert_allclose(short, padded, rtol=1e-6)


def test_factory_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"`num_classes` must be an integer >= 2. Received: num_classes=1"):
        build_model(TrainConfig(), vocabulary_size=10, num_classes=1)
    with pytest.raises(ValueError, match=r"`vocabulary_size` must be an integer >= 2. Received: vocabulary_size=0"):
        build_model(TrainConfig(), vocabulary_size=0, num_classes=2)


def test_every_setting_has_its_help_and_literal_settings_their_choices():
    import dataclasses
    import typing

    from textclf.cli import build_parser

    fields = dataclasses.fields(TrainConfig)
    assert all(TrainConfig.help(field.name).endswith(".") for field in fields)
    assert TrainConfig.choices("arch") == ("lstm", "gru", "bilstm", "bigru")
    assert TrainConfig.choices("padding") == TrainConfig.choices("truncating") == ("pre", "post")
    assert TrainConfig.choices("units") is None
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {action.dest: action for action in train._actions}
    for field in fields:
        # The CLI's choices are the Literal's values, not a copy of them.
        assert flags[field.name].choices == TrainConfig.choices(field.name), field.name
    hints = typing.get_type_hints(TrainConfig)
    literal = sorted(name for name, hint in hints.items() if typing.get_origin(hint) is typing.Literal)
    assert literal == ["arch", "class_weight", "lr_schedule", "optimizer", "padding", "pooling", "split_mode",
                       "strategy", "streaming", "truncating", "wide"]


@pytest.mark.parametrize("settings, message", [
    (dict(threshold=0.5), "`threshold` applies to multi-label models only (multi_label=True). Received: "
                          "threshold=0.5 with multi_label=False"),
    (dict(freeze_embeddings=True), "`freeze_embeddings` keeps pretrained vectors fixed and needs `embeddings` (a "
                                   "vectors file). Received: freeze_embeddings=True with embeddings=None"),
    (dict(padding="middle"), "`padding` must be 'pre' or 'post'. Received: padding='middle'"),
    (dict(streaming="maybe"), "`streaming` must be one of auto, on, off. Received: streaming='maybe'"),
])
def test_settings_that_contradict_each_other_are_refused(settings, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**settings)
    assert str(error.value) == message
