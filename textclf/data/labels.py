"""Multi-label rows: a row's label field holds its labels separated by ``label_sep``.

``"sport|politics"`` is two labels; the fastText reader joins several
``__label__`` tags the same way.
"""

from __future__ import annotations

import numpy as np
from textclf.errors import TextclfError


def row_labels(label: str, separator: str) -> list[str]:
    """One row's labels: ``label`` split on ``separator``, stripped, without duplicates, in first-seen order.

    Example:
        >>> row_labels("sport| politics|sport", "|")
        ['sport', 'politics']
    """
    return list(dict.fromkeys(part.strip() for part in label.split(separator) if part.strip()))


def label_sets(labels, separator: str, source: str = "data") -> list[list[str]]:
    """Each row's labels (:func:`row_labels`).

    Raises:
        ValueError: naming the first row that has no label after splitting.
    """
    sets = []
    for row, label in enumerate(labels, start=1):
        names = row_labels(label, separator)
        if not names:
            # Rows are counted among those kept (a text and a label), not by file line: the label is quoted to find it.
            raise TextclfError(f"{source}: row {row} (counting rows with a text and a label) has no label after "
                             f"splitting {label!r} on {separator!r}")
        sets.append(names)
    return sets


def multi_hot(sets, classes) -> np.ndarray:
    """float32 ``[rows, classes]`` with 1 where the row has the class."""
    position = {name: index for index, name in enumerate(classes)}
    targets = np.zeros((len(sets), len(classes)), dtype=np.float32)
    for row, names in enumerate(sets):
        targets[row, [position[name] for name in names]] = 1.0
    return targets
