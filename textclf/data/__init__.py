"""Reading labelled data: formats, decoding, the in-memory ``Dataset``, streaming a file and counting it."""
