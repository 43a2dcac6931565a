"""A dialogue system: the model plus everything needed to feed it (formatter, photo loading).

``build_system`` makes one for training from a ``RunConfig``; ``load_system`` loads a trained
checkpoint for eval, chat, serve and bench. A pipeline checkpoint (its image part trained with
``model.text_from`` pointing at the text part's run) loads as one system: the text part's LLM
and context-photo captioner, joined to the image part's generator by caption text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from photodialog.checkpoints import EMA_WEIGHTS, WEIGHTS, load_trainable, resolve_checkpoint, run_dir_of
from photodialog.config import RunConfig, load_config
from photodialog.data.schema import Turn
from photodialog.errors import UserError
from photodialog.models.assembly import PartSources, build_model, ensure_tiny_base, part_sources
from photodialog.models.batch import PhotoTensors, caption_batch, collate
from photodialog.models.dialogue_model import JointSettings, PhotoDialogModel
from photodialog.models.formatting import DialogueFormatter, make_captioner
from photodialog.models.generation import Reply, Responder
from photodialog.models.generation_settings import GenerationSettings
from photodialog.models.image_generator import image_to_tensor
from photodialog.warm_start import EXPORT_FILE, copy_base, is_export, load_init_from, source_checkpoints

log = logging.getLogger(__name__)
BASE_DIR = "base"

# An export folder (``photodialog export``; written by ``photodialog.export``, read here).
EXPORT_SCHEMA = "photodialog.export/1"
EXPORT_PARTS = {"llm": "llm", "blip2": "blip2", "diffusion": "diffusion"}  # PartSources field -> sub-folder
EXTRA_WEIGHTS = "trainable.safetensors"  # weights outside the parts (projection, kept adapters)
PROBE_FOLDER = "probe"  # a pipeline's context-photo captioner (its world's probe), copied into the export


@dataclass
class DialogueSystem:
    """A model with everything needed to feed it: the run's config, the ``PhotoDialogModel``, the
    formatter that lays dialogues out as tokens (None for a generator trained alone) and the photo
    loader; ``checkpoint`` is the folder it was loaded from (None when freshly built).
    """

    config: RunConfig
    model: PhotoDialogModel
    formatter: DialogueFormatter | None
    photos: PhotoTensors
    checkpoint: Path | None = None

    def make_batch(self, items: list):
        """A training batch from encoded samples (or from caption pairs, for a generator alone)."""
        if self.formatter is None:
            return caption_batch(items, self.photos)
        size = self.model.perceptron.image_size if self.model.perceptron is not None else 1
        return collate(items, self.photos, pad_id=self.model.tokenizer.pad_token_id, context_size=size)

    def responder(self) -> Responder:
        """The inference driver (paper §2.5) for this system; ``UserError`` when it has no language model."""
        if self.formatter is None:
            raise UserError("this checkpoint has no language model (a pipeline image part trained without model.text_from)")
        return Responder(self.model, self.formatter, self.photos)

    def reply(self, history: list[Turn], speaker: str, settings: GenerationSettings | None = None, **kwargs) -> Reply:
        """The next turn of ``history`` spoken by ``speaker``."""
        return self.responder().respond([history], [speaker], settings or GenerationSettings(), **kwargs)[0]

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device | None = None, *,
                        data_path: str | None = None) -> "DialogueSystem":
        """The system saved by ``photodialog export`` in ``folder``, ready for inference.

        Needs nothing but the folder (its parts, trained weights, tokenizers and config are
        all in it). ``data_path`` replaces the dataset its config names (the probe captioner
        and eval read it). Raises ``UserError`` if ``folder`` is not an export.
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise UserError(f"no export folder at {root}; `photodialog export --checkpoint RUN --out DIR` writes one")
        info = read_export_info(root)
        if info.get("schema") != EXPORT_SCHEMA:
            raise UserError(f"{root / EXPORT_FILE} has schema {info.get('schema')!r}; this photodialog reads {EXPORT_SCHEMA}")
        sources = PartSources(**{part: str(root / sub) for part, sub in EXPORT_PARTS.items()})
        probe = root / PROBE_FOLDER if not data_path and (root / PROBE_FOLDER).is_dir() else None
        system = assemble_system(read_config(root, data_path), sources, root / EXTRA_WEIGHTS, root, probe=probe)
        return ready_for_inference(system, device)

    @property
    def kind(self) -> str:
        """``end-to-end`` when L_v reaches the LLM through the bridge, else ``pipeline``."""
        model = self.config.model
        return "pipeline" if model.text_from or model.bridge == "none" else "end-to-end"


def make_formatter(model: PhotoDialogModel, config: RunConfig, probe: Path | None = None) -> DialogueFormatter | None:
    """The token layout of ``model``'s dialogues (``num_query_tokens`` slots per context photo), or None
    without an LLM (a generator trained alone); ``probe``: see ``make_captioner``.
    """
    if model.llm is None:
        return None
    slots = model.perceptron.num_query_tokens if model.perceptron is not None else 0
    return DialogueFormatter(
        model.tokenizer, photo_slots=slots, context_photos=config.model.context_photos,
        captioner=make_captioner(config.model, config.data.path, probe),
        max_context_tokens=config.model.max_context_tokens, max_response_tokens=config.model.max_response_tokens,
    )


def make_photo_tensors(model: PhotoDialogModel) -> PhotoTensors:
    """Photo loading for ``model``: the perceptron's preprocessing for context photos and
    ``image_to_tensor`` at the generator's size ([3, S, S] in [-1, 1]) for target photos.
    """
    context = (lambda image: model.perceptron.preprocess([image])[0]) if model.perceptron is not None else None
    target = (lambda image: image_to_tensor(image, model.generator.image_size)) if model.generator is not None else None
    return PhotoTensors(context, target)


def build_system(config: RunConfig, run_dir: Path, texts: list[str] | None = None, photos: list[str] | None = None,
                 *, progress: bool = False) -> DialogueSystem:
    """A fresh (untrained) system for ``config``; the tiny preset's base parts go to ``run_dir/base``."""
    base = None
    sources = source_checkpoints(config.model.init_from, run_dir) if config.model.init_from else []
    if config.model.preset == "tiny":
        base = run_dir / BASE_DIR
        if sources:
            copy_base(sources, base)  # a pretrained start brings its base parts along
        ensure_tiny_base(config.model, base, texts, seed=config.train.seed, photos=photos, progress=progress,
                         data_path=config.data.path)
    torch.manual_seed(config.train.seed)  # the new parts (photo token rows, projection) start the same every time
    model = build_model(config.model, part_sources(config.model, base))
    if sources:
        start = load_init_from(model, sources)
        log.info("pretrained start: %s; %d tensors new", start.loaded, len(start.fresh))
    return DialogueSystem(config, model, make_formatter(model, config), make_photo_tensors(model))


def read_export_info(folder: str | Path) -> dict:
    """An export folder's ``export.json``; ``UserError`` if it is missing or not JSON."""
    file = Path(folder).expanduser() / EXPORT_FILE
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{file} cannot be read ({err}); export the checkpoint again") from None


def load_system(path: str | Path, device: str | torch.device | None = None, *, data_path: str | None = None,
                use_average: bool = True) -> DialogueSystem:
    """The system of a checkpoint (or of a run folder's best checkpoint, or an export), ready for inference.

    A checkpoint that kept a moving average of its weights (``train.ema_decay``) is loaded with
    the average, unless ``use_average=False``. A folder written by ``photodialog export`` is
    loaded by ``DialogueSystem.from_pretrained``.
    """
    if is_export(path):
        return DialogueSystem.from_pretrained(path, device, data_path=data_path)
    checkpoint = resolve_checkpoint(path)
    config = read_config(checkpoint, data_path)
    run_dir = run_dir_of(checkpoint)
    base = None  # the paper preset reads its parts from the hub ids or folders in its config
    if config.model.preset == "tiny":
        base = run_dir / BASE_DIR
        if not (base / "llm").is_dir():
            raise UserError(f"{checkpoint} belongs to a tiny run whose base parts ({base}) are missing; keep the run folder together")
    averaged = use_average and (checkpoint / EMA_WEIGHTS).is_file()
    system = assemble_system(config, part_sources(config.model, base), checkpoint / (EMA_WEIGHTS if averaged else WEIGHTS), checkpoint)
    if config.model.text_from and system.model.llm is None:
        text_part = text_part_path(config.model.text_from, run_dir)
        system = join_pipeline(load_system(text_part, data_path=config.data.path, use_average=use_average), system)
    return ready_for_inference(system, device)


def read_config(folder: Path, data_path: str | None = None) -> RunConfig:
    """The ``config.yaml`` of a checkpoint or export folder, its dataset replaced by ``data_path`` if given."""
    config = load_config(str(folder / "config.yaml"))
    if data_path:
        config.data.path = data_path
    return config


def assemble_system(config: RunConfig, sources, weights: Path, folder: Path, probe: Path | None = None) -> DialogueSystem:
    """The parts of ``config`` read from ``sources``, with the trained ``weights`` file copied in.

    Shared by run checkpoints (``load_system``) and exports (``DialogueSystem.from_pretrained``,
    whose copy of a pipeline's probe captioner is ``probe``).
    """
    # As in build_system: weights that are new and never trained (the photo tokens' embedding rows
    # of a LoRA LLM without train_embeddings) are drawn again here, so draw them as training did.
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, sources)
    if config.model.init_from and not all(p.requires_grad for p in model.parameters()):
        # Frozen parts were never saved by this run: they are the pretrained start's.
        load_init_from(model, source_checkpoints(config.model.init_from, run_dir_of(weights.parent)))
    load_trainable(model, weights.parent, file=weights.name)
    return DialogueSystem(config, model, make_formatter(model, config, probe), make_photo_tensors(model), folder)


def ready_for_inference(system: DialogueSystem, device: str | torch.device | None) -> DialogueSystem:
    """``system`` on ``device`` (unchanged when None) in eval mode, its generator's convolutions
    in the layout they draw fastest in (``ImageGenerator.ready_to_draw``); returns it."""
    if device is not None:
        system.model.to(device)
    system.model.eval()
    if system.model.generator is not None:
        system.model.generator.ready_to_draw()
    return system


def text_part_path(text_from: str, run_dir: Path) -> Path:
    """Where a pipeline image part's ``model.text_from`` points: as given, else next to its run."""
    given = Path(text_from).expanduser()
    for candidate in (given, run_dir.parent / given, run_dir / given):
        if candidate.exists():
            return candidate
    raise UserError(f"model.text_from '{text_from}' (the pipeline's text part) was not found; give its run folder")


def join_pipeline(text: DialogueSystem, image: DialogueSystem) -> DialogueSystem:
    """The pipeline: the text part's LLM and captioner, the image part's generator, joined by text."""
    settings = JointSettings(bridge="none")
    model = PhotoDialogModel(text.model.llm, text.model.tokenizer, text.model.perceptron, image.model.generator, settings)
    config = image.config
    config.model = replace(text.config.model, parts=["llm", "generator"] + (["perceptron"] if text.model.perceptron else []),
                           text_from=image.config.model.text_from, bridge="none", diffusion=image.config.model.diffusion,
                           image_size=image.config.model.image_size, trainable=image.config.model.trainable)
    return DialogueSystem(config, model, text.formatter, make_photo_tensors(model), image.checkpoint)
