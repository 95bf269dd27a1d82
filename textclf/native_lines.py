"""TensorFlow's C++ start-up lines (CUDA probing, oneDNN, CPU features), discarded.

TensorFlow's libraries write them to file descriptor 2 while they load, before ``TF_CPP_MIN_LOG_LEVEL`` applies, so
no setting silences them: :func:`discarded` points fd 2 at a temporary file meanwhile.  :func:`quiet_import`
makes every later ``import tensorflow`` (by textclf, Keras or the program) discard them, so the Python API and
notebooks show them no more than the command line does; ``TF_CPP_MIN_LOG_LEVEL=0`` keeps them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile

from textclf.errors import TextclfError


@contextlib.contextmanager
def discarded(verbose: bool = False):
    """Discards what C++ writes to file descriptor 2 meanwhile; ``verbose`` keeps it.

    Should the block fail unexpectedly, what was written is shown with the traceback.  A :class:`TextclfError` (a
    damaged export, bad input) already says what is wrong in the one line the user gets, and so does Ctrl-C, so
    the start-up lines stay discarded.
    """
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except (TextclfError, KeyboardInterrupt):  # The user's one line says it all.
            raise
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _DiscardingLoader(importlib.abc.Loader):
    """``tensorflow``'s own loader, its module run with the start-up lines discarded."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # Resources, source: as the wrapped loader.
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with discarded(verbose=_showing()):
            self._loader.exec_module(module)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python does, once, and gives it the discarding loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # Once is enough: TensorFlow stays imported.
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _DiscardingLoader(spec.loader)
        return spec


_shown = False  # textclf --verbose: TensorFlow's start-up lines wanted.


def _showing() -> bool:
    return _shown or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0"


@contextlib.contextmanager
def shown():
    """TensorFlow's start-up lines shown if it is imported meanwhile (``textclf --verbose``)."""
    global _shown
    previous, _shown = _shown, True
    try:
        yield
    finally:
        _shown = previous


def quiet_import() -> None:
    """Makes the next ``import tensorflow`` discard the start-up lines (once, when TensorFlow is not imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(finder, _TensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder())
