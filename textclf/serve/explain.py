"""Which words pushed a prediction: occlusion through the exported model.

Each token is removed in turn and the text re-scored (all variants in one batch); a token's weight is how much
the predicted label's probability drops without it (negative: it argued against the label).  Tokens come from
the export's own rules (``TextRules``), so the explanation is about what the model actually saw; with
``cjk_bigrams`` each character is weighed, taking its bigrams with it.
"""

from __future__ import annotations

import dataclasses
import html

from textclf.config import TrainConfig
from textclf.text.rules import is_cjk_bigram
from textclf.text.sequences import truncated


@dataclasses.dataclass
class Explanation:
    """Per-token contributions to one prediction: ``weights[i]`` is the drop in ``score`` without ``tokens[i]``."""

    text: str
    label: str
    score: float
    tokens: list[str]
    weights: list[float]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def explain(classifier, text: str, max_tokens: int | None = None) -> Explanation:
    """Occlusion weights of the tokens of ``text`` (empty: no tokens) for a loaded classifier's prediction.

    ``max_tokens`` (default: the model's ``max_len``) tokens are weighed: the last ones when the model truncates
    ``"pre"`` (it keeps the end of a long text), otherwise the first ones.
    """
    config = _config_of(classifier)
    rules = config.text_rules()
    # The tokens the model sees: the encoding's own truncation rule.
    tokens = truncated(rules.split_python(text), max_tokens or config.max_len, config.truncating)
    if rules.cjk == "bigrams":
        tokens, variants = _character_variants(tokens, rules.split)
    else:
        joiner = "" if rules.char_level else rules.split
        variants = [joiner.join(tokens[:position] + tokens[position + 1 :]) for position in range(len(tokens))]
    probabilities = classifier.probabilities([text] + variants)
    best = int(probabilities[0].argmax())
    score = float(probabilities[0, best])
    weights = [score - float(row[best]) for row in probabilities[1:]]
    return Explanation(text, classifier.classes[best], score, tokens, weights)


def _character_variants(tokens, split: str):
    """``(units, variants)`` of a ``cjk_bigrams`` token list: each character (or word) weighed, not each bigram.

    Joining the tokens back does not give the text (a bigram would count its characters twice), so each variant
    is the units with one of them left out, adjacent units written together (their bigrams formed again) and a
    separator where the unit was: it takes its bigrams with it and forms no new one.
    """
    units, together = [], []  # together[i]: units i and i + 1 stood side by side (their bigram follows unit i).
    for token in tokens:
        if is_cjk_bigram(token):
            if units:  # A bigram first (its first character truncated away) belongs to no unit here.
                together[-1] = True
            continue
        units.append(token)
        together.append(False)
    variants = []
    for left_out in range(len(units)):
        pieces, previous = [], None
        for index, unit in enumerate(units):
            if index == left_out:
                continue
            if pieces:
                pieces.append("" if previous == index - 1 and together[previous] else split)
            pieces.append(unit)
            previous = index
        variants.append("".join(pieces))
    return units, variants


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
    return f"{explanation.label} ({explanation.score:.3f}): " + " ".join(parts)


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
