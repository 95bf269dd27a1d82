"""Chinese text: learned in CJK mode (chosen automatically) and served raw through the export."""

import pytest
import json
import os
import random
import re

import numpy as np
import tensorflow as tf

from textclf import load
from textclf.cli import main

from conftest import write_csv

SPORT = ["足球", "比赛", "球队", "进球", "教练", "冠军", "球员", "联赛"]
FOOD = ["米饭", "面条", "味道", "厨师", "餐厅", "好吃", "饺子", "汤"]
FILLER = ["今天", "我们", "觉得", "非常", "这个", "真的", "iPhone 15", "2024年"]


def chinese_rows(count, seed):
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        topic, words = ("体育", SPORT) if index % 2 == 0 else ("美食", FOOD)
        parts = rng.sample(words, 2) + rng.sample(FILLER, 2)
        rng.shuffle(parts)
        rows.append(("".join(parts) + rng.choice(["。", "！", "，真不错"]), topic))
    return rows


@pytest.mark.slow
def test_chinese_topics_are_learned_in_cjk_mode_and_served_raw(tmp_path, capsys):
    data = write_csv(tmp_path / "zh.csv", chinese_rows(48, seed=4))
    output = tmp_path / "zh"
    status = main([str(a) for a in ["train", data, "--output", output, "--epochs", "6", "--units", "8",
                                    "--embedding-dim", "8", "--max-len", "16", "--learning-rate", "0.03",
                                    "--batch-size", "8"]])
    err = capsys.readouterr().err
    assert status == 0, err
    assert re.search(r"split_mode auto: \d+% of training texts are mostly Chinese/Japanese/Korean", err)
    run_dir = output / "runs" / os.listdir(output / "runs")[0]
    assert json.loads((run_dir / "config.json").read_text())["split_mode"] == "cjk"

    held_out = [text for text, _ in chinese_rows(20, seed=99)]
    expected = [label for _, label in chinese_rows(20, seed=99)]
    pipeline = load(run_dir)
    export = load(output)
    served_ids = export.tokenize(held_out)
    np.testing.assert_array_equal(served_ids, pipeline.tokenize(held_out))
    served = export.predict(held_out)
    python = pipeline.predict(held_out)
    assert [p.label for p in served] == [p.label for p in python]
    np.testing.assert_allclose([p.score for p in served], [p.score for p in python], atol=1e-6)
    accuracy = np.mean([p.label == label for p, label in zip(served, expected)])
    assert accuracy >= 0.9, accuracy

    # The raw sentence, mixed with Latin words and numbers, through the signature itself.
    signature = tf.saved_model.load(str(export.path)).signatures["serving_default"]
    result = signature(text=tf.constant(["iPhone 15 直播：球队进球了，教练说冠军是我们的"]))
    assert result["label"].numpy()[0].decode() == "体育"
