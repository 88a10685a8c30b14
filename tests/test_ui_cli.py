"""`bender ui` as a user starts it: a real process, on loopback, with optional auth."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bender.cli import main
from tests.ui_support import fixture_pkl, free_port

pytestmark = pytest.mark.timeout(300)


def start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "bender", "ui", *args, "--work-dir", str(tmp_path / "work")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if "bender ui running at " in line:
            return proc, line.split("running at ")[1].split()[0]
    stop(proc)
    raise AssertionError("bender ui did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (Linux /proc/net/tcp, hex little-endian)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                out.add(addr)
    return out


@pytest.mark.slow
def test_ui_serves_on_loopback_only_and_asks_for_the_password(tmp_path, fixtures_dir):
    """One process (starting gradio costs ~15 s here): default host, --auth with ':' in the password."""
    port = free_port()
    proc, url = start([str(fixture_pkl(fixtures_dir)), "--port", str(port), "--auth", "artist:pa:ss"], tmp_path)
    try:
        assert url == f"http://127.0.0.1:{port}/"
        if os.path.exists("/proc/net/tcp"):
            assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 and nothing else
        assert httpx.get(url + "config", timeout=30).status_code in (401, 403)
        with httpx.Client(timeout=30) as http:
            bad = http.post(url + "login", data={"username": "artist", "password": "nope"})
            assert bad.status_code >= 400
            good = http.post(url + "login", data={"username": "artist", "password": "pa:ss"})
            assert good.status_code == 200
            config = http.get(url + "config").json()
            assert config["analytics_enabled"] is False and config["title"] == "bender"
            assert not config.get("share_url")
            assert "<!doctype html>" in http.get(url).text.lower()
    finally:
        stop(proc)
    assert proc.returncode is not None


def test_cli_errors_are_one_line(tmp_path):
    # `bender ui` points GRADIO_TEMP_DIR at its work dir; keep that out of this test process, whose
    # other in-process servers already fixed their cache folder.
    runner = CliRunner(env={"GRADIO_TEMP_DIR": str(tmp_path / "gradio-cache")})
    for args, message in ((["ui", "--auth", "nopassword"], "--auth takes USER:PASSWORD"),
                          (["ui", str(tmp_path / "missing.pkl")], "no such file or folder"),
                          (["ui", "--models-dir", str(tmp_path / "nowhere")], "no such folder")):
        result = runner.invoke(main, args)
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
