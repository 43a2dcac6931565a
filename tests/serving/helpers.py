"""Constants shared by the serving tests."""

from __future__ import annotations

import socket

from photodialog.models.generation_settings import GenerationSettings

# Short replies and two denoising steps: the tests check behaviour, not quality.
FAST = GenerationSettings(max_new_tokens=6, diffusion_steps=2)
FAST_FLAGS = ["--max-new-tokens", "6", "--diffusion-steps", "2", "--device", "cpu"]
DRAWN_CAPTION = "a red car at the beach"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
