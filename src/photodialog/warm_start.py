"""Fine-tuning from a pretrained start: ``model.init_from``.

The paper fine-tunes pretrained parts (Llama-2-chat, BLIP-2, SD-2.1). At tiny scale the parts
are pretrained by runs of our own (``photodialog demo``'s pretraining stage: the LLM and the
perceptron in one run, the image generator in another), and a fine-tuning run names them in
``model.init_from``. Every tensor those runs trained is copied into the new model before its
first step, so every run that names the same sources starts from byte-identical weights.

For the ``tiny`` preset the untrained base parts (tokenizers, configs, and any part no source
trained) are taken from the first source's run folder too, so nothing of the start depends on
the fine-tuning run's own seed.

A source may also be a folder written by ``photodialog export`` (its ``llm/`` and ``blip2/`` become
the base parts, its ``trainable.safetensors`` holds the rest), and ``bundled`` names the one
photodialog ships: ``assets/tiny-llm``, the tiny LLM and image perceptron pretrained on the
default world by ``configs/tiny-pretrain-text.yaml`` (``photodialog assets rebuild llm`` makes it
again; its ``training.json`` says how, on which CPU kind, and how well it does).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from photodialog.checkpoints import EMA_WEIGHTS, WEIGHTS, read_weights, resolve_checkpoint, run_dir_of
from photodialog.errors import UserError

log = logging.getLogger(__name__)
BASE_DIR = "base"
EXPORT_FILE = "export.json"  # what marks a folder written by `photodialog export`
# The pretrained tiny LLM + perceptron photodialog ships (``model.init_from: [bundled]``).
BUNDLED = "bundled"
BUNDLED_TEXT = Path(__file__).resolve().parent / "assets" / "tiny-llm"


@dataclass
class WarmStart:
    """What ``load_init_from`` copied: tensors per source checkpoint, the parameters none held, and
    the tensors of parts this model does not build (e.g. a pipeline without a perceptron)."""

    loaded: dict[str, int]
    fresh: list[str]
    skipped: int = 0


def source_checkpoints(init_from: list[str], relative_to: Path | None = None) -> list[Path]:
    """The checkpoint folder of each ``model.init_from`` entry (a run folder or a checkpoint).

    A relative path is tried as given, then beside ``relative_to`` (the fine-tuning run's folder),
    so a run folder moved together with its sources still loads. Raises ``UserError`` naming the
    entry that is neither.
    """
    found = []
    for entry in init_from:
        if entry == BUNDLED:
            found.append(BUNDLED_TEXT)
            continue
        given = Path(entry).expanduser()
        candidates = [given] + ([relative_to.parent / given] if relative_to is not None and not given.is_absolute() else [])
        path = next((c for c in candidates if c.exists()), None)
        if path is None:
            raise UserError(f"model.init_from: '{entry}' was not found; give the pretraining run's folder (absolute, "
                            "or relative to the folder you run from)")
        found.append(path if is_export(path) else resolve_checkpoint(path))
    return found


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``photodialog export`` (or the bundled start)."""
    return (Path(path).expanduser() / EXPORT_FILE).is_file()


def copy_base(sources: list[Path], base: Path) -> bool:
    """Copy the first source's tiny base parts to ``base`` (if absent): a run's ``base/``, or an
    export's ``llm/``, ``blip2/`` and ``diffusion/`` (those it has). False when it has no ``llm/``."""
    if (base / "llm").is_dir():
        return True
    first = sources[0]
    source_base = first if is_export(first) else run_dir_of(first) / BASE_DIR
    if not (source_base / "llm").is_dir():
        return False
    tmp = base.with_name(base.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for part in ("llm", "blip2", "diffusion"):
        if (source_base / part).is_dir():
            shutil.copytree(source_base / part, tmp / part)
    tmp.rename(base)
    return True


def load_init_from(model: torch.nn.Module, sources: list[Path]) -> WarmStart:
    """Copy every tensor the ``sources`` trained (their weight average when they kept one) into ``model``.

    Tensors of a part the model does not build (its first name component, e.g. ``perceptron``) are
    skipped and counted. A name that two sources both hold, another name the model lacks, or a
    shape that differs is a ``UserError``: the sources must be pretraining runs of this model's
    parts. Parameters that no source holds keep their initialisation and are listed in ``WarmStart.fresh``.
    """
    params = dict(model.named_parameters())
    owner: dict[str, Path] = {}
    loaded: dict[str, int] = {}
    skipped = 0
    with torch.no_grad():
        for folder in sources:
            file = folder / (EMA_WEIGHTS if (folder / EMA_WEIGHTS).is_file() else WEIGHTS)
            weights = read_weights(file, "model.init_from names a damaged checkpoint; name another one")
            weights.pop("__updates__", None)
            parts = {name.split(".", 1)[0] for name in params}
            for name, value in weights.items():
                if name.split(".", 1)[0] not in parts:  # a part this config does not build
                    skipped += 1
                    continue
                _check_tensor(name, value, params, owner, folder)
                params[name].copy_(value.to(params[name].dtype))
                owner[name] = folder
            loaded[str(folder)] = len(weights)
    fresh = sorted(name for name in params if name not in owner)
    return WarmStart(loaded, fresh, skipped)


def _check_tensor(name: str, value: torch.Tensor, params: dict, owner: dict, folder: Path) -> None:
    if name not in params:
        raise UserError(f"model.init_from: {folder} holds '{name}', which this model does not have: "
                        "was it trained with other sizes or parts?")
    if name in owner:
        raise UserError(f"model.init_from: '{name}' is in both {owner[name]} and {folder}; name each part's source once")
    if tuple(params[name].shape) != tuple(value.shape):
        raise UserError(f"model.init_from: {folder}: '{name}' has shape {tuple(value.shape)}, "
                        f"the model expects {tuple(params[name].shape)}")
