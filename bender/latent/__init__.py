"""Latent-space tools: seeds, paths, planes, blends, bends, walk scripts (no video writing here)."""
