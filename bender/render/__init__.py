"""Turning generated tensors into pictures and videos (no decisions about what to render)."""
