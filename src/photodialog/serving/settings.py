"""Checking generation settings before they reach the model, so a bad value is a message, not a traceback."""

from __future__ import annotations

from photodialog.errors import UserError
from photodialog.models.generation import GenerationSettings

DECODINGS = ("greedy", "beam", "sample")
SAMPLERS = ("ddim", "dpm", "euler", "ddpm")
MAX_NEW_TOKENS = 1024  # a chat turn; far longer replies are a typo
MAX_DIFFUSION_STEPS = 1000  # the noise schedule's length


def check_settings(settings: GenerationSettings) -> GenerationSettings:
    """``settings`` unchanged, or a ``UserError`` naming the first value out of range."""
    _choice("decoding", settings.decoding, DECODINGS)
    _choice("sampler", settings.sampler, SAMPLERS)
    _within("max new tokens", settings.max_new_tokens, 1, MAX_NEW_TOKENS)
    _within("number of beams", settings.num_beams, 1, 64)
    _within("diffusion steps", settings.diffusion_steps, 1, MAX_DIFFUSION_STEPS)
    _within("guidance scale", settings.guidance_scale, 0.0, 100.0)
    _within("top-p", settings.top_p, 1e-6, 1.0)
    _within("seed", settings.seed, 0, 2**63 - 1)
    if settings.decoding == "sample" and not settings.temperature > 0:
        raise UserError(f"temperature must be above 0 for sampling (got {settings.temperature}); use greedy decoding for 0")
    return settings


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} '{value}'; choose one of {', '.join(choices)}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
