#!/usr/bin/env bash
# Wheels for the GPU machine's image (Python 3.12, no internet there): the web UI's packages, so that
# benchmarks/gpu_check.sh can measure the UI at 1024² (issue 8). Run here, where pip reaches the
# registry; the wheels land in .whl/ (git-ignored; name it in the device call's carry, ~36 MiB).
# gpu_check.sh installs whatever it finds there into /tmp/site first.
#
# The list is gradio's whole dependency closure for Python 3.12 (`pip install --dry-run --report` with
# the device's platform) minus the packages the GPU image already has (the device library's
# KINDS.md: anyio, httpx, huggingface-hub, jinja2, pandas, typer, ...). Re-derive it when gradio moves:
# a missing one (fastapi's opentelemetry-api, 2026-11-27) makes `import gradio` fail there.
# imageio-ffmpeg (68 MB) does not fit beside them: the render benchmark's mp4 column is skipped
# there, its raw-G and render columns do not need it.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d .whl \
  gradio==6.31.0 gradio_client==2.7.2 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.54.0 pydantic==2.14.4 \
  pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 orjson==3.13.0 python-multipart==0.0.34 \
  safehttpx==0.1.7 semantic-version==2.10.0 tomlkit==0.14.0 groovy==0.1.2 hf-gradio==0.4.1 pydub==0.25.1 \
  brotli==1.2.1 opentelemetry-api==1.45.2 httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5 pytz==2026.6 \
  tzdata==2026.6
du -sh .whl
