"""Generation settings: the one definition of how replies and photos are made, and their check.

Light on purpose (no torch): the command line builds its flags from it at ``--help`` time, and
``config`` and ``registry`` give the allowed decodings and samplers. The limits (``config.MAX_*``,
``config.MIN_TOP_P``) are also the ranges of a recipe's ``eval`` section, so a value a recipe may
hold is one this check accepts (the rules between settings, beams and temperature, are here alone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from photodialog.config import MAX_BEAMS, MAX_DIFFUSION_STEPS, MAX_GUIDANCE_SCALE, MAX_NEW_TOKENS, MIN_TOP_P, EvalConfig
from photodialog.errors import UserError
from photodialog.registry import DECODINGS, SAMPLERS

_PROTOCOL = EvalConfig()  # the defaults live in one place: the config's eval section


@dataclass
class GenerationSettings:
    """How a reply and its photos are made: text decoding (``decoding``: greedy, beam or sample,
    with ``num_beams``, ``temperature``, ``top_p``; at most ``max_new_tokens`` tokens) and photo
    drawing (``diffusion_steps`` of ``sampler`` with classifier-free ``guidance_scale``). ``seed``
    fixes sampling and the diffusion noise; ``draw_photos=False`` writes captions only. The
    defaults are the evaluation protocol's: those of ``config.EvalConfig``."""

    max_new_tokens: int = _PROTOCOL.max_new_tokens
    decoding: str = _PROTOCOL.decoding
    num_beams: int = _PROTOCOL.num_beams
    temperature: float = _PROTOCOL.temperature
    top_p: float = _PROTOCOL.top_p
    diffusion_steps: int = _PROTOCOL.diffusion_steps
    guidance_scale: float = _PROTOCOL.guidance_scale
    sampler: str = _PROTOCOL.sampler
    seed: int = 0
    draw_photos: bool = True


def check_settings(settings: GenerationSettings) -> GenerationSettings:
    """``settings`` unchanged, or a ``UserError`` naming the first value out of range.

    The one check for chat, the web page and evaluation, so that a setting one accepts the
    others accept too; it runs before the model loads, so a bad value is a message, not a traceback.
    """
    _choice("decoding", settings.decoding, DECODINGS.names)
    _choice("sampler", settings.sampler, SAMPLERS.names)
    _within("max new tokens", settings.max_new_tokens, 1, MAX_NEW_TOKENS)
    _within("number of beams", settings.num_beams, 1, MAX_BEAMS)
    _within("diffusion steps", settings.diffusion_steps, 1, MAX_DIFFUSION_STEPS)
    _within("guidance scale", settings.guidance_scale, 0.0, MAX_GUIDANCE_SCALE)
    _within("top-p", settings.top_p, MIN_TOP_P, 1.0)
    _within("seed", settings.seed, 0, 2**63 - 1)
    if settings.decoding == "beam" and settings.num_beams < 2:  # one beam is greedy decoding under another name
        raise UserError(f"beam search needs at least 2 beams (got {settings.num_beams}); use greedy decoding for one")
    if settings.decoding == "sample" and not settings.temperature > 0:
        raise UserError(f"temperature must be above 0 for sampling (got {settings.temperature}); use greedy decoding for 0")
    return settings


def settings_from_config(config: EvalConfig, overrides: Mapping[str, Any] | None = None) -> GenerationSettings:
    """A run's ``eval`` section as generation settings, with ``overrides`` (None values ignored), checked.

    Raises ``ValueError`` for an override that is not a ``GenerationSettings`` field and
    ``UserError`` (``check_settings``) for a value out of range.
    """
    settings = GenerationSettings(
        max_new_tokens=config.max_new_tokens, decoding=config.decoding, num_beams=config.num_beams,
        temperature=config.temperature, top_p=config.top_p, diffusion_steps=config.diffusion_steps,
        guidance_scale=config.guidance_scale, sampler=config.sampler,
    )
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(GenerationSettings)})
    if unknown:
        raise ValueError(f"unknown generation settings {unknown}")
    return check_settings(replace(settings, **overrides))


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} '{value}'; choose one of {', '.join(choices)}")


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low:g} and {high:g} (got {value:g})")
