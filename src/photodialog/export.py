"""`photodialog export`: a trained checkpoint as one self-contained folder with a model card.

A run folder needs its ``base/`` parts (tiny preset) or hub downloads (paper preset) next to a
checkpoint of only the weights that trained. An export holds everything, in the parts' own
published layouts, so that ``DialogueSystem.from_pretrained(DIR)`` and every command's
``--checkpoint DIR`` load it with nothing else::

    DIR/README.md              the model card (parts and licences, data, recipe, steps, eval numbers)
    DIR/export.json            what this folder is: source checkpoint, weights kind, size, load time
    DIR/config.yaml            the resolved recipe, every part frozen (LoRA ones stay lora with --keep-adapters)
    DIR/state.json             the checkpoint's training state (steps trained, dev evaluations)
    DIR/trainable.safetensors  weights outside the three parts (the perceptron's projection into
                               the LLM; with --keep-adapters also the LoRA adapters)
    DIR/llm/                   causal LM + tokenizer (``save_pretrained``), trained weights merged;
                               the tokenizer's chat template is photodialog's prompt layout
    DIR/blip2/                 a Blip2VisionModelWithProjection: vision tower, Q-Former, query tokens,
                               the projection into the LLM (vision_projection), its image processor
    DIR/diffusion/             unet/ text_encoder/ tokenizer/ scheduler/ vae/ model_index.json (a
                               StableDiffusionPipeline; a pixel-space generator: no vae/, no index)
    DIR/probe/                 a pipeline's context-photo captioner, when it is its world's probe

Every part loads with its stock class and no photodialog code (``export.json``'s ``classes``
and the card name them); no file names a folder of the training machine.

By default LoRA adapters are merged into their base weights (``W + scale * B @ A``): one set
of weights per part, loadable by any ``transformers``/``diffusers`` code. ``keep_adapters``
writes the untouched base weights and the adapters beside them instead (smaller to diff,
exactly the trained factors). A pipeline checkpoint is exported joined (text part's LLM and
perceptron, image part's generator), so its export no longer needs the text part's run.

The folder is written under a hidden temporary name and renamed when complete; an existing
non-empty ``--out`` is refused, never overwritten.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from copy import deepcopy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from photodialog import __version__
from photodialog.checkpoints import EMA_WEIGHTS, read_state, resolve_checkpoint, run_dir_of
from photodialog.config import save_config
from photodialog.errors import UserError
from photodialog.files import save_tensors, use_umask_modes
from photodialog.model_card import files_section, model_card
from photodialog.models.formatting import CHAT_TEMPLATE, ProbeCaptioner
from photodialog.models.perceptron import BLIP_MEAN, BLIP_STD
from photodialog.system import (
    EXPORT_PARTS,
    EXPORT_SCHEMA,
    EXTRA_WEIGHTS,
    PROBE_FOLDER,
    DialogueSystem,
    load_system,
    read_export_info,
)
from photodialog.warm_start import EXPORT_FILE, is_export

CARD_FILE = "README.md"
DIFFUSION_PIPELINE = "StableDiffusionPipeline"  # what a latent generator's diffusion/ loads as
PERCEPTRON_CLASS = "Blip2VisionModelWithProjection"  # what blip2/ loads as
# Parameters under these prefixes are saved inside the part folders; everything else is "extra".
PART_PREFIXES = ("llm.", "perceptron.vision_model.", "perceptron.qformer.", "perceptron.query_tokens",
                 "generator.text_encoder.", "generator.unet.", "generator.vae.")


@dataclass
class ExportResult:
    """What ``export_checkpoint`` wrote: the folder, its size in bytes, and its load time in seconds."""

    out: Path
    checkpoint: Path
    weights: str  # "merged" | "adapters"
    bytes: int
    files: int
    load_seconds: float
    eval_files: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"exported {self.checkpoint} to {self.out} ({self.weights} weights)",
            f"size: {self.bytes / 1e6:.1f} MB in {self.files} files",
            f"load time: {self.load_seconds:.2f} s (DialogueSystem.from_pretrained on CPU, this machine)",
            f"model card: {self.out / CARD_FILE}" + (f" (eval numbers from {', '.join(self.eval_files)})" if self.eval_files else ""),
            f"load it with: photodialog chat --checkpoint {self.out}   or   DialogueSystem.from_pretrained('{self.out}')",
        ]


# --- writing -------------------------------------------------------------------------------


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, keep_adapters: bool = False, use_average: bool = True,
                      eval_files: list[str | Path] | None = None, progress: bool = True) -> ExportResult:
    """Write the system of ``checkpoint`` (a run or checkpoint folder) to the new folder ``out``.

    Raises ``UserError`` if ``out`` exists and is not an empty folder, or if the checkpoint
    cannot be loaded. ``eval_files`` are eval result JSONs whose numbers go into the model
    card (default: those under the checkpoint's and the run's ``eval/`` that name this checkpoint).
    """
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    # "." and ".." have no name to put the temporary folder beside: use the folder they stand for
    out = Path(os.path.normpath(Path(out).expanduser().absolute()))
    _check_out(out)
    source = resolve_checkpoint(checkpoint) if not is_export(checkpoint) else Path(checkpoint).expanduser()
    steps = ["load checkpoint", "merge adapters" if not keep_adapters else "set adapters apart", "save llm",
             "save perceptron", "save generator", "write config and card", "measure load time"]
    bar = tqdm(total=len(steps), desc="export", unit="step", disable=not progress)
    tmp = out.with_name(f".{out.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        bar.set_postfix_str(steps[0])
        system = load_system(source, "cpu", use_average=use_average)
        state = read_state(source) if (source / "state.json").is_file() else None
        bar.update()
        bar.set_postfix_str(steps[1])
        adapters = unload_adapters(system.model, merge=not keep_adapters)
        bar.update()
        tmp.mkdir(parents=True)
        _save_parts(system.model, tmp, bar, steps[2:5])
        bar.set_postfix_str(steps[5])
        extra = {n: p for n, p in system.model.named_parameters() if not n.startswith(PART_PREFIXES)}
        _save_weights({**extra, **(adapters if keep_adapters else {})}, tmp / EXTRA_WEIGHTS)
        config = exported_config(system.config, merged=not keep_adapters)
        save_config(config, tmp / "config.yaml")
        if state is not None:
            shutil.copyfile(source / "state.json", tmp / "state.json")
        captioner = system.formatter.captioner if system.formatter is not None else None
        if isinstance(captioner, ProbeCaptioner):  # a pipeline's context photos are captioned by its world's probe
            captioner.probe.save(tmp / PROBE_FOLDER)
        _without_local_paths(tmp)
        evals = [Path(f) for f in eval_files] if eval_files is not None else find_eval_files(source)
        info = _export_info(source, system, state, keep_adapters, use_average, evals)
        card = _write_info_and_card(tmp, info, lambda: model_card(system, state, info, evals))
        bar.update()
        bar.set_postfix_str(steps[6])
        # Size and load time are measured on the finished folder, then written into it. The
        # exported system is let go first: a paper-size model must not be in memory twice.
        del system
        gc.collect()
        info["load_seconds"] = measure_load_seconds(tmp)
        old_measured = files_section(info | {"load_seconds": None})
        _write_info_and_card(tmp, info, lambda: card.replace(old_measured, files_section(info)))
        bar.update()
        use_umask_modes(tmp)  # save_pretrained's safetensors files are owner-only: others must load the export
        os.replace(tmp, out) if not out.exists() else _replace_empty(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    size, files = folder_size(out)
    return ExportResult(out, source, "adapters" if keep_adapters else "merged", size, files, info["load_seconds"],
                        [str(f) for f in evals])


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else "a folder that is not empty"
        raise UserError(f"--out {out} is {what}; export never overwrites: give a new or empty folder")


def _replace_empty(tmp: Path, out: Path) -> None:
    """Move the finished files into the empty folder ``out`` (kept: it may be the current folder, or
    carry the modes and group a shared folder needs); export.json last, so that a folder cut short
    is never taken for an export."""
    if any(out.iterdir()):
        raise UserError(f"--out {out} was empty when the export began and is not now; give a new or empty folder")
    for entry in sorted(tmp.iterdir(), key=lambda path: path.name == EXPORT_FILE):
        os.replace(entry, out / entry.name)
    tmp.rmdir()


def unload_adapters(model: torch.nn.Module, *, merge: bool) -> dict[str, torch.Tensor]:
    """Take every peft LoRA layer out of ``model``, merged into its base weights or not.

    Returns the adapter weights by their names in the adapted model (what ``load_trainable``
    puts back after ``build_model`` has injected the same adapters). Afterwards each part is a
    plain ``transformers``/``diffusers`` module again, savable in its published layout.
    """
    adapters = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if "lora_" in n}
    if not adapters:
        return {}
    # the Hugging Face stack is slow to import: only this path needs it
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            if merge:
                module.merge()
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, module.get_base_layer())
    return adapters


def _save_parts(model, folder: Path, bar, names: list[str]) -> None:
    for name, save in zip(names, (_save_llm, _save_perceptron, _save_generator)):
        bar.set_postfix_str(name)
        save(model, folder)
        bar.update()


def _save_llm(model, folder: Path) -> None:
    if model.llm is None:
        return
    target = folder / EXPORT_PARTS["llm"]
    model.llm.save_pretrained(target, safe_serialization=True)
    # tokenizer.apply_chat_template of stock transformers lays a dialogue out as photodialog does
    model.tokenizer.chat_template = CHAT_TEMPLATE
    model.tokenizer.save_pretrained(target)


def _save_perceptron(model, folder: Path) -> None:
    """A ``Blip2VisionModelWithProjection`` folder: ViT, Q-Former, query tokens, and the projection
    into the LLM as its ``vision_projection`` (``image_text_hidden_size`` = the LLM's width), with
    the BLIP image processor the perceptron preprocesses photos as.

    Stock ``transformers`` loads every weight of it; its ``image_embeds`` are the perceptron's
    output [N, queries, LLM width] scaled to unit length (the class normalises them), and
    ``vision_projection(qformer(...))`` is the output itself.
    """
    perceptron = model.perceptron
    if perceptron is None:
        return
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import BlipImageProcessor, Blip2Config

    target = folder / EXPORT_PARTS["blip2"]
    target.mkdir()
    config = Blip2Config(vision_config=perceptron.vision_model.config.to_dict(),
                         qformer_config=perceptron.qformer.config.to_dict(),
                         num_query_tokens=perceptron.query_tokens.shape[1],
                         image_text_hidden_size=perceptron.projection.out_features)
    config.architectures = [PERCEPTRON_CLASS]
    config.save_pretrained(target)
    size = perceptron.image_size
    BlipImageProcessor(size={"height": size, "width": size}, image_mean=list(BLIP_MEAN), image_std=list(BLIP_STD),
                       resample=3, do_convert_rgb=True).save_pretrained(target)  # 3: bicubic, as photo_to_tensor
    weights = {f"vision_model.{k}": v for k, v in perceptron.vision_model.state_dict().items()}
    weights.update({f"qformer.{k}": v for k, v in perceptron.qformer.state_dict().items()})
    weights["query_tokens"] = perceptron.query_tokens
    weights.update({f"vision_projection.{k}": v for k, v in perceptron.projection.state_dict().items()})
    _save_weights(weights, target / "model.safetensors", metadata={"format": "pt"})


def _save_generator(model, folder: Path) -> None:
    """A Stable Diffusion folder: the generator's own components, trained weights in place."""
    generator = model.generator
    if generator is None:
        return
    target = folder / EXPORT_PARTS["diffusion"]
    generator.set_memory_format(torch.contiguous_format)  # loaded for drawing (channels last); safetensors stores the plain layout
    generator.unet.save_pretrained(target / "unet")
    generator.text_encoder.save_pretrained(target / "text_encoder")
    generator.tokenizer.save_pretrained(target / "tokenizer")
    generator.noise_scheduler.save_pretrained(target / "scheduler")
    components = {"text_encoder": ["transformers", type(generator.text_encoder).__name__],
                  "tokenizer": ["transformers", type(generator.tokenizer).__name__],
                  "unet": ["diffusers", type(generator.unet).__name__],
                  "scheduler": ["diffusers", type(generator.noise_scheduler).__name__]}
    if generator.vae is None:
        # A pixel-space UNet: no diffusers pipeline draws with it (StableDiffusionPipeline needs a
        # VAE), so no model_index.json claims one; each component loads with its own class.
        return
    generator.vae.save_pretrained(target / "vae")
    components["vae"] = ["diffusers", type(generator.vae).__name__]
    # the Hugging Face stack is slow to import: only this path needs it
    import diffusers

    index = {"_class_name": DIFFUSION_PIPELINE, "_diffusers_version": diffusers.__version__, **components,
             "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False}
    (target / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def stock_classes(system) -> dict[str, str]:
    """The stock ``transformers``/``diffusers`` class each part folder of the export loads with."""
    model = system.model
    classes = {}
    if model.llm is not None:
        classes[EXPORT_PARTS["llm"]] = "AutoModelForCausalLM"
    if model.perceptron is not None:
        classes[EXPORT_PARTS["blip2"]] = PERCEPTRON_CLASS
    if model.generator is not None:
        # A pixel-space generator has no pipeline: its UNet and text encoder load apart.
        classes[EXPORT_PARTS["diffusion"]] = DIFFUSION_PIPELINE if model.generator.vae is not None else \
            "UNet2DConditionModel (unet/) + CLIPTextModel (text_encoder/); pixel space, no pipeline"
    return classes


def _without_local_paths(folder: Path) -> None:
    """Drop ``_name_or_path`` (the training machine's folder the part was loaded from) from every
    config that ``save_pretrained`` wrote: an export names no local path of the machine it came from."""
    for config in folder.rglob("*.json"):
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "_name_or_path" in data:
            del data["_name_or_path"]
            config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def portable_path(value: str | None) -> str | None:
    """``value`` without the machine's folders: an absolute path becomes its last part ("world"),
    anything else (a Hub id, a relative path) stays."""
    if not value:
        return value
    path = Path(value).expanduser()
    return path.name if path.is_absolute() else value


def source_name(source: Path) -> str:
    """The checkpoint as its run's name and the path inside the run ("tiny-e2e/checkpoints/step-0000002")."""
    run = run_dir_of(source)
    try:
        return str(Path(run.name) / source.relative_to(run)) if source != run else run.name
    except ValueError:
        return source.name


def _save_weights(weights: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    save_tensors(weights, path, metadata=metadata)


def exported_config(config, *, merged: bool):
    """The run's config for the export, which is for inference: every part ``frozen``.

    The trained weights are in the part folders, so nothing is left to train; with
    ``keep_adapters`` the LoRA parts stay ``lora`` so that ``build_model`` injects the adapters
    that ``trainable.safetensors`` fills (their embeddings, trained or not, are in ``llm/``).
    """
    config = deepcopy(config)
    trainable = config.model.trainable
    config.model.trainable = replace(trainable, **{part: "lora" if mode == "lora" and not merged else "frozen"
                                           for part, mode in asdict(trainable).items()})
    config.model.lora = replace(config.model.lora, train_embeddings=False)
    # Every weight is in this folder: the pretrained start is not read again. Paths of the
    # training machine are cut to their last part (the dataset's folder name; give --data).
    config.model.init_from = []
    config.data.path = portable_path(config.data.path)
    config.model.text_from = portable_path(config.model.text_from)
    for part in ("llm", "blip2", "diffusion"):
        setattr(config.model, part, portable_path(getattr(config.model, part)))
    return config


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) of everything under ``folder``."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def measure_load_seconds(folder: Path) -> float:
    """Seconds ``DialogueSystem.from_pretrained(folder)`` takes on the CPU, once, in this process."""
    started = time.perf_counter()
    DialogueSystem.from_pretrained(folder, "cpu")
    return round(time.perf_counter() - started, 3)


def find_eval_files(checkpoint: Path) -> list[Path]:
    """Eval results (``photodialog eval``) of this checkpoint, under its own or its run's ``eval/``."""
    found = []
    for folder in dict.fromkeys((checkpoint / "eval", run_dir_of(checkpoint) / "eval")):
        for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                result = json.loads(file.read_text(encoding="utf-8"))
                named = Path(result["model"]["checkpoint"]).resolve()
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if named == checkpoint.resolve():
                found.append(file)
    return found


def _export_info(source: Path, system, state, keep_adapters: bool, use_average: bool, evals: list[Path]) -> dict:
    return {
        "schema": EXPORT_SCHEMA,
        "photodialog_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_checkpoint": source_name(source),
        "step": state.step if state is not None else None,
        "kind": system.kind,
        "weights": "adapters" if keep_adapters else "merged",
        "lora_parts": sorted(part for part, mode in asdict(system.config.model.trainable).items() if mode == "lora"),
        "weights_averaged": bool(use_average and (source / EMA_WEIGHTS).is_file()),
        "parts": {name: sub for name, sub in EXPORT_PARTS.items()},
        "classes": stock_classes(system),
        "eval_files": [f.name for f in evals],
    }


def _write_info_and_card(folder: Path, info: dict, card_text) -> str:
    """Write ``export.json`` and the card (``card_text()``, called after ``info`` holds the size)."""
    card = folder / CARD_FILE
    for _ in range(2):  # the card's own size is part of the folder size it states: the second pass counts it
        info["bytes"], info["files"] = folder_size(folder)
        (folder / EXPORT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        text = card_text()
        card.write_text(text, encoding="utf-8")
    return text


# --- the Hub -------------------------------------------------------------------------------


def push_to_hub(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload an export folder to the Hugging Face Hub model repository ``repo_id``; returns its URL.

    Creates the repository if needed. Raises ``UserError`` for a malformed ``repo_id`` (before
    any request) and when the Hub refuses (no token, no write access, no network).
    """
    # the Hugging Face stack is slow to import: only this path needs it
    import huggingface_hub as hub
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"--push-to-hub {repo_id!r} is not a Hub repository id (NAME or OWNER/NAME): {err}") from None
    api = hub.HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message=f"photodialog export ({read_export_info(folder).get('kind', 'model')})")
    except (OSError, ValueError, HfHubHTTPError) as err:
        raise UserError(
            f"could not push {folder} to the Hub repository {repo_id}: {err}. Log in first (`hf auth login` or "
            "HF_TOKEN) on a machine that reaches huggingface.co; the export folder itself is complete."
        ) from None
    return str(url)
