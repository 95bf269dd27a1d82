"""Which words pushed a prediction: occlusion through the exported model.

Each token is removed in turn and the text re-scored (all variants in one batch); a token's weight is how much
the predicted label's probability drops without it (negative: it argued against the label), from the tokens
written back whole: variants are written from tokens, without the text's punctuation and spacing, which the wide
branch reads.  Tokens come from
the export's own rules (``TextRules``), so the explanation is about what the model actually saw; with
``cjk_bigrams`` each character is weighed, taking its bigrams with it.  An export with an ``explain`` signature
computes the same weights in its graph (:mod:`textclf.serve.explain_graph`), and :func:`explain` uses it.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np

from textclf.config import TrainConfig
from textclf.text.rules import is_cjk_bigram
from textclf.text.sequences import truncated


@dataclasses.dataclass
class Explanation:
    """Per-token contributions to one prediction: ``weights[i]`` is the drop in ``score`` without ``tokens[i]``.

    ``unweighed``: the text's tokens without a weight (beyond the model's ``max_len`` or the weighing limit).
    ``label_weights``: multi-label models only, each predicted label's weights (the drop in its probability).
    """

    text: str
    label: str
    score: float
    tokens: list[str]
    weights: list[float]
    unweighed: int = 0
    label_weights: dict[str, list[float]] | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def explain(classifier, text: str, max_tokens: int | None = None) -> Explanation:
    """Occlusion weights of the tokens of ``text`` (empty: no tokens) for a loaded classifier's prediction.

    An export with an ``explain`` signature computes them in its graph, weighing at most the number of tokens it
    was exported with (``textclf.json``'s ``explain.max_tokens``); otherwise, or with ``max_tokens``, they are
    computed here (:func:`occlusion`).
    """
    signature = max_tokens is None and getattr(classifier, "has_signature", lambda name: False)("explain")
    # The graph selects multi-label labels at the export's threshold: one set on the classifier needs Python.
    if signature and getattr(classifier, "threshold", None) == classifier.config.threshold:
        return _from_signature(classifier, text)
    return occlusion(classifier, text, max_tokens)


def occlusion(classifier, text: str, max_tokens: int | None = None) -> Explanation:
    """:func:`explain` computed in Python, one batched ``probabilities`` call on the text and its variants.

    The tokens are those the model keeps (``max_len``, its truncation side); of those, ``max_tokens`` (default:
    all) are weighed: the last ones when the model truncates ``"pre"`` (it keeps the end of a long text),
    otherwise the first ones.  Each weighed token is left out of the kept tokens, written back into a text.
    """
    config = _config_of(classifier)
    rules = config.text_rules()
    every = rules.split_python(text)
    units, glue = _units(truncated(every, config.max_len, config.truncating), rules)
    positions = truncated(list(range(len(units))), max_tokens or max(len(units), 1), config.truncating)
    skip = "" if rules.char_level and rules.cjk != "bigrams" else rules.split
    # Variants are written back from the tokens, without the text's punctuation or spacing, which the wide branch
    # reads: each is compared with the tokens written back whole (-1 leaves none out), not with the text.
    probabilities = classifier.probabilities([text] + [_variant(units, glue, skip, left_out)
                                                       for left_out in [-1, *positions]])
    best = int(probabilities[0].argmax())
    drops = [[float(probabilities[1, column]) - float(row[column]) for row in probabilities[2:]]
             for column in range(probabilities.shape[1])]
    threshold = getattr(classifier, "threshold", None)
    label_weights = None if threshold is None else {
        name: drops[column] for column, name in enumerate(classifier.classes) if probabilities[0, column] >= threshold}
    return Explanation(text, classifier.classes[best], float(probabilities[0, best]), [units[at] for at in positions],
                       drops[best], len(_units(every, rules)[0]) - len(positions), label_weights)


def _units(tokens, rules):
    """``(units, glue)`` of a token list: what is weighed, and ``glue[i]``, written between units i and i + 1.

    With ``cjk_bigrams`` each character (or word) is a unit, not each bigram: joining the tokens back would count
    a bigram's characters twice, so adjacent units are written together (their bigrams formed again) and a left
    out unit leaves a separator, taking its bigrams with it and forming no new one.
    """
    if rules.cjk != "bigrams":
        return list(tokens), ["" if rules.char_level else rules.split] * len(tokens)
    units, glue = [], []
    for token in tokens:
        if is_cjk_bigram(token):
            if units:  # A bigram first (its first character truncated away) belongs to no unit here.
                glue[-1] = ""
            continue
        units.append(token)
        glue.append(rules.split)
    return units, glue


def _variant(units, glue, skip: str, left_out: int) -> str:
    """The units without ``units[left_out]``, written back into a text (``skip`` where it was)."""
    pieces = []
    for index, unit in enumerate(units):
        if index == left_out:
            continue
        if pieces:
            pieces.append(skip if index - 1 == left_out else glue[index - 1])
        pieces.append(unit)
    return "".join(pieces)


def _from_signature(classifier, text: str) -> Explanation:
    """:func:`explain` through the export's ``explain`` signature (one text)."""
    outputs = classifier.run_signature("explain", [text])
    count = int(outputs["lengths"][0])
    label_weights = None
    if "class_attributions" in outputs:
        label_weights = {name: outputs["class_attributions"][0, :count, column].tolist()
                         for column, name in enumerate(classifier.classes) if outputs["labels"][0, column]}
    return Explanation(text, outputs["label"][0].decode("utf-8"), float(outputs["score"][0]),
                       [token.decode("utf-8") for token in outputs["tokens"][0, :count]],
                       np.asarray(outputs["attributions"][0, :count], dtype=np.float64).tolist(),
                       int(outputs["unweighed"][0]), label_weights)


def _config_of(classifier) -> TrainConfig:
    if hasattr(classifier, "metadata"):
        return TrainConfig.from_dict(classifier.metadata["config"])
    return classifier.run.config


def terminal_line(explanation: Explanation, colour: bool = True) -> str:
    """The tokens coloured by weight (green: for, red: against the label); ANSI codes unless ``colour`` is False."""
    if not explanation.tokens:
        return f"{explanation.label} ({explanation.score:.3f}): no tokens to weigh"
    largest = max(abs(weight) for weight in explanation.weights) or 1.0
    parts = []
    for token, weight in zip(explanation.tokens, explanation.weights):
        strength = min(abs(weight) / largest, 1.0)
        # 256-colour greens (22..46) and reds (52..196) by strength.
        shade = ((22, 28, 34, 40, 46) if weight >= 0 else (52, 88, 124, 160, 196))[round(strength * 4)]
        parts.append(f"\033[48;5;{shade}m\033[97m{token}\033[0m" if colour and strength > 0.05 else token)
    # Tokens past the model's max_len or the weighing limit are said to exist, not shown.
    rest = f" (+{explanation.unweighed} tokens not weighed)" if explanation.unweighed else ""
    return f"{explanation.label} ({explanation.score:.3f}): " + " ".join(parts) + rest


def html_page(explanation: Explanation) -> str:
    """A standalone HTML page: tokens highlighted by weight, and a table of weights."""
    largest = max((abs(weight) for weight in explanation.weights), default=0.0) or 1.0
    spans = []
    for token, weight in zip(explanation.tokens, explanation.weights):
        alpha = min(abs(weight) / largest, 1.0)
        rgb = "34,139,34" if weight >= 0 else "200,30,30"
        spans.append(f'<span title="{weight:+.4f}" style="background: rgba({rgb},{alpha:.2f}); '
                     f'padding: 2px 4px; border-radius: 3px">{html.escape(token)}</span>')
    rows = "".join(f"<tr><td>{html.escape(token)}</td><td>{weight:+.4f}</td></tr>"
                   for token, weight in sorted(zip(explanation.tokens, explanation.weights), key=lambda item: -item[1]))
    body = " ".join(spans) if spans else "<em>no tokens to weigh</em>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>textclf explanation</title>
<style>body {{ font-family: sans-serif; margin: 2em; max-width: 60em }} .text {{ font-size: 1.3em; line-height: 2.2 }}
td {{ padding: 2px 12px }} table {{ border-collapse: collapse }} tr:nth-child(even) {{ background: #f3f3f3 }}</style>
</head><body>
<h1>Prediction: {html.escape(explanation.label)} ({explanation.score:.3f})</h1>
<p>Green words pushed the prediction towards this label, red ones away from it; the weight is how much the
label's probability drops when the word is removed.</p>
<p class="text">{body}</p>
<table><tr><th>token</th><th>weight</th></tr>{rows}</table>
<p><small>Input: {html.escape(explanation.text)}</small></p>
</body></html>
"""
