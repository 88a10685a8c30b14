"""UI responsiveness and load, measured through a live server on loopback with gradio_client.

    python benchmarks/ui_load.py                         # CPU, the embedded default model (or a stand-in)
    python benchmarks/ui_load.py --device cuda --resolution 1024   # GPU target, 1024² stand-in
    python benchmarks/ui_load.py --clients 16 --requests 20        # the load test of issue 8

Measures, each as seen by a client (request sent -> picture's file ready):
- `explore`: one visitor changing the seed, one request at a time (median / p95);
- `plane map 5x5`: the plane tab's grid of thumbnails (new axes, and panning the same plane);
- `plane click`: going to a point of the map (the point's picture, large);
- `bend`: moving a network bend's amount slider (live re-render with the bend applied);
- load: `--clients` visitors at once, `--requests` seed changes each: errors, median / p95 latency,
  requests/s and how many pictures the server rendered per forward pass.

Targets (issue 8): CPU + default model: slider/click <= 300 ms median, 5x5 map <= 2 s;
GPU + 1024² model: <= 150 ms median; load test: 0 errors.

Without the embedded default model (it ships last) the script builds a stand-in with the same
architecture (64², z = w = 512, 8 mapping layers, channel_base 8192, channel_max 512) and random
weights; speed does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bender.io import Model, default_model_path, save_model  # noqa: E402
from bender.nets import Generator, GeneratorConfig, MappingConfig, SynthesisConfig  # noqa: E402


def stand_in_model(resolution: int, folder: Path) -> Path:
    channel_base = 8192 if resolution <= 64 else 16384 if resolution <= 256 else 32768
    cfg = GeneratorConfig(z_dim=512, w_dim=512, img_resolution=resolution, mapping=MappingConfig(num_layers=8),
                          synthesis=SynthesisConfig(channel_base=channel_base, channel_max=512, num_fp16_res=4,
                                                    conv_clamp=256))
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    path = folder / f"stand-in-{resolution}.safetensors"
    save_model(Model(G_ema=G), path, parts=("G_ema",))
    return path


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def timed(fn, n: int, warmup: int = 2) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(warmup + i)
        out.append(time.perf_counter() - t)
    return out


def measure(url: str, key: str, clients: int, requests: int, repeats: int, device: str) -> dict:
    """The client side (run in its own process, so client threads do not steal the server's GIL)."""
    from gradio_client import Client

    rows: list[list[str]] = []

    def single(name: str, call, target: str, n: int = repeats) -> None:
        times = timed(call, n)
        rows.append([name, f"{statistics.median(times) * 1000:.0f}", f"{percentile(times, 95) * 1000:.0f}", target])

    c = Client(url, analytics_enabled=False, verbose=False)
    target = "<= 150 ms median" if device.startswith("cuda") else "<= 300 ms median"
    c.predict(key, api_name="/model_info")
    no_mix = (False, 1, "8-")
    single("explore: change seed", lambda i: c.predict(key, 1000 + i, 0.7, 0, "const", None, *no_mix,
                                                      api_name="/explore"), target)
    single("explore: move psi", lambda i: c.predict(key, 7, (i % 20) / 10 - 0.5, 0, "const", None, *no_mix,
                                                   api_name="/explore"), target)
    # a new plane each time (seeds change): the map's cost including the plane's construction
    single("plane: map 5x5 (new axes)", lambda i: c.predict(key, "seeds", 10 + i, 20 + i, 30 + i, 0, 0, 1.0, 0.7,
                                                              None, api_name="/plane_map"), "<= 2 s",
           n=max(5, repeats // 4))
    single("plane: map 5x5 (pan)", lambda i: c.predict(key, "seeds", 10, 20, 30, i / 10, 0, 1.0, 0.7, None,
                                                         api_name="/plane_map"), "<= 2 s", n=max(5, repeats // 4))
    single("plane: click a point", lambda i: c.predict((i % 10) / 10, 0.3, False, api_name="/plane_goto"), target)
    ones = [1.0] * 9

    def bend(i: int):
        return c.predict(key, "(none: bends only)", 0.0, *ones, "synthesis.b16.conv1", "rotate", "",
                         ((i % 30) - 10) / 10, 1.0, "", True, 7, 0.7, 0, "const", None, False, 1, "8-",
                         api_name="/bend_image")

    single("bend: move a bend's amount", bend, target)

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def visitor(v: int) -> None:
        try:
            cl = Client(url, analytics_enabled=False, verbose=False)
        except Exception as e:  # noqa: BLE001 - counted, not raised
            with lock:
                errors.append(f"connect: {e}")
            return
        for r in range(requests):
            t = time.perf_counter()
            try:
                cl.predict(key, v * 1000 + r, 0.7, 0, "const", None, False, 1, "8-", api_name="/explore")
                with lock:
                    latencies.append(time.perf_counter() - t)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(str(e))

    start = time.perf_counter()
    threads = [threading.Thread(target=visitor, args=(v,)) for v in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rows": rows, "latencies": latencies, "errors": errors, "wall": time.perf_counter() - start}


def render_only(ctx, key: str, repeats: int) -> list[list[str]]:
    """The same pictures rendered in the server process without HTTP: the render queue, the
    generator and the PNG encoding Gradio does (what a faster client or network cannot remove)."""
    import io

    from bender.latent.planes import Plane, grid_coords
    from bender.ui.pictures import Picture, Weights

    def png(im) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "png", pnginfo=None)
        return buf.getvalue()

    w = Weights(model=key)
    G = ctx.library.get(key).G
    plane = Plane.from_seeds(G, [1, 2, 3])
    uv = grid_coords(5, 5, 1.0)
    thumb = min(G.img_resolution, 128)
    rows = []
    cases = [("explore picture", lambda i: [png(im) for im in ctx.paint(Picture(w, seed=i, psi=0.7))]),
             ("plane map 5x5", lambda i: ctx.paint(*[Picture(w, ws=x, psi=0.7, size=thumb if thumb < G.img_resolution
                                                             else None) for x in plane.points(uv + i / 10)]))]
    for name, fn in cases:
        times = timed(fn, repeats if "map" not in name else max(5, repeats // 4))
        rows.append([f"{name} (render only)", f"{statistics.median(times) * 1000:.0f}",
                     f"{percentile(times, 95) * 1000:.0f}", ""])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resolution", type=int, default=None, help="use a stand-in of this resolution")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=20, help="single-visitor measurements per row")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in the server (default: torch's)")
    ap.add_argument("--client-cpus", default=None, help="pin the client process to these CPUs, e.g. 2-15")
    ap.add_argument("--client-of", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client_cpus and hasattr(os, "sched_setaffinity") and args.client_of:
        lo, _, hi = args.client_cpus.partition("-")
        os.sched_setaffinity(0, range(int(lo), int(hi or lo) + 1))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.client_of:
        result = measure(*args.client_of, args.clients, args.requests, args.repeats, args.device)
        print("RESULT " + json.dumps(result))
        return

    from bender.ui.config import UIConfig
    from bender.ui.server import serve

    tmp = Path(tempfile.mkdtemp(prefix="bender-ui-bench-"))
    if args.resolution is None and default_model_path().exists():
        model, model_name = "default", "embedded default (64²)"
    else:
        res = args.resolution or 64
        model = str(stand_in_model(res, tmp))
        model_name = f"stand-in {res}² ({'default architecture' if res == 64 else 'NVIDIA config'})"
    server = serve(UIConfig(models=[model], device=args.device, work_dir=tmp / "work"), port=None)
    key = server.ctx.library.default_key()
    queue = server.ctx.queue
    try:
        own = render_only(server.ctx, key, args.repeats)
        cmd = [sys.executable, __file__, "--client-of", server.url, key, "--device", args.device,
               "--clients", str(args.clients), "--requests", str(args.requests), "--repeats", str(args.repeats)]
        if args.client_cpus:
            cmd += ["--client-cpus", args.client_cpus]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        server.close()
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])

    gpu = f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else ""
    print(f"\nbender ui on {args.device}{gpu} ({torch.get_num_threads()} torch threads), model: {model_name}\n")
    print("| measurement | median ms | p95 ms | target |")
    print("|---|---:|---:|---|")
    for row in result["rows"] + own:
        print("| " + " | ".join(row) + " |")
    latencies, errors = result["latencies"], result["errors"]
    n = len(latencies)
    print(f"\nload: {args.clients} clients x {args.requests} requests, loopback\n")
    print("| requests | errors | median ms | p95 ms | requests/s | pictures per forward pass |")
    print("|---:|---:|---:|---:|---:|---:|")
    med = statistics.median(latencies) * 1000 if n else float("nan")
    p95 = percentile(latencies, 95) * 1000 if n else float("nan")
    print(f"| {n + len(errors)} | {len(errors)} | {med:.0f} | {p95:.0f} | {n / result['wall']:.1f} | "
          f"{queue.items_run / max(queue.batches_run, 1):.1f} |")
    if errors:
        print("\nfirst errors:", *errors[:5], sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
