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
from bender.train.config import make_config
from bender.train.loop import train
from tests.train_fixtures import TINY_ARCH, make_dataset


def test_two_gloo_processes_match_one_process(tmp_path):
    data = make_dataset(tmp_path / "blobs.zip", count=16)
    common = dict(kimg=0.024, snap=0.024, batch=8, aug_p=0.4, ada_kimg=1.0, ada_interval=2, pl_interval=2,
                  r1_interval=2, tick=60, timeline=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like each worker below (CPU kernels may split sums by thread count)
    try:
        single = train(make_config("scratch", data=str(data), out=str(tmp_path / "one"), batch_gpu=4, **common,
                                   **TINY_ARCH), quiet=True)
    finally:
        torch.set_num_threads(threads)

    flags = []
    for key, value in {**common, **TINY_ARCH}.items():
        if key == "timeline":
            flags.append("--no-timeline")
        elif key == "conv_clamp":
            flags += ["--conv-clamp", "0"]
        else:
            flags += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bender",
           "train", "--data", str(data), "--out", str(tmp_path / "two"), "--preset", "scratch", "--device", "cpu",
           *flags]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])  # only rank 0 prints progress; both print JSON
    double_run = Path(info["run"])
    config = json.loads((double_run / "config.json").read_text())
    assert config["resolved"]["world"] == 2 and config["resolved"]["batch_gpu"] == 4

    # Per-round gradients are summed in the order the all-reduce sums them, so the runs agree exactly.
    ours, theirs = load_file(str(single.snapshot)), load_file(info["snapshot"])
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(theirs[key], ours[key]), key
    changed = [k for k in ours if k.startswith("G.") and not torch.equal(ours[k], load_file(
        str(ckpt.snapshot_path(single.run_dir, 0.0)))[k])]
    assert changed  # it trained
    rec_one, rec_two = ckpt.read_stats(single.run_dir)[-1], ckpt.read_stats(double_run)[-1]
    for key in ("Loss/G/main", "Loss/D/real", "Loss/D/fake", "Loss/D/r1", "Loss/G/pl", "augment_p", "pl_mean"):
        assert rec_two[key] == pytest.approx(rec_one[key], rel=1e-6, abs=1e-7), key
