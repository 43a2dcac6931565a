"""docs/serving.md's gradio_client example, run against a live `photodialog serve` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import FAST_FLAGS, free_port

REPO = Path(__file__).resolve().parents[2]
SERVING_DOC = REPO / "docs" / "serving.md"
EXAMPLE = re.compile(r"<!-- gradio-client example.*?-->\n```python\n(.*?)```\n<!-- end of gradio-client example -->", re.S)


@pytest.fixture
def served(tiny_run, tmp_path):
    """`photodialog serve` in a process of its own; its URL. Stopped (SIGTERM) after the test."""
    pytest.importorskip("gradio")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    server = subprocess.Popen([sys.executable, "-m", "photodialog", "serve", "--checkpoint", str(tiny_run), "--port", str(port),
                               "--out", str(tmp_path / "served"), *FAST_FLAGS], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        deadline = time.monotonic() + 300
        for line in server.stdout:
            lines.append(line)
            if "serving the chat page at" in line or time.monotonic() > deadline:
                break
        assert any("serving the chat page at" in line for line in lines), "".join(lines)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_documented_example_chats_and_saves_through_gradio_client(served, tiny_world, tmp_path):
    (code,) = EXAMPLE.findall(SERVING_DOC.read_text(encoding="utf-8"))
    photo = next((tiny_world / "photos").rglob("*.png"))
    code = code.replace("http://127.0.0.1:7860/", served).replace('"car.png"', repr(str(photo)))
    code = code.replace("diffusion_steps=20", "diffusion_steps=1")  # the test checks the API, not the photos
    code += "\nimport json\nprint(json.dumps({'chat': chat, 'saved': saved, 'status': status}))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m["role"] for m in result["chat"]][:1] == ["user"]
    assert [c["type"] for c in result["chat"][0]["content"]] == ["text", "file"]  # the photo went with the message
    saved = json.loads(Path(result["saved"]).read_text(encoding="utf-8"))  # a path to the downloaded file
    assert "dialogue" in json.dumps(saved) and result["status"].startswith("Saved")
    api = done.stdout
    for name in ("message", "temperature", "diffusion_steps", "guidance_scale", "seed", "status", "dialogue"):
        assert name in api
    assert not re.search(r"\b(value|parameter)_\d", api), api  # every parameter and result is named
