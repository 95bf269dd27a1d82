"""The error a user can fix: bad input, a damaged file, settings that cannot work.

``TextclfError`` is a ``ValueError`` (scikit-learn's and Keras's convention for bad arguments), so callers that
catch ``ValueError`` keep working.  The command line turns it into one line and exit status 2; any other
exception is a bug in textclf and keeps its traceback (exit status 1).
"""


class TextclfError(ValueError):
    """Bad input or settings, with a message naming the argument, file or line and what was expected."""
