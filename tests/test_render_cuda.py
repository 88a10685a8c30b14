"""Rendering on a CUDA GPU (skipped without one; benchmarks/gpu_check.sh runs these): the pipelined
path (next batch queued before the current one's pinned copy is waited for) gives exactly the frames
of one-batch-at-a-time generation, with animated weights, bends and noise changing between batches."""

from __future__ import annotations

import numpy as np
import pytest

from bender.latent import script as S
from bender.latent.walk import Walk
from bender.render.frames import plan_batches, render_batch, render_frames

pytestmark = pytest.mark.cuda


def test_pipelined_frames_match_batch_by_batch(fixtures_dir, tmp_path):
    pkl = fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl"
    text = f"""
model: {pkl}
model_b: {pkl}
frames: 5
loop: true
noise: random
batch: 4
bends:
  - {{name: spin, layer: synthesis.b16.conv0, op: rotate, degrees: 45, amount: 0.0}}
keyframes:
  - seed: 1
  - {{seed: 2, alpha: 0.7, bends: {{spin: 1.0}}}}
  - {{seed: 3, alpha: 0.2, psi: 0.6}}
"""
    walk = Walk(S.loads(text), device="cuda")
    one_by_one = [p for b in plan_batches(walk) for p in render_batch(walk, b)]
    for prefetch in (0, 2):
        frames = list(render_frames(Walk(S.loads(text), device="cuda"), prefetch=prefetch))
        assert len(frames) == len(one_by_one) == 15
        assert all(np.array_equal(a, b[0]) for a, b in zip(frames, one_by_one))
