"""Hostile and broken files are refused with one-line errors; nothing they contain ever runs."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bender.errors import BenderError
from bender.io import export_nvidia, load, save_model
from bender.io.restricted import PersistentRecord, restricted_load

MARKERS = [Path(tempfile.gettempdir()) / "bender-fixture-pwned", Path(tempfile.gettempdir()) / "bender-fixture-pwned2"]


@pytest.fixture(autouse=True)
def no_markers():
    for m in MARKERS:
        m.unlink(missing_ok=True)
    yield
    found = [m for m in MARKERS if m.exists()]
    for m in found:
        m.unlink()
    assert not found, f"a hostile pickle ran code: {found}"


def test_hostile_exec_is_read_inertly_and_refused(fixtures_dir):
    data = (fixtures_dir / "hostile" / "hostile-exec.pkl").read_bytes()
    snapshot = restricted_load(data)  # reading is fine: module_src is only a string
    assert isinstance(snapshot["G"], PersistentRecord)
    assert "os.system" in snapshot["G"].meta["module_src"]
    with pytest.raises(BenderError, match="no weights"):
        load(fixtures_dir / "hostile" / "hostile-exec.pkl")


def test_hostile_reduce_is_refused_naming_the_global(fixtures_dir):
    with pytest.raises(BenderError, match=r"global os\.system is not allowed"):
        load(fixtures_dir / "hostile" / "hostile-reduce.pkl")


@pytest.mark.parametrize("payload", [
    pickle.dumps({"G": eval}),
    pickle.dumps({"G_ema": exec}, protocol=2),
    pickle.dumps({"G": os.system}, protocol=5),
])
def test_other_dangerous_globals_are_refused(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(BenderError, match="is not allowed"):
        load(path)


def test_truncated_pickle(tmp_path, fixtures_dir):
    data = (fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenderError, match="truncated or corrupt"):
        load(path)


@pytest.mark.parametrize("content,match", [
    (b"", "empty file"),
    (os.urandom(4096), "not a model file"),
    (b"PK\x03\x04" + b"\0" * 100, "zip archive"),
    (b"# just text\n", "not a model file"),
    (pickle.dumps([1, 2, 3]), "not an NVIDIA network snapshot"),
])
def test_wrong_files_get_one_line_errors(tmp_path, content, match):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(BenderError, match=match) as info:
        load(path)
    assert "\n" not in str(info.value)


def test_tensorflow_era_pickle_is_named(tmp_path):
    # The global TF-era StyleGAN2 pickles reference for their networks.
    data = b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01}q\x02b."
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(data)
    with pytest.raises(BenderError, match="TensorFlow-era"):
        load(path)


def test_truncated_safetensors(tmp_path, fixtures_dir):
    model = load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")
    path = save_model(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(BenderError, match="truncated|damaged"):
        load(cut)


def _walk_equal(a, b, path="") -> int:
    """Structural equality of two restricted-loaded snapshots; returns the number of tensors compared."""
    if isinstance(a, torch.Tensor):
        assert type(a) is type(b), path
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride(), path
        assert a.requires_grad == b.requires_grad, path
        assert torch.equal(a, b), path  # bit-exact for finite values
        return 1
    if isinstance(a, PersistentRecord):
        return _walk_equal(a.meta, b.meta, path)
    if isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b), path
        return sum(_walk_equal(a[k], b[k], f"{path}.{k}") for k in a)
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path
        return sum(_walk_equal(x, y, f"{path}.{i}") for i, (x, y) in enumerate(zip(a, b)))
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), path
        return 0
    assert type(a) is type(b) and a == b, (path, a, b)
    return 0


@pytest.mark.parametrize("case", ["sg2ada-res32-fp32", "sg2ada-res64-fp16-cond", "sg2ada-res32-orig-skipD",
                                  "sg3-stylegan2-res32"])
def test_pkl_to_safetensors_to_pkl_is_lossless(tmp_path, fixtures_dir, case):
    src = fixtures_dir / "networks" / f"{case}.pkl"
    model = load(src)
    st = save_model(model, tmp_path / "m.safetensors")
    again = load(st)
    out = tmp_path / "back.pkl"
    export_nvidia(again, out)
    a = restricted_load(src.read_bytes())
    b = restricted_load(out.read_bytes())
    assert _walk_equal(a, b) > 100
    assert list(a) == list(b)  # top-level key order, as NVIDIA wrote it
    # and the lineage survives the native hop
    assert again.lineage.source_sha256 == model.lineage.source_sha256


def test_export_carries_changed_weights_and_augment_p(tmp_path, fixtures_dir):
    model = load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")
    with torch.no_grad():
        model.G_ema.mapping.fc0.bias.add_(0.5)
    model.augment_p = 0.125
    out = tmp_path / "tuned.pkl"
    export_nvidia(model, out)
    snap = restricted_load(out.read_bytes())
    bias = snap["G_ema"].children()["mapping"].children()["fc0"].state["_parameters"]["bias"]
    assert torch.equal(bias, model.G_ema.mapping.fc0.bias)
    assert float(snap["augment_pipe"].state["_buffers"]["p"]) == 0.125
    reloaded = load(out)
    assert torch.equal(reloaded.G_ema.mapping.fc0.bias, model.G_ema.mapping.fc0.bias)


def test_models_not_from_nvidia_cannot_be_exported(tmp_path):
    from bender.io.model import Model
    from bender.nets import Generator, GeneratorConfig, MappingConfig, SynthesisConfig

    g = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping=MappingConfig(num_layers=1),
                                  synthesis=SynthesisConfig(channel_base=64, channel_max=8)))
    with pytest.raises(BenderError, match="did not come from an NVIDIA pickle"):
        export_nvidia(Model(G_ema=g), tmp_path / "x.pkl")


def test_models_from_nvidia_pickles_can_be_cloned(fixtures_dir):
    model = load(fixtures_dir / "networks" / "sg2ada-res32-fp32.pkl")
    copy = model.clone()
    assert copy.nvidia is not model.nvidia
    assert torch.equal(copy.G_ema.mapping.w_avg, model.G_ema.mapping.w_avg)


def test_safetensors_header_lengths_that_look_like_pickle_opcodes(tmp_path, fixtures_dir):
    """A 640-byte header starts with bytes 0x80 0x02, like a pickle's PROTO 2."""
    import json
    import struct

    from bender.io.load import sniff

    header = json.dumps({"__metadata__": {"format": "x"}}).encode()
    header += b" " * (640 - len(header))
    data = struct.pack("<Q", 640) + header
    assert data[:2] == b"\x80\x02"
    assert sniff(data) == "safetensors"
