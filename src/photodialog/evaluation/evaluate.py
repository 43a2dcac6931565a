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
5. aggregate over seeds and write the photos, the predictions, the Markdown and, last, the
   result JSON (``eval_files``: a kill at any moment leaves the earlier result whole, or none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from photodialog.checkpoints import resolve_checkpoint
from photodialog.config import load_config
from photodialog.data.loading import dataset_root
from photodialog.data.synth.world import photo_attributes
from photodialog.devices import resolve_device
from photodialog.errors import UserError
from photodialog.evaluation.eval_files import EvalPaths, eval_paths, finish_writing, start_writing
from photodialog.evaluation.eval_record import data_info, markdown_document, model_info, prediction_rows, settings_info
from photodialog.evaluation.request import EvalRequest
from photodialog.evaluation.results import build_result, save_result
from photodialog.evaluation.runner import generate_replies, load_targets
from photodialog.evaluation.seed_scoring import GoldTargets, ScoringOptions, SeedScorer
from photodialog.models.generation_settings import GenerationSettings, settings_from_config
from photodialog.system import load_system

DETERMINISTIC_DECODING = ("greedy", "beam")


@dataclass
class EvalOutputs:
    result: dict[str, Any]
    paths: EvalPaths


# ------------------------------------------------------------ settings


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
    settings = settings_from_config(config.eval, request.generation)
    gold = GoldTargets(load_targets(data_path, request.split, request.max_samples), photo_attributes(dataset_root(data_path)))
    options = ScoringOptions(
        data_path=str(data_path), device=device, batch_size=request.batch_size or config.eval.batch_size,
        inception_weights=request.inception_weights, isc_splits=request.isc_splits,
        feature_extractor=request.feature_extractor, progress=request.progress,
    )
    return EvalPlan(replace(request, data=str(data_path)), seeds, paths, settings, gold, options)


def evaluate(request: EvalRequest) -> EvalOutputs:
    """Evaluate a checkpoint on a split over seeds; write and return the result (module docstring)."""
    plan = plan_evaluation(request)
    system = load_system(request.checkpoint, plan.options.device, data_path=plan.request.data)
    scorer = SeedScorer(system, plan.gold, plan.settings, plan.paths, plan.options)
    start_writing(plan.paths)
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
    rows = prediction_rows(plan.gold, replies_by_seed, photos_by_seed, plan.paths, plan.text_once)
    # The result last: a kill before it leaves the earlier result whole, or none (never one naming missing photos).
    finish_writing(plan.paths, rows, markdown_document(result, plan.paths), lambda path: save_result(result, path))
    return EvalOutputs(result, plan.paths)


def _replies(system, plan: EvalPlan, settings: GenerationSettings, desc: str):
    return generate_replies(system, plan.gold.samples, settings, batch_size=plan.options.batch_size,
                            progress=plan.options.progress, desc=desc)
