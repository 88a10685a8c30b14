"""Multi-process training: two gloo processes on CPU (through torchrun) must compute what one
process computes with the same global batch split into two accumulation rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bender.train import checkpoint as ckpt
from tests.train_fixtures import TINY_ARCH, make_dataset


def test_two_gloo_processes_match_one_process(tmp_path):
    data = make_dataset(tmp_path / "blobs.zip", count=16)
    common = dict(kimg=0.024, snap=0.024, batch=8, aug_p=0.4, ada_kimg=1.0, ada_interval=2, pl_interval=2,
                  r1_interval=2, tick=60)
    flags = ["--no-timeline", "--conv-clamp", "0", "--preset", "scratch", "--device", "cpu", "--data", str(data)]
    for key, value in {**common, **TINY_ARCH}.items():
        if key != "conv_clamp":
            flags += [f"--{key.replace('_', '-')}", str(value)]
    # Both runs single-threaded: CPU kernels may split their sums differently by thread count.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}

    def run(*launcher: str, out: str, extra: tuple[str, ...] = ()) -> dict:
        cmd = [sys.executable, *launcher, "-m", "bender", "train", "--out", str(tmp_path / out), *flags, *extra]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    single = run(out="one", extra=("--batch-gpu", "4"))  # one process, two accumulation rounds of 4
    double = run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", out="two")
    one_run, two_run = Path(single["run"]), Path(double["run"])
    config = json.loads((two_run / "config.json").read_text())
    assert config["resolved"]["world"] == 2 and config["resolved"]["batch_gpu"] == 4

    # Per-round gradients are summed in the order the all-reduce sums them, so the runs agree exactly.
    ours, theirs = load_file(single["snapshot"]), load_file(double["snapshot"])
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(theirs[key], ours[key]), key
    start = load_file(str(ckpt.snapshot_path(one_run, 0.0)))
    assert any(not torch.equal(ours[k], start[k]) for k in ours if k.startswith("G."))  # it trained
    rec_one, rec_two = ckpt.read_stats(one_run)[-1], ckpt.read_stats(two_run)[-1]
    for key in ("Loss/G/main", "Loss/D/real", "Loss/D/fake", "Loss/D/r1", "Loss/G/pl", "augment_p", "pl_mean"):
        assert rec_two[key] == pytest.approx(rec_one[key], rel=1e-6, abs=1e-7), key
