"""The UI's non-Gradio parts: model catalogue and uploads, the render queue, the network guard."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bender.errors import BenderError
from bender.ui.batcher import RenderQueue
from bender.ui.library import ModelLibrary
from bender.ui.netguard import NetGuard, guarded, is_loopback
from tests.ui_support import fixture_pkl, make_run, save_pair

# -- catalogue ----------------------------------------------------------------------------------


def test_catalogue_lists_files_runs_and_rescans_the_models_folder(tmp_path, fixtures_dir):
    models = tmp_path / "models"
    original, tuned = save_pair(fixtures_dir, models)
    make_run(fixtures_dir, models / "rocks-run", kimgs=(0.0, 4.0))
    lib = ModelLibrary([str(fixture_pkl(fixtures_dir, "sg2ada-res64-fp16-cond"))], models_dir=models,
                       device="cpu", uploads_dir=tmp_path / "up")
    labels = [label for label, _ in lib.choices()]
    assert "sg2ada-res64-fp16-cond.pkl" in labels and "original.safetensors" in labels
    assert "rocks-run @ 0 kimg" in labels and "rocks-run @ 4 kimg" in labels
    assert [r.label for r in lib.runs()] == ["rocks-run"]
    # dropped in while running: appears on the next listing
    (models / "late.safetensors").write_bytes(original.read_bytes())
    assert "late.safetensors" in [label for label, _ in lib.choices()]
    # keys are opaque and only catalogue keys load
    assert all("/" not in key for _, key in lib.choices())
    with pytest.raises(BenderError, match="not in the list"):
        lib.get("/etc/passwd")


def test_loaded_model_is_cached_and_described_with_lineage(tmp_path, fixtures_dir):
    original, tuned = save_pair(fixtures_dir, tmp_path)
    lib = ModelLibrary([str(tuned)], device="cpu", cache_size=1)
    key = lib.default_key()  # the model named, not the embedded default listed first
    assert key == [k for label, k in lib.choices() if label == tuned.name][0]
    loaded = lib.get(key)
    assert lib.get(key) is loaded
    text = loaded.describe_markdown()
    assert "32×32 RGB, unconditional" in text and "12 kimg" in text and "dataset rocks" in text
    assert "fine-tuned from" in text
    assert loaded.model.D is None and not loaded.G.training


def test_missing_paths_and_empty_folders_are_one_line_errors(tmp_path):
    with pytest.raises(BenderError, match="no such file"):
        ModelLibrary([str(tmp_path / "nope.pkl")], device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenderError, match="without checkpoints"):
        ModelLibrary([str(tmp_path / "empty")], device="cpu")
    with pytest.raises(BenderError, match="no such folder"):
        ModelLibrary([], models_dir=tmp_path / "missing", device="cpu")
    with pytest.raises(BenderError, match="pick a model"):
        ModelLibrary([], device="cpu").get(None)


def test_uploads_are_size_limited_and_loaded_only_through_the_safe_loader(tmp_path, fixtures_dir):
    up = tmp_path / "uploads"
    lib = ModelLibrary([], device="cpu", uploads_dir=up, max_upload_bytes=2_000_000)
    pkl = fixture_pkl(fixtures_dir)
    entry = lib.add_upload(pkl, "my model.pkl")
    assert entry.kind == "upload" and entry.label == "upload: my model.pkl"
    assert lib.get(entry.key).resolution == 32
    assert (entry.key, entry.label) in [(k, label) for label, k in lib.choices()]
    assert lib.add_upload(pkl, "again.pkl").key == entry.key  # same bytes: same entry

    small = ModelLibrary([], device="cpu", uploads_dir=up, max_upload_bytes=1000)
    with pytest.raises(BenderError, match="accepts uploads up to"):
        small.add_upload(pkl)

    before = set(up.iterdir())
    for hostile in ("hostile-exec.pkl", "hostile-reduce.pkl"):
        with pytest.raises(BenderError, match=f"^{hostile}: .*(not allowed|hostile)"):
            lib.add_upload(fixtures_dir / "hostile" / hostile)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello, not a model")
    with pytest.raises(BenderError, match="not a model"):
        lib.add_upload(junk)
    assert set(up.iterdir()) == before  # refused files are not kept


# -- render queue -------------------------------------------------------------------------------


def test_render_queue_batches_waiting_jobs_by_key_and_isolates_errors():
    q = RenderQueue(max_batch=8)
    calls = []
    gate = threading.Event()

    class Renderer:  # handlers pass bound methods: a fresh object on every attribute access
        def render(self, key, items):
            return fn(key, items)

    def fn(key, items):
        calls.append((key, list(items)))
        if key == "slow":
            gate.wait(5)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {items}")
        return [i * 10 for i in items]

    # Block the worker on one job, queue up many, then release: they must come in few batches.
    blocker = threading.Thread(target=q.submit, args=(fn, "slow", 0))
    blocker.start()
    time.sleep(0.2)
    results, errors = {}, {}

    renderer = Renderer()

    def user(key, item):
        try:
            results[(key, item)] = q.submit(renderer.render, key, item)
        except ValueError as e:
            errors[(key, item)] = str(e)

    threads = [threading.Thread(target=user, args=(k, i)) for k in ("a", "b") for i in (1, 2, 3, -1)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in [blocker, *threads]:
        t.join(10)
    assert results == {(k, i): i * 10 for k in ("a", "b") for i in (1, 2, 3)}
    assert set(errors) == {("a", -1), ("b", -1)} and "negative" in errors[("a", -1)]
    batched = [(k, items) for k, items in calls if len(items) > 1]
    assert sorted(k for k, _ in batched) == ["a", "b"]  # one shared batch per key before the retry
    assert all(len(items) == 4 for _, items in batched)
    assert q.submit_many(fn, [("c", 5), ("c", 6)]) == [50, 60]


# -- network guard ------------------------------------------------------------------------------


def test_loopback_detection():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.5.0.1", "::1", "localhost", "0.0.0.0", "::ffff:127.0.0.1"))
    assert not any(is_loopback(h) for h in ("8.8.8.8", "10.0.0.1", "example.com", "2001:db8::1"))


def test_guard_refuses_outbound_and_allows_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with guarded(enforce=True) as guard:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
            with pytest.raises(PermissionError, match="no outbound"):
                socket.create_connection(("192.0.2.1", 80), timeout=0.5)
            with pytest.raises(PermissionError):
                socket.getaddrinfo("example.com", 443)
            s = socket.socket()
            with pytest.raises(PermissionError):
                s.connect_ex(("192.0.2.1", 80))
            s.close()
        assert "lookup example.com" in guard.attempts and "connect 192.0.2.1" in guard.attempts
        assert not any("127.0.0.1" in a for a in guard.attempts)
    # uninstalled afterwards
    assert socket.socket.connect is not None and NetGuard().attempts == []
    assert "guarded" not in repr(socket.getaddrinfo)


def test_embedded_default_model_comes_first_when_installed(tmp_path, fixtures_dir, monkeypatch):
    import importlib

    import bender.ui.library as library

    io_load = importlib.import_module("bender.io.load")  # (bender.io.load the attribute is the function)

    assert library.ModelLibrary([], device="cpu").default_key() in (None, library.DEFAULT_KEY)
    original, _ = save_pair(fixtures_dir, tmp_path)
    monkeypatch.setattr(library, "default_model_path", lambda: original)
    monkeypatch.setattr(io_load, "default_model_path", lambda: original)
    lib = library.ModelLibrary([str(fixture_pkl(fixtures_dir))], device="cpu")
    assert lib.choices()[0] == ("default (embedded)", "default")
    assert lib.default_key() != "default"  # listed first, but the UI opens on the model the user named
    assert library.ModelLibrary([], device="cpu").default_key() == "default"
    assert lib.get("default").resolution == 32
    from bender.ui.walks import model_ref

    assert model_ref(lib.entry("default")) == "default"  # scripts name it portably
