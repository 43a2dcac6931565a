"""Table 2 for any checkpoint: replies and photos for every target turn of a split, scored over seeds.

``evaluate(EvalRequest(...))`` is what ``photodialog eval`` runs:

1. load the checkpoint as a dialogue system (end-to-end, or a pipeline joined by caption text);
2. take every turn ``i >= 1`` of every dialogue of the split as a target (``runner.load_targets``);
3. write the replies: **once** when decoding is greedy or beam search, which are deterministic,
   so the seeds change only the diffusion noise (the result's settings say so); once per seed
   when sampling;
4. per seed: draw the photo of every reply that has a caption (its first caption: one image
   per predicted turn) and score BLEU-1/2, ROUGE-L, share-moment P/R/F1, IS and FID (generated
   set vs the first gold photo of every target turn that shares one; unavailable, with the
   reason and the flag, without Inception weights), and in a synthetic world the probe scores
   (``probe_scores``);
5. aggregate over seeds and write the result JSON, its Markdown, the photos and the
   predictions (``eval_files``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from photodialog.config import EvalConfig
from photodialog.data.schema import Sample
from photodialog.errors import UserError
from photodialog.evaluation.eval_files import EvalPaths, eval_paths, save_photos, write_predictions, write_text
from photodialog.evaluation.image_metrics import INCEPTION, fidelity_metric_set, fidelity_scores
from photodialog.evaluation.probe_scores import ProbeScorer, all_probe_keys, in_table_order, load_probe_scorer
from photodialog.evaluation.results import SeedResult, build_result, save_result
from photodialog.evaluation.runner import NOISE_SEED_STRIDE, draw_photos, generate_replies, load_targets
from photodialog.models.generation import GenerationSettings, Reply

DETERMINISTIC_DECODING = ("greedy", "beam")
DECODINGS = ("greedy", "beam", "sample")
NO_GENERATOR = (
    "this checkpoint has no image generator (a pipeline text part); evaluate the pipeline's image part, "
    "whose model.text_from joins the two"
)


@dataclass
class EvalRequest:
    """What to evaluate and how; ``None`` fields fall back to the checkpoint's ``eval`` config."""

    checkpoint: str
    data: str | None = None
    """Dataset folder; default: the checkpoint's ``data.path``."""
    split: str = "test"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str | None = None
    """Result JSON; default ``<checkpoint>/eval/<split>.json``."""
    max_samples: int = 0
    """Only the first N target turns (0 = all, the protocol)."""
    inception_weights: str | None = None
    device: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    """``GenerationSettings`` fields to override (``decoding``, ``num_beams``, ``diffusion_steps``...)."""
    batch_size: int | None = None
    name: str | None = None
    """Model name in tables; default ``end-to-end``, ``pipeline`` or ``Divter``."""
    isc_splits: int = 10
    feature_extractor: str = INCEPTION
    """torch-fidelity extractor for IS/FID; the default is the paper's Inception."""
    progress: bool = True


@dataclass
class EvalOutputs:
    result: dict[str, Any]
    paths: EvalPaths


# ------------------------------------------------------------ settings


def generation_settings(config: EvalConfig, overrides: Mapping[str, Any] | None = None) -> GenerationSettings:
    """The checkpoint's eval settings with ``overrides`` (None values ignored), checked."""
    settings = GenerationSettings(
        max_new_tokens=config.max_new_tokens, decoding=config.decoding, num_beams=config.num_beams,
        temperature=config.temperature, top_p=config.top_p, diffusion_steps=config.diffusion_steps,
        guidance_scale=config.guidance_scale, sampler=config.scheduler,
    )
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(GenerationSettings)})
    if unknown:
        raise ValueError(f"unknown generation settings {unknown}")
    settings = replace(settings, **overrides)
    check_settings(settings)
    return settings


def check_settings(settings: GenerationSettings) -> None:
    from photodialog.models.image_generator import SAMPLERS

    problems = []
    if settings.decoding not in DECODINGS:
        problems.append(f"decoding must be one of {', '.join(DECODINGS)}, got {settings.decoding!r}")
    if settings.max_new_tokens <= 0 or settings.diffusion_steps <= 0:
        problems.append("max new tokens and diffusion steps must be positive")
    if settings.decoding == "beam" and settings.num_beams < 2:
        problems.append(f"beam search needs at least 2 beams, got {settings.num_beams}")
    if settings.decoding == "sample" and (settings.temperature <= 0 or not 0 < settings.top_p <= 1):
        problems.append("sampling needs temperature > 0 and 0 < top-p <= 1")
    if settings.sampler not in SAMPLERS:
        problems.append(f"the diffusion sampler must be one of {', '.join(SAMPLERS)}, got {settings.sampler!r}")
    if problems:
        raise UserError("; ".join(problems))


def checked_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise UserError("give at least one seed (e.g. --seeds 0,1,2)")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"each seed may be evaluated once; got {seeds}")
    if any(s < 0 for s in seeds):
        raise UserError(f"seeds must be non-negative integers; got {seeds}")
    return seeds


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------ the gold side


@dataclass
class GoldTargets:
    """What the targets say: gold texts, the reference photos and the gold captions."""

    samples: list[Sample]

    def __post_init__(self) -> None:
        self.texts = [s.response.text for s in self.samples]
        self.reference: dict[int, str] = {}  # target -> its first gold photo with a local file
        self.captions: dict[int, str] = {}  # target -> the caption of its first gold photo
        self.missing_photos = 0  # gold photo turns whose photos have no local file (dead URLs)
        for index, sample in enumerate(self.samples):
            photos = sample.response.photos
            if not photos:
                continue
            if photos[0].caption.strip():
                self.captions[index] = photos[0].caption.strip()
            with_file = [p.path for p in photos if p.path]
            if with_file:
                self.reference[index] = with_file[0]
            else:
                self.missing_photos += 1

    @property
    def photo_turns(self) -> int:
        return sum(s.response.shares_photo for s in self.samples)


# ------------------------------------------------------------ scoring one seed


class SeedScorer:
    """Draws and scores the photos of one seed's replies; keeps what is shared across seeds."""

    def __init__(self, system, gold: GoldTargets, settings: GenerationSettings, request: EvalRequest,
                 paths: EvalPaths, batch_size: int, device: str):
        self.system, self.gold, self.settings, self.request = system, gold, settings, request
        self.paths, self.batch_size, self.device = paths, batch_size, device
        self.generator = system.model.generator
        self.probe, self.probe_problem = load_probe_scorer(request.data or system.config.data.path)
        self._reference_features = None

    @property
    def is_world(self) -> bool:
        return self.probe is not None or self.probe_problem is not None

    def score(self, seed: int, replies: Sequence[Reply]) -> tuple[SeedResult, dict[int, Path]]:
        """The seed's metrics and the photo files drawn for it (by target index)."""
        from photodialog.evaluation.share_moment import share_moment_scores
        from photodialog.evaluation.text_metrics import text_scores

        torch.manual_seed(seed)
        result = SeedResult(seed)
        predicted = [reply.text for reply in replies]
        result.add(text_scores(predicted, self.gold.texts))
        result.add(share_moment_scores(predicted, self.gold.texts))
        result.counts["reference_photos_missing"] = self.gold.missing_photos
        if self.generator is None:
            result.mark_unavailable(["is", "fid"] + (all_probe_keys() if self.is_world else []), NO_GENERATOR)
            return result, {}
        captions = {i: reply.captions[0] for i, reply in enumerate(replies) if reply.captions}
        photos = dict(zip(captions, self._draw(list(captions.values()), seed, f"photos, seed {seed}")))
        saved = save_photos(self.paths.seed_photos(seed), photos)
        scores = fidelity_scores(
            [saved[i] for i in sorted(saved)], list(self.gold.reference.values()),
            inception_weights=self.request.inception_weights, device=self.device,
            isc_splits=self.request.isc_splits, feature_extractor=self.request.feature_extractor,
        )
        result.add(fidelity_metric_set(scores))
        result.counts["generated_photos"] = len(saved)
        if self.probe is not None:
            self._probe_scores(result, seed, photos, captions)
        elif self.probe_problem is not None:
            result.mark_unavailable(all_probe_keys(), self.probe_problem["reason"], self.probe_problem.get("fix"))
        return result, saved

    def _draw(self, captions: list[str], seed: int, desc: str) -> list:
        return draw_photos(self.generator, captions, self.settings, seed=seed, batch_size=self.batch_size,
                           progress=self.request.progress, desc=desc)

    def reference_features(self, probe: ProbeScorer):
        if self._reference_features is None:
            from photodialog.data.photos import load_photo

            images = [load_photo(path) for path in self.gold.reference.values()]
            self._reference_features = probe.features(images) if images else probe.features([])
        return self._reference_features

    def _probe_scores(self, result: SeedResult, seed: int, photos: dict[int, Any], captions: dict[int, str]) -> None:
        from photodialog.data.synth import find_attributes

        probe = self.probe
        order = sorted(photos)
        generated = [photos[i] for i in order]
        result.add(probe.accuracy("caption", generated, [find_attributes(captions[i]) for i in order]))
        both = [i for i in order if i in self.gold.captions]
        result.add(probe.accuracy("gold", [photos[i] for i in both], [find_attributes(self.gold.captions[i]) for i in both]))
        # The image generator alone: the gold captions, with the same noise seeds as the model's photos.
        gold_order = sorted(self.gold.captions)
        gold_texts = [self.gold.captions[i] for i in gold_order]
        drawn = self._draw(gold_texts, seed, f"gold-caption photos, seed {seed}")
        save_photos(self.paths.seed_photos(seed, gold_captions=True), dict(zip(gold_order, drawn)))
        result.add(probe.accuracy("generator", drawn, [find_attributes(text) for text in gold_texts]))
        reference = self.reference_features(probe)
        result.add(probe.frechet("probe_fid", generated, reference))
        result.add(probe.frechet("probe_fid_generator", drawn, reference))


# ------------------------------------------------------------ the whole evaluation


def evaluate(request: EvalRequest) -> EvalOutputs:
    """Evaluate a checkpoint on a split over seeds; write and return the result (module docstring)."""
    from photodialog.system import load_system

    seeds = checked_seeds(request.seeds)
    paths = eval_paths(request.out, request.checkpoint, request.split)
    if request.data and not Path(request.data).exists():
        raise UserError(f"--data {request.data} does not exist")
    device = request.device or default_device()
    system = load_system(request.checkpoint, device, data_path=request.data)
    data_path = request.data or system.config.data.path
    if not data_path:
        raise UserError("the checkpoint's config names no dataset; pass --data DIR")
    request = replace(request, data=str(data_path))
    gold = GoldTargets(load_targets(data_path, request.split, request.max_samples))
    settings = generation_settings(system.config.eval, request.generation)
    batch_size = request.batch_size or system.config.eval.batch_size
    scorer = SeedScorer(system, gold, settings, request, paths, batch_size, device)

    text_once = settings.decoding in DETERMINISTIC_DECODING
    shared = _replies(system, gold, settings, batch_size, request, "replies") if text_once else None
    seed_results, replies_by_seed, photos_by_seed = [], {}, {}
    for seed in seeds:
        replies = shared if shared is not None else _replies(
            system, gold, replace(settings, seed=seed), batch_size, request, f"replies, seed {seed}")
        seed_result, saved = scorer.score(seed, replies)
        seed_results.append(seed_result)
        replies_by_seed[seed], photos_by_seed[seed] = replies, saved

    result = build_result(
        model=model_info(system, request.name),
        data=data_info(data_path, request.split, gold),
        seed_results=seed_results,
        settings=settings_info(settings, request, scorer, batch_size, device, text_once),
    )
    result["aggregate"] = in_table_order(result["aggregate"])
    save_result(result, paths.json)
    write_predictions(paths.predictions, prediction_rows(gold, replies_by_seed, photos_by_seed, paths, text_once))
    write_text(paths.markdown, markdown_document(result, paths))
    return EvalOutputs(result, paths)


def _replies(system, gold: GoldTargets, settings: GenerationSettings, batch_size: int, request: EvalRequest, desc: str):
    return generate_replies(system, gold.samples, settings, batch_size=batch_size, progress=request.progress, desc=desc)


# ------------------------------------------------------------ what the result records


def default_model_name(system) -> str:
    """``Divter`` for a pipeline whose LLM is a GPT-2 (DialoGPT) model, else the system's kind."""
    llm = system.model.llm
    if system.kind == "pipeline" and llm is not None and getattr(llm.config, "model_type", "") == "gpt2":
        return "Divter"
    return system.kind


def model_info(system, name: str | None) -> dict[str, Any]:
    from photodialog.training.checkpoint import read_state

    cfg = system.config.model
    llm = system.model.llm
    architecture = getattr(llm.config, "model_type", None) if llm is not None else None
    paper = cfg.preset == "paper"
    return {
        "name": name or default_model_name(system),
        "kind": system.kind,
        "checkpoint": str(system.checkpoint),
        "step": read_state(system.checkpoint).step if system.checkpoint else None,
        "preset": cfg.preset,
        "llm": cfg.llm if paper else f"tiny {architecture}",
        "llm_architecture": architecture,
        "diffusion": (cfg.diffusion if paper else "tiny") if system.model.generator is not None else None,
        "context_photos": cfg.context_photos,
        "captioner": cfg.captioner if cfg.context_photos == "caption" else None,
        "bridge": cfg.bridge,
        "text_from": cfg.text_from or None,
    }


def dataset_name(data_path: str | Path) -> str:
    from photodialog.data.loading import dataset_root
    from photodialog.data.synth.world import WORLD_FILE

    root = dataset_root(data_path)
    return "synthetic" if (root / WORLD_FILE).is_file() else root.resolve().name


def data_info(data_path: str | Path, split: str, gold: GoldTargets) -> dict[str, Any]:
    return {
        "dataset": dataset_name(data_path),
        "split": split,
        "path": str(data_path),
        "dialogues": len({s.dialogue_id for s in gold.samples}),
        "targets": len(gold.samples),
        "photo_targets": gold.photo_turns,
        "reference_photos": len(gold.reference),
    }


def settings_info(settings: GenerationSettings, request: EvalRequest, scorer: SeedScorer, batch_size: int,
                  device: str, text_once: bool) -> dict[str, Any]:
    text = (
        f"generated once and reused for every seed: {settings.decoding} decoding is deterministic, "
        "so the seeds change only the diffusion noise"
        if text_once else "generated anew for every seed (sampling)"
    )
    info: dict[str, Any] = {
        "decoding": settings.decoding,
        "max_new_tokens": settings.max_new_tokens,
        "text_generation": text,
        "text_per_seed": not text_once,
        "diffusion_steps": settings.diffusion_steps,
        "guidance_scale": settings.guidance_scale,
        "sampler": settings.sampler,
        "image_size": scorer.generator.image_size if scorer.generator is not None else None,
        "photos_per_turn": "one: the photo of the first caption of each predicted turn",
        "reference_set": "the first gold photo (with a local file) of every target turn that shares one",
        "noise_seed": f"seed * {NOISE_SEED_STRIDE} + batch index, batches of {batch_size} captions",
        "batch_size": batch_size,
        "max_samples": request.max_samples,
        "inception_weights": str(request.inception_weights) if request.inception_weights else None,
        "feature_extractor": request.feature_extractor,
        "isc_splits": request.isc_splits,
        "device": device,
        "probe": scorer.probe.source if scorer.probe is not None else None,
    }
    if settings.decoding == "beam":
        info["num_beams"] = settings.num_beams
    if settings.decoding == "sample":
        info.update(temperature=settings.temperature, top_p=settings.top_p)
    return info


def prediction_rows(gold: GoldTargets, replies_by_seed: Mapping[int, Sequence[Reply]],
                    photos_by_seed: Mapping[int, Mapping[int, Path]], paths: EvalPaths, text_once: bool) -> list[dict]:
    """One row per target: where it is, the gold and predicted text, and its photo files."""
    rows = []
    first = next(iter(replies_by_seed.values()))
    for index, sample in enumerate(gold.samples):
        row: dict[str, Any] = {
            "index": index, "dialogue_id": sample.dialogue_id, "turn_index": sample.turn_index,
            "speaker": sample.response.speaker, "gold": sample.response.text,
        }
        if text_once:
            row.update(predicted=first[index].text, captions=first[index].captions)
        else:
            row["predicted_by_seed"] = {str(s): replies[index].text for s, replies in replies_by_seed.items()}
        files = {str(s): paths.relative(saved[index]) for s, saved in photos_by_seed.items() if index in saved}
        if files:
            row["photos_by_seed"] = files
        rows.append(row)
    return rows


def markdown_document(result: Mapping[str, Any], paths: EvalPaths) -> str:
    """The result as a Markdown page: the tables, a legend of the probe scores, the settings, the files."""
    from photodialog.evaluation.probe_scores import GROUP_MEANING
    from photodialog.evaluation.tables import report

    model, data, settings = result["model"], result["data"], result["settings"]
    lines = [
        f"# Evaluation of {model['name']} on {data['dataset']} / {data['split']}",
        "",
        f"Checkpoint `{model['checkpoint']}`; {data['targets']} target turns of {data['dialogues']} dialogues "
        f"({data['photo_targets']} share a photo); seeds {', '.join(map(str, result['seeds']))}.",
        "",
        report([result], with_seeds=True),
    ]
    if any(key.startswith("probe_") for key in result["aggregate"]):
        lines += ["**Probe scores** (synthetic world; accuracies in %):", ""]
        lines += [f"- `{group}_*`: {meaning}." for group, meaning in GROUP_MEANING.items()]
        lines += ["- probe-FID: generated photos vs the reference photos, in the probe's feature space (not Inception);",
                  "  `probe_fid_generator`: the same for the photos drawn from the gold captions.", ""]
    lines += ["**Settings**", ""] + [f"- {key}: {value}" for key, value in settings.items()]
    lines += ["", f"Photos: `{paths.relative(paths.photos)}/`; predictions: `{paths.relative(paths.predictions)}`.", ""]
    return "\n".join(lines)
