"""``--set NAME=VALUE`` parsing shared by the benches (no TensorFlow import)."""

import json


def parse_setting(text):
    """``NAME=VALUE`` → ``(name, value)``: the value read as JSON (numbers, true/false/null, lists), else a string."""
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value  # Any other word is a string setting, e.g. class_weight=none.
