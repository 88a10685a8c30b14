"""The offline demo: the lecture's faces -> rocks bend, end to end, on the embedded default model."""
