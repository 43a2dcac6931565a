"""The pretrained tiny Stable Diffusion folder photodialog ships, and the check that a base may use it.

``photodialog/assets/tiny-sd`` is a complete Stable Diffusion folder (``model_index.json``,
``text_encoder/``, ``tokenizer/``, ``unet/``, ``scheduler/``, ``vae/``) at the ``tiny`` preset's
sizes: the CLIP text encoder and the UNet pretrained on the default synthetic world's (caption,
photo) pairs by ``configs/tiny-pretrain-generator.yaml``, with the bundled VAE
(``models/tiny_vae.py``). ``model.tiny.diffusion_source=bundled`` makes it a run's
``base/diffusion``, so a demo or fine-tuning run starts from a generator that already draws the
world's objects, as the paper starts from SD-2.1. ``photodialog assets rebuild generator
--out DIR`` rebuilds it bit for bit (same torch version and CPU kind); its ``training.json``
holds the weights' SHA-256, the steps and the command.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from photodialog.config import TinySizes
from photodialog.errors import ConfigError

BUNDLED_GENERATOR = Path(__file__).resolve().parent.parent / "assets" / "tiny-sd"
SD_PARTS = ("text_encoder", "tokenizer", "unet", "scheduler")


def unet_attention_flags(sizes: TinySizes) -> list[bool]:
    """Cross-attention per UNet level: ``sizes.unet_attention``, or by default none at the first level."""
    return list(sizes.unet_attention) or [False] + [True] * (len(sizes.unet_channels) - 1)


def diffusion_folder(sizes: TinySizes) -> Path:
    """The Stable Diffusion folder ``sizes.diffusion_source`` names (``bundled`` or a path)."""
    return BUNDLED_GENERATOR if sizes.diffusion_source == "bundled" else Path(sizes.diffusion_source).expanduser()


def copy_diffusion(out: Path, sizes: TinySizes, *, latent: bool) -> None:
    """Copy the pretrained Stable Diffusion folder of ``sizes.diffusion_source`` to ``out``.

    Raises ``ConfigError`` when it is not a Stable Diffusion folder, or when its text encoder,
    UNet or VAE were built with other sizes than ``sizes`` asks for (naming the keys to change).
    """
    source = diffusion_folder(sizes)
    missing = [part for part in SD_PARTS if not (source / part).is_dir()]
    if missing:
        raise ConfigError(f"model.tiny.diffusion_source: {source} is not a Stable Diffusion folder (no {', '.join(missing)}/); "
                          "use random, bundled, or a folder with text_encoder/ tokenizer/ unet/ scheduler/")
    wrong = {key: (want, got) for key, want, got in _size_checks(source, sizes, latent) if want != got}
    if wrong:
        found = ", ".join(f"model.tiny.{key}={got!r}" for key, (_, got) in wrong.items())
        asked = ", ".join(f"{want!r}" for want, _ in wrong.values())
        raise ConfigError(f"model.tiny.diffusion_source: the generator in {source} was built with {found}, but the recipe asks for "
                          f"{asked}; set model.tiny to match it, or use diffusion_source=random")
    shutil.copytree(source, out)


def _size_checks(source: Path, sizes: TinySizes, latent: bool) -> list[tuple[str, object, object]]:
    """(key, what ``sizes`` asks, what the folder holds) for every size the parts are built from."""
    text = _config(source / "text_encoder")
    unet = _config(source / "unet")
    vae = _config(source / "vae") if (source / "vae").is_dir() else None
    attention = [kind.startswith("CrossAttn") for kind in unet.get("down_block_types", [])]
    checks = [
        ("text_encoder_hidden", sizes.text_encoder_hidden, text.get("hidden_size")),
        ("text_encoder_layers", sizes.text_encoder_layers, text.get("num_hidden_layers")),
        ("unet_channels", list(sizes.unet_channels), unet.get("block_out_channels")),
        ("unet_attention", unet_attention_flags(sizes), attention),
        ("unet_addition_embed_type", sizes.unet_addition_embed_type, unet.get("addition_embed_type") or ""),
        ("latent", latent, vae is not None),
    ]
    if latent and vae is not None:
        checks += [("latent_channels", sizes.latent_channels, vae.get("latent_channels")),
                   ("vae_channels", list(sizes.vae_channels), vae.get("block_out_channels")),
                   ("image_size", sizes.image_size, vae.get("sample_size"))]
    return checks


def _config(folder: Path) -> dict:
    file = folder / "config.json"
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.tiny.diffusion_source: {file} cannot be read ({err}); give a folder saved by diffusers") from None
