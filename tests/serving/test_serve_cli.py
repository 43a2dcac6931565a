"""`photodialog serve`: flags checked before the model loads, and the page served at the printed address."""

from __future__ import annotations

import httpx
import pytest

from photodialog.cli.main import main

from .helpers import FAST_FLAGS, free_port


@pytest.mark.parametrize("args, complaint", [
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--concurrency", "0"], "--concurrency and --queue-size must be at least 1"),
    (["--guidance-scale", "-1"], "guidance scale must be between"),
])
def test_bad_flags_are_refused_before_loading(tmp_path, capsys, args, complaint):
    assert main(["serve", "--checkpoint", str(tmp_path / "not-loaded"), *args]) == 2
    assert complaint in capsys.readouterr().err


def test_serve_prints_its_address_and_serves_the_page(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # restored after the test: serve sets it
    pages: list = []

    def visit_then_stop(app):
        url = capsys.readouterr().out.split("serving the chat page at ")[1].split()[0]
        pages.append(httpx.get(url, timeout=30))
        app.close()

    monkeypatch.setattr("photodialog.serving.web.serve_forever", visit_then_stop)
    out = tmp_path / "served"
    assert main(["serve", "--checkpoint", str(tiny_run), "--port", str(free_port()), "--out", str(out), *FAST_FLAGS]) == 0
    (page,) = pages
    assert page.status_code == 200 and "photodialog chat" in page.text
    assert (out / "gradio-cache").is_dir()
