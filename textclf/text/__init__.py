"""Text → ids: tokenization rules (Python and graph), the legacy-Keras ``Tokenizer``, ``encode`` and padding."""
