"""The blend of the recurrent part and the linear part: ``activation(a * recurrent logits + b * linear logits + c)``
(:class:`textclf.model.layers.Blend`), fitted on the validation rows.

The linear part's logits are first put on a calibrated scale: its out-of-fold logits on every row of the
cross-validation fix one temperature (a regularised logistic regression is under- or over-confident by a factor;
docs/RESULTS.md gives the measured ones).  The blend is then held towards
that calibrated linear part alone, so a few dozen validation rows move it only as far as they pay for
(docs/RESULTS.md, "The blend").
"""

from __future__ import annotations

import numpy as np

# How strongly the blend is held to the calibrated linear part alone: the squared distance from it weighs as much
# as this many validation rows' losses, so more validation rows move it further (docs/RESULTS.md).
BLEND_PRIOR_ROWS = 10
# The recurrent part joins the blend only when its validation macro-F1 is within this of the linear part's (out of
# fold): below it, blending it in lost held-out macro-F1 on small many-class data (docs/RESULTS.md).
MAX_RECURRENT_SHORTFALL = 0.05


def recurrent_logits(recurrent: np.ndarray) -> np.ndarray:
    """The recurrent head's probabilities as the logits :class:`textclf.model.layers.Blend` scales (float64):
    ``log(p / (1 - p))`` for one sigmoid unit, ``log(p)`` for a softmax (logits up to a per-row constant)."""
    probabilities = np.clip(recurrent.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(probabilities) - (np.log1p(-probabilities) if recurrent.shape[1] == 1 else 0.0)


def balanced_log_loss(logits: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """The mean cross-entropy of ``logits`` [rows, outputs] (one sigmoid output, or a softmax's) against class
    indices ``targets``, each row weighed by ``weights``."""
    if logits.shape[1] == 1:
        losses = np.logaddexp(0.0, logits[:, 0]) - targets * logits[:, 0]
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        losses = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(shifted)), targets]
    return float(np.average(losses, weights=weights))


def temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The factor ``t`` minimising the class-balanced log-loss of ``t * logits`` (temperature scaling, Guo et al.
    2017), held towards 1 by a prior on ``log t`` worth :data:`BLEND_PRIOR_ROWS` rows, in [0.01, 100]; 1.0 for no
    rows.  Held-out logits that separate every row have no finite optimum: the prior keeps ``t`` where a few rows
    put it, so served probabilities stay short of 0 and 1 (float32 rounds a logit above 17 to 1.0)."""
    from scipy.optimize import minimize_scalar
    from sklearn.utils.class_weight import compute_sample_weight

    if len(targets) == 0:
        return 1.0
    weights = compute_sample_weight("balanced", targets)
    logits, strength = logits.astype(np.float64), BLEND_PRIOR_ROWS / len(targets)
    # Over log t: the bracket then spans its four orders of magnitude evenly.
    found = minimize_scalar(
        lambda log_t: balanced_log_loss(np.exp(log_t) * logits, targets, weights) + strength * log_t ** 2,
        bounds=(np.log(0.01), np.log(100.0)), method="bounded")
    return float(np.exp(found.x))


def blend_weights(recurrent: np.ndarray, wide: np.ndarray, targets: np.ndarray,
                  scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(scales [2], bias [outputs])`` of the blend maximising the class-balanced likelihood of ``targets``,
    shrunk towards the calibrated linear part alone (``scales = [0, scale]``, ``bias = 0``) by
    :data:`BLEND_PRIOR_ROWS`.

    Each validation row weighs ``rows / (classes * rows of its class)``, as macro-F1 weighs classes alike.  Scales
    stay >= 0: a negative scale (inverting a part) only fits noise.
    """
    from scipy.optimize import minimize
    from sklearn.utils.class_weight import compute_sample_weight

    outputs = recurrent.shape[1]
    logits = recurrent_logits(recurrent)
    weights = compute_sample_weight("balanced", targets)
    prior = np.concatenate([[0.0, scale], np.zeros(outputs)])
    strength = BLEND_PRIOR_ROWS / len(targets)  # Against the rows' mean loss.

    def loss(parameters):
        z = parameters[0] * logits + parameters[1] * wide + parameters[2:]
        return balanced_log_loss(z, targets, weights) + strength * float(np.sum((parameters - prior) ** 2))

    bounds = [(0.0, None), (0.0, None)] + [(None, None)] * outputs
    best = minimize(loss, prior, method="L-BFGS-B", bounds=bounds).x
    return best[:2].astype(np.float32), best[2:].astype(np.float32)


def blended(recurrent: np.ndarray, wide: np.ndarray, scales: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[rows, classes]`` probabilities of :class:`textclf.model.layers.Blend`, in NumPy (the binary head's
    one sigmoid ``p`` as ``[1 - p, p]``, as ``class_probabilities`` gives it)."""
    z = scales[0] * recurrent_logits(recurrent) + scales[1] * wide + bias
    if recurrent.shape[1] == 1:
        positive = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        return np.concatenate([1.0 - positive, positive], axis=1)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def choose_blend(recurrent: np.ndarray, wide: np.ndarray, targets: np.ndarray, scale: float = 1.0):
    """``(scales, bias, {"recurrent": macro-F1, "tfidf": macro-F1, "blend": macro-F1})`` on the validation rows.

    The calibrated linear part alone (``[0, scale]``, bias 0) when the recurrent part alone trails it by more than
    :data:`MAX_RECURRENT_SHORTFALL` (a member much weaker than the other adds noise, not signal), or when the
    fitted blend (:func:`blend_weights`) does not score a higher validation macro-F1 than the linear part alone
    and win clearly more validation rows than it loses (:func:`_clearly_better`).  The recurrent part alone is
    not a candidate of its own: chosen so on 100 validation rows (the epoch chosen on them too) it lost 0.02
    held-out macro-F1 (docs/RESULTS.md); only a fitted blend that gives the linear part no weight leaves it out.
    ``scale``: the linear part's temperature (:func:`temperature`).
    """
    parts = {"recurrent": macro_f1(recurrent, targets, logits=False), "tfidf": macro_f1(wide, targets, logits=True)}
    outputs, linear = recurrent.shape[1], predicted_classes(wide)
    alone = np.array([0.0, scale], np.float32), np.zeros(outputs, np.float32)
    if parts["recurrent"] < parts["tfidf"] - MAX_RECURRENT_SHORTFALL:
        return (*alone, {**parts, "blend": parts["tfidf"]})
    scales, bias = blend_weights(recurrent, wide, targets, scale)
    probabilities = blended(recurrent, wide, scales, bias)
    score = macro_f1(probabilities, targets, logits=False)
    if score <= parts["tfidf"] or not _clearly_better(probabilities.argmax(axis=1), linear, targets):
        return (*alone, {**parts, "blend": parts["tfidf"]})
    return scales, bias, {**parts, "blend": score}


def predicted_classes(outputs: np.ndarray, logits: bool = True) -> np.ndarray:
    """Class indices of ``outputs`` [rows, outputs]: logits, or the recurrent head's probabilities."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > (0.0 if logits else 0.5)).astype(np.int64)
    return outputs.argmax(axis=1)


def _clearly_better(blend: np.ndarray, linear: np.ndarray, targets: np.ndarray) -> bool:
    """Whether the blend's predictions beat the linear part's on more rows than they lose by over one standard
    error of that difference (McNemar's, ``sqrt(won + lost)``).  The blend's weights and the epoch are chosen on
    these same rows, so a smaller gain is as likely their noise; on rt_polarity such blends lost held-out
    macro-F1 (docs/RESULTS.md)."""
    won = int(np.count_nonzero((blend == targets) & (linear != targets)))
    lost = int(np.count_nonzero((linear == targets) & (blend != targets)))
    return won - lost > np.sqrt(won + lost)


def macro_f1(outputs: np.ndarray, targets: np.ndarray, logits: bool) -> float:
    """Macro-F1 of ``outputs`` (probabilities, or logits) [rows, outputs] against class indices ``targets``."""
    from sklearn.metrics import f1_score

    return float(f1_score(targets, predicted_classes(outputs, logits), average="macro"))
