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
   (``attribute_metrics.ProbeScorer``);
5. aggregate over seeds and write the photos, the predictions, the Markdown and, last, the
   result JSON (``eval_files``: a kill at any moment leaves the earlier result whole, or none).
6. record besides the scores the model, the data and the settings, and write the predictions
   file and the Markdown page next to the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from photodialog.checkpoints import read_state, resolve_checkpoint
from photodialog.config import load_config
from photodialog.data.loading import dataset_name, dataset_root
from photodialog.data.synth.world import photo_attributes
from photodialog.devices import resolve_device
from photodialog.errors import UserError
from photodialog.evaluation.attribute_metrics import GROUP_MEANING, KINDS, group_keys
from photodialog.evaluation.eval_files import EvalPaths, EvalRequest, eval_paths, finish_writing, start_writing
from photodialog.evaluation.metrics import build_result, save_result
from photodialog.evaluation.runner import NOISE_SEED_STRIDE, GoldTargets, ScoringOptions, SeedScorer, generate_replies, load_targets
from photodialog.evaluation.tables import (
    Footnotes, Table, caption_table, format_metric, format_number, seeds_table, share_moment_table, table2,
)
from photodialog.models.generation import Reply
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
    gold = GoldTargets(load_targets(data_path, request.split, request.max_samples, progress=request.progress), photo_attributes(dataset_root(data_path)))
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


# ---- What an eval result records besides the scores: the model, the data, the settings; and its ----

def default_model_name(system) -> str:
    """``Divter`` for a pipeline whose LLM is a GPT-2 (DialoGPT) model, else the system's kind."""
    llm = system.model.llm
    if system.kind == "pipeline" and llm is not None and getattr(llm.config, "model_type", "") == "gpt2":
        return "Divter"
    return system.kind


def model_info(system, name: str | None) -> dict[str, Any]:
    """What was evaluated: name, kind (end-to-end or pipeline), checkpoint and step, and its parts."""
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


def data_info(data_path: str | Path, split: str, gold: GoldTargets) -> dict[str, Any]:
    """Which data, and how many dialogues, target turns, photo turns and reference photos."""
    return {
        "dataset": dataset_name(data_path),
        "split": split,
        "path": str(data_path),
        "dialogues": len({s.dialogue_id for s in gold.samples}),
        "targets": len(gold.samples),
        "photo_targets": gold.photo_turns,
        "reference_photos": len(gold.reference),
    }


def settings_info(settings: GenerationSettings, request: EvalRequest, scorer: SeedScorer, text_once: bool) -> dict[str, Any]:
    """How replies and photos were made and scored, in words where a number would not say enough."""
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
        "noise_seed": f"seed * {NOISE_SEED_STRIDE} + batch index, batches of {scorer.options.batch_size} captions",
        "batch_size": scorer.options.batch_size,
        "max_samples": request.max_samples,
        "inception_weights": str(request.inception_weights) if request.inception_weights else None,
        "feature_extractor": request.feature_extractor,
        "isc_splits": request.isc_splits,
        "device": scorer.options.device,
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
        # "predicted" is always there (the first seed's reply when each seed has its own).
        row.update(predicted=first[index].text, captions=first[index].captions)
        if not text_once:
            row["predicted_by_seed"] = {str(s): replies[index].text for s, replies in replies_by_seed.items()}
        files = {str(s): paths.relative(saved[index]) for s, saved in photos_by_seed.items() if index in saved}
        if files:
            row["photos_by_seed"] = files
        rows.append(row)
    return rows


PROBE_ROWS = {
    "caption": "generated, vs its own caption",
    "gold": "generated, vs the gold photo",
    "generator": "drawn from the gold caption",
}
PROBE_FID_OF_ROW = {"caption": "probe_fid", "generator": "probe_fid_generator"}


def probe_group_table(result: Mapping[str, Any]) -> Table | None:
    """The probe scores as one row per group (accuracies and probe-FID), with a chance row.

    The same numbers as the library's probe table, arranged so that the three groups can be
    read against each other; None when the result has no probe scores.
    """
    if not any(key.startswith("probe_") for key in result["aggregate"]):
        return None
    footnotes = Footnotes()
    rows = []
    for group, label in PROBE_ROWS.items():
        accuracies = [format_metric(result, key, footnotes) for key in group_keys(group)]
        fid_key = PROBE_FID_OF_ROW.get(group)
        rows.append([label, *accuracies, format_metric(result, fid_key, footnotes) if fid_key else ""])
    chance = result.get("chance", {})
    levels = next(([chance[k] for k in group_keys(g)] for g in PROBE_ROWS if all(k in chance for k in group_keys(g))), None)
    if levels:
        rows.append(["chance (uniform guess)", *map(format_number, levels), ""])
    notes = [f"{label}: {GROUP_MEANING[group]}." for group, label in PROBE_ROWS.items()]
    notes.append("probe-FID: Frechet distance to the gold photos in the probe's feature space, not Inception (lower is better).")
    headers = ["Photos", *KINDS, "all", "probe-FID"]
    return Table("Generated photos read by the world's probe (accuracy, %)", headers, rows, footnotes.texts, notes)


def summary_tables(result: Mapping[str, Any]) -> list[Table]:
    """Table 2, the share moment and (in a synthetic world) the own caption's accuracy and the probe scores of one result."""
    tables = [table2([result]), share_moment_table([result]), caption_table([result]), probe_group_table(result)]
    return [table for table in tables if table is not None]


def markdown_document(result: Mapping[str, Any], paths: EvalPaths) -> str:
    """The result as a Markdown page: Table 2, share moment, probe scores, per seed, settings, files."""
    model, data, settings = result["model"], result["data"], result["settings"]
    tables = [*summary_tables(result), seeds_table(result)]
    lines = [
        f"# Evaluation of {model['name']} on {data['dataset']} / {data['split']}",
        "",
        f"Checkpoint `{model['checkpoint']}`; {data['targets']} target turns of {data['dialogues']} dialogues "
        f"({data['photo_targets']} share a photo); seeds {', '.join(map(str, result['seeds']))}.",
        "",
        "\n".join(table.to_markdown() for table in tables),
        "**Settings**",
        "",
        *(f"- {key}: {value}" for key, value in settings.items()),
        "",
        f"Photos: `{paths.relative(paths.photos)}/`; predictions: `{paths.relative(paths.predictions)}`.",
        "",
    ]
    return "\n".join(lines)
