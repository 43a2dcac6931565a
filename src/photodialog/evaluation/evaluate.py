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


from photodialog.config import EvalConfig
from photodialog.devices import resolve_device
from photodialog.errors import UserError
from photodialog.evaluation.eval_files import EvalPaths, eval_paths, write_predictions, write_text
from photodialog.evaluation.eval_record import data_info, markdown_document, model_info, prediction_rows, settings_info
from photodialog.evaluation.image_metrics import INCEPTION
from photodialog.evaluation.results import build_result, save_result
from photodialog.evaluation.runner import generate_replies, load_targets
from photodialog.evaluation.seed_scoring import GoldTargets, ScoringOptions, SeedScorer
from photodialog.models.generation import GenerationSettings, check_settings

DETERMINISTIC_DECODING = ("greedy", "beam")


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
    return check_settings(replace(settings, **overrides))


def checked_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise UserError("give at least one seed (e.g. --seeds 0,1,2)")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"each seed may be evaluated once; got {seeds}")
    if any(s < 0 for s in seeds):
        raise UserError(f"seeds must be non-negative integers; got {seeds}")
    return seeds


# ------------------------------------------------------------ the whole evaluation


@dataclass
class EvalPlan:
    """Everything an evaluation needs except the model: checked before the model loads."""

    request: EvalRequest
    seeds: list[int]
    paths: EvalPaths
    settings: GenerationSettings
    gold: GoldTargets
    options: ScoringOptions

    @property
    def text_once(self) -> bool:
        return self.settings.decoding in DETERMINISTIC_DECODING


def plan_evaluation(request: EvalRequest) -> EvalPlan:
    """Check the request and read the targets; bad flags or data fail here, before a model loads."""
    from photodialog.config import load_config
    from photodialog.training.checkpoint import resolve_checkpoint

    seeds = checked_seeds(request.seeds)
    paths = eval_paths(request.out, request.checkpoint, request.split)
    device = resolve_device(request.device)
    config = load_config(str(resolve_checkpoint(request.checkpoint) / "config.yaml"))
    data_path = request.data or config.data.path
    if not data_path:
        raise UserError("the checkpoint's config names no dataset; pass --data DIR")
    if not Path(data_path).exists():
        where = "--data" if request.data else "the checkpoint's data.path"
        raise UserError(f"{where} {data_path} does not exist" + ("" if request.data else "; pass --data DIR"))
    settings = generation_settings(config.eval, request.generation)
    gold = GoldTargets(load_targets(data_path, request.split, request.max_samples))
    options = ScoringOptions(
        data_path=str(data_path), device=device, batch_size=request.batch_size or config.eval.batch_size,
        inception_weights=request.inception_weights, isc_splits=request.isc_splits,
        feature_extractor=request.feature_extractor, progress=request.progress,
    )
    return EvalPlan(replace(request, data=str(data_path)), seeds, paths, settings, gold, options)


def evaluate(request: EvalRequest) -> EvalOutputs:
    """Evaluate a checkpoint on a split over seeds; write and return the result (module docstring)."""
    from photodialog.system import load_system

    plan = plan_evaluation(request)
    system = load_system(request.checkpoint, plan.options.device, data_path=plan.request.data)
    scorer = SeedScorer(system, plan.gold, plan.settings, plan.paths, plan.options)
    seed_results, replies_by_seed, photos_by_seed = [], {}, {}
    shared = _replies(system, plan, plan.settings, "replies") if plan.text_once else None
    for seed in plan.seeds:
        replies = shared if shared is not None else _replies(system, plan, replace(plan.settings, seed=seed), f"replies, seed {seed}")
        seed_result, saved = scorer.score(seed, replies)
        seed_results.append(seed_result)
        replies_by_seed[seed], photos_by_seed[seed] = replies, saved
    result = build_result(
        model=model_info(system, request.name),
        data=data_info(plan.request.data, request.split, plan.gold),
        seed_results=seed_results,
        settings=settings_info(plan.settings, plan.request, scorer, plan.text_once),
    )
    save_result(result, plan.paths.json)
    rows = prediction_rows(plan.gold, replies_by_seed, photos_by_seed, plan.paths, plan.text_once)
    write_predictions(plan.paths.predictions, rows)
    write_text(plan.paths.markdown, markdown_document(result, plan.paths))
    return EvalOutputs(result, plan.paths)


def _replies(system, plan: EvalPlan, settings: GenerationSettings, desc: str):
    return generate_replies(system, plan.gold.samples, settings, batch_size=plan.options.batch_size,
                            progress=plan.options.progress, desc=desc)
