"""Walk scripts: YAML round trip, hashing, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bender.errors import BenderError
from bender.latent import script as S

BASIC = """
# a comment that must not change the hash
model: default
loop: true
frames: 12
psi: 0.7
keyframes:
  - seed: 1
  - {seed: 2, psi: 0.5, easing: sine, frames: 24}
  - 3
"""


def test_parse_defaults_and_shorthand():
    s = S.loads(BASIC)
    assert s.space == "w" and s.interpolation == "slerp" and s.fps == 24.0
    assert [k.seed for k in s.keyframes] == [1, 2, 3]
    assert s.keyframes[1].psi == 0.5 and s.keyframes[1].frames == 24 and s.keyframes[1].easing == "sine"
    assert isinstance(s.psi, float)


def test_hash_ignores_comments_and_formatting_and_round_trips():
    a = S.loads(BASIC)
    b = S.loads(BASIC.replace("# a comment that must not change the hash\n", "").replace("frames: 12", "frames:   12"))
    assert a.sha256() == b.sha256()
    again = S.loads(a.to_yaml(header="rendered by a test\nsecond line"))
    assert again.to_dict() == a.to_dict() and again.sha256() == a.sha256()
    c = S.loads(BASIC.replace("psi: 0.7", "psi: 0.71"))
    assert c.sha256() != a.sha256()


def test_int_and_float_spellings_hash_the_same():
    a = S.loads("keyframes: [1]\nfps: 24\npsi: 1\nbends: [{layer: synthesis.b8.conv1, op: rotate, degrees: 30}]")
    b = S.loads("keyframes: [1]\nfps: 24.0\npsi: 1.0\nbends: [{layer: synthesis.b8.conv1, op: rotate, degrees: 30.0}]")
    assert a.sha256() == b.sha256()


def test_relative_paths_resolve_against_the_script_folder(tmp_path):
    (tmp_path / "walk.yaml").write_text("model: models/g.pkl\nkeyframes: [{w: saved/w.npy}]\n")
    s = S.load(tmp_path / "walk.yaml")
    assert s.model == str((tmp_path / "models" / "g.pkl").resolve())
    assert Path(s.keyframes[0].w).is_absolute()
    assert S.loads("model: default\nkeyframes: [1]").model == "default"


@pytest.mark.parametrize(("text", "message"), [
    ("keyframes: [{sead: 1}]", "unknown key 'sead' (did you mean 'seed'?)"),
    ("interpolaton: lerp\nkeyframes: [1]", "did you mean 'interpolation'"),
    ("keyframes: []", "no keyframes"),
    ("keyframes: [{seed: 1, w: a.npy}]", "exactly one of seed, seeds, w, plane, points"),
    ("interpolation: bezier\nkeyframes: [1]", "interpolation must be one of"),
    ("fps: 0\nkeyframes: [1]", "fps must be"),
    ("frames: 0\nkeyframes: [1]", "frames must be a whole number >= 1"),
    ("keyframes: [{seed: 1, alpha: 0.5}]", "set model_b"),
    ("keyframes: [{seed: 1, t: 0.5}]", "set run"),
    ("keyframes: [{plane: [0, 1]}]", "need a `plane:` section"),
    ("space: z\nkeyframes: [{seed: 1, directions: {a: 1}}]", "need space: w"),
    ("keyframes: [{seed: 1, directions: {smile: 1}}]", "direction 'smile' is not defined"),
    ("keyframes: [{seed: 1, bends: {wobble: 1}}]", "no bend named 'wobble'"),
    ("keyframes: [{seeds: [1, 2]}, {seeds: [3]}]", "same number of images"),
    ("path: {kind: circle}\nkeyframes: [1]", "takes no keyframes"),
    ("path: {kind: spiral}", "path.kind must be one of"),
    ("bends: [{layer: x, op: twist}]\nkeyframes: [1]", "unknown bend op"),
    ("keyframes: [1]\npsi: high", "expected a number"),
    ("keyframes: [1]\nloop: yes please", "expected true or false"),
    ("keyframes: [1]\nplane: {seeds: [1, 2]}", "plane: give seeds"),
    ("model_b: b.pkl\nrun: r\nkeyframes: [1]", "not both"),
    ("keyframes: [1\n", "not valid YAML"),
    ("- just a list", "expected a mapping"),
])
def test_validation_messages(text, message):
    with pytest.raises(BenderError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("?", r"\?").replace("`", ".")):
        S.loads(text)


def test_seed_lists_accept_ranges():
    s = S.loads("keyframes: [{seeds: '0-3,7'}]")
    assert s.keyframes[0].seeds == [0, 1, 2, 3, 7]


def test_loop_paths_default_to_z():
    s = S.loads("path: {kind: noise-loop, frames: 10, tiles: 2}")
    assert s.space == "z" and s.path.tiles == 2
    with pytest.raises(BenderError, match="loops run in Z"):
        S.loads("space: w\npath: {kind: circle}")


def test_examples_are_valid_scripts():
    root = Path(__file__).resolve().parents[1] / "examples"
    for name in ("walk.yaml", "bend.yaml"):
        s = S.load(root / name)
        assert s.model == "default" and s.keyframes
