"""Helpers for `data download` tests: a local HTTP server and dialogue files as published.

The server runs on 127.0.0.1 on a random port in a background thread. Each path has a route:
a function ``route(handler, hit)`` where ``hit`` counts requests to that path from 1. The
server counts hits per path (to prove what a resumed run does *not* fetch) and, for streamed
routes, how many bytes it managed to send before the client hung up.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


# --- images ----------------------------------------------------------------------------------


def image_bytes(fmt: str = "JPEG", size=(24, 16), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def noisy_jpeg(size=(64, 64)) -> bytes:
    """A JPEG with real entropy-coded data, so that cutting it in half really truncates it."""
    import random

    rng = random.Random(0)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


# --- routes ----------------------------------------------------------------------------------


def respond(body: bytes, content_type: str = "image/jpeg", status: int = 200, headers: dict | None = None):
    def route(handler, hit):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def status(code: int, headers: dict | None = None):
    return respond(f"<html>error {code}</html>".encode(), "text/html", code, headers)


def redirect(location: str, code: int = 302):
    def route(handler, hit):
        handler.send_response(code)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def sequence(*routes):
    """The n-th request gets the n-th route; the last one repeats."""

    def route(handler, hit):
        routes[min(hit, len(routes)) - 1](handler, hit)

    return route


def slow(seconds: float, then):
    def route(handler, hit):
        time.sleep(seconds)
        then(handler, hit)

    return route


def endless(total_bytes: int, content_type: str = "image/jpeg", chunk: int = 64 * 1024):
    """A body of ``total_bytes`` with no Content-Length: only streaming can stop it early."""

    def route(handler, hit):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.end_headers()
        sent = 0
        block = b"\xff" * chunk
        while sent < total_bytes:
            handler.wfile.write(block)
            sent += chunk
            handler.server.sent[handler.path] = sent

    return route


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            hit = server.hits[self.path]
        route = server.routes.get(self.path)
        try:
            if route is None:
                status(404)(self, hit)
            else:
                route(self, hit)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size limit, timeout): that is what some tests want

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on purpose is not an error here


class LocalServer:
    """A running server: ``add(path, route)``, ``url(path)``, ``hits(path)``, ``sent(path)``."""

    def __init__(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.routes, self._server.hits, self._server.sent = {}, {}, {}
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, route) -> str:
        self._server.routes[path] = route
        return self.url(path)

    def add_json(self, path: str, value, as_lines: bool = False) -> str:
        if as_lines:
            body = "".join(json.dumps(v) + "\n" for v in value).encode()
        else:
            body = json.dumps(value, indent=2).encode()
        # raw.githubusercontent.com serves .json as text/plain
        return self.add(path, respond(body, "text/plain; charset=utf-8"))

    def hits(self, path: str) -> int:
        return self._server.hits.get(path, 0)

    def sent(self, path: str) -> int:
        return self._server.sent.get(path, 0)

    def total_hits(self) -> int:
        return sum(self._server.hits.values())

    def close(self):
        self._server.shutdown()
        self._server.server_close()


# --- photos of every kind ------------------------------------------------------------------

GOOD_JPEG = image_bytes("JPEG")
GOOD_PNG = image_bytes("PNG", color=(20, 160, 40))
_NOISY_JPEG = noisy_jpeg()
TRUNCATED_JPEG = _NOISY_JPEG[: len(_NOISY_JPEG) // 2]


def add_photo_routes(srv: LocalServer) -> dict[str, str]:
    """Every kind of photo URL the fetcher must handle; returns name -> URL."""
    srv.add("/p/new-home.jpg", respond(GOOD_JPEG))
    srv.add("/pw/images/en-us/photo_unavailable.png", respond(GOOD_PNG, "image/png"))  # a valid image!
    return {
        "jpeg": srv.add("/p/good.jpg", respond(GOOD_JPEG, "image/jpeg")),
        "png": srv.add("/p/good.png", respond(GOOD_PNG, "image/png")),
        "missing": srv.url("/p/missing.jpg"),  # no route: 404
        "forbidden": srv.add("/p/forbidden.jpg", status(403)),
        "slow": srv.add("/p/slow.jpg", slow(1.0, respond(GOOD_JPEG))),
        "corrupt": srv.add("/p/corrupt.jpg", respond(TRUNCATED_JPEG, "image/jpeg")),
        "garbage": srv.add("/p/garbage.png", respond(b"not an image at all" * 10, "image/png")),
        "html": srv.add("/p/page.jpg", respond(b"<html>photo page</html>", "text/html; charset=utf-8")),
        "huge": srv.add("/p/huge.jpg", respond(b"\xff" * 300_000, "image/jpeg")),
        "flaky": srv.add("/p/flaky.jpg", sequence(status(503), respond(GOOD_JPEG))),
        "ratelimited": srv.add(
            "/p/rate.png", sequence(status(429, {"Retry-After": "0"}), respond(GOOD_PNG, "image/png"))
        ),
        "octet": srv.add("/p/octet", respond(GOOD_PNG, "application/octet-stream")),
        "moved": srv.add("/p/moved.jpg", redirect("/p/new-home.jpg")),
        "placeholder": srv.add("/p/dead-on-flickr.jpg", redirect("/pw/images/en-us/photo_unavailable.png")),
    }


EXPECTED_REASONS = {
    "missing": "http 404",
    "forbidden": "http 403",
    "slow": "timeout",
    "corrupt": "corrupt image: cannot decode",
    "garbage": "corrupt image: unknown format",
    "html": "not an image: text/html",
    "huge": "too large: > 100000 bytes",
    "placeholder": "placeholder: photo unavailable",
}
EXPECTED_OK = {"jpeg", "png", "flaky", "ratelimited", "octet", "moved"}


# --- dialogue files as published -------------------------------------------------------------


def photochat_dialogue(dialogue_id: int, url: str, photo_id: str | None, caption: str) -> dict:
    """One PhotoChat record, field for field as in the published files."""
    record = {
        "dialogue": [
            {"message": "I went to the market today.", "share_photo": False, "user_id": 0},
            {"message": "What did you buy?", "share_photo": False, "user_id": 1},
            {"message": "", "share_photo": True, "user_id": 0},
            {"message": "That looks great", "share_photo": False, "user_id": 1},
        ],
        "dialogue_id": dialogue_id,
        "photo_description": caption,
        "photo_url": url,
    }
    if photo_id is not None:
        record["photo_id"] = photo_id
    return record


def serve_photochat(srv: LocalServer, files: dict[str, list[dict]], prefix: str = "/photochat") -> str:
    """Serve all 25 published PhotoChat files (empty arrays unless given); returns the base URL."""
    from photodialog.data.download.sources import PHOTOCHAT

    for remote in PHOTOCHAT.files:
        srv.add_json(f"{prefix}/{remote.remote_path}", files.get(remote.remote_path, []))
    return srv.url(prefix)


def dialogcc_dialogue(dialogue_id: str, split: str, images: list[list[dict]]) -> dict:
    """One DialogCC record: ``images[i]`` is the ``shared_image`` list of turn i."""
    return {
        "dialogue_id": dialogue_id,
        "split": split,
        "dialogue": [
            {
                "utterance_idx": index,
                "utterance": f"utterance {index} of {dialogue_id}",
                "speaker": "A" if index % 2 == 0 else "B",
                "rationale": "To show what it looks like." if shared else "",
                "shared_image": shared,
                "description": "A red bicycle leaning on a wall." if shared else "",
            }
            for index, shared in enumerate(images)
        ],
    }


def serve_dialogcc(srv: LocalServer, splits: dict[str, list[dict]], as_lines=False, prefix="/dialogcc") -> str:
    for name, records in splits.items():
        srv.add_json(f"{prefix}/{name}.json", records, as_lines=as_lines)
    return srv.url(prefix)


def photochat_world(srv: LocalServer) -> tuple[str, dict[str, str]]:
    """PhotoChat files whose photos are every kind of URL; returns (base URL, kind -> stem).

    Also: a second photo_id for the JPEG's URL (fetched once, copied), a record without
    ``photo_id`` (named by its URL's hash), and one photo in dev and in test.
    """
    from photodialog.data.layout import photo_stem

    urls = add_photo_routes(srv)
    urls["jpeg_again"] = urls["jpeg"]
    urls["no_id"] = srv.add("/p/no-id.png", respond(GOOD_PNG, "image/png"))
    urls["dev"] = srv.add("/p/dev.jpg", respond(GOOD_JPEG))
    urls["test"] = srv.add("/p/test.jpg", respond(GOOD_JPEG))
    stems, files = {}, {"train/train_00.json": [], "dev/dev_00.json": [], "test/test_01.json": []}
    for number, (kind, url) in enumerate(urls.items()):
        split = kind if kind in ("dev", "test") else "train"
        photo_id = None if kind == "no_id" else f"{split}/{kind}"
        stems[kind] = photo_stem(photo_id, url)
        file = {"train": "train/train_00.json", "dev": "dev/dev_00.json", "test": "test/test_01.json"}[split]
        files[file].append(photochat_dialogue(number, url, photo_id, f"Objects in the photo: {kind}, Table"))
    return serve_photochat(srv, files), stems


def photo_hits(srv: LocalServer) -> int:
    """Requests made for photos (everything under /p/)."""
    return sum(count for path, count in srv._server.hits.items() if path.startswith("/p/"))


# --- a tiny random Stable Diffusion pipeline, built offline --------------------------------


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins CLIP's byte-level BPE uses for bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            symbols.append(256 + extra)
            extra += 1
    return [chr(code) for code in symbols]


def write_tiny_clip_tokenizer(folder) -> None:
    """vocab.json + merges.txt for a CLIP tokenizer: every byte, word-final or not, a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    merges = ["t h", "th e</w>", "o n</w>", "i n"]
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]:
        vocab.setdefault(token, len(vocab))
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def build_tiny_stable_diffusion(folder) -> None:
    """A random Stable Diffusion pipeline in the real folder layout (unet/ vae/ text_encoder/
    tokenizer/ scheduler/ model_index.json), small enough to run in a fraction of a second."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    write_tiny_clip_tokenizer(folder / "_tokenizer_source")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tokenizer_source", local_files_only=True, model_max_length=77)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
    ))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
