"""What an evaluation scores and how one seed is scored: the target turns of a split, the model's
replies, its photos, their metrics (``SeedScorer``), and the text side's competence.

Per the protocol (docs/architecture.md, "Evaluation protocol") every turn ``i >= 1`` of every dialogue of the split is a
target, with turns ``[:i]`` as context (``load_targets``). ``generate_replies`` writes the
replies in batches (prompts of similar length together, so little padding is computed) and
returns them in the targets' order. ``draw_photos`` draws one photo per caption with the
image generator, in batches whose noise (a stochastic sampler's per-step noise included)
depends only on the seed and the batch index, so a rerun with the same seed and batch size
draws the same photos.

**Scoring one seed.** ``GoldTargets`` reads what the targets say once: the gold texts, the reference set (the first
gold photo with a local file of every target turn that shares one) and the gold captions.
``SeedScorer`` checks and decodes the reference photos once per evaluation, and keeps their
features (torch-fidelity's, in a temporary folder, and the probe's) for every seed.
``SeedScorer.score(seed, replies)`` fills a ``SeedResult``: BLEU-1/2 and ROUGE-L, share-moment
P/R/F1, IS and FID of the photos drawn for the replies' captions (one per predicted turn: its
first caption), and in a synthetic world the probe scores, including the generator-only check
on the gold captions (``attribute_metrics.ProbeScorer``). Photos are saved as they are drawn (``eval_files``).

**Competence** (``competence_scores``): does the text side do the task? The measures a pretrained
start must pass before anything relies on it. On a synthetic world, with greedy replies to every target turn of a split (gold contexts):

- ``caption_acc_{object,colour,scene,all}``: at every gold photo turn, the model's own caption names
  the gold photo's attributes (``attribute_metrics.caption_accuracy``: a turn where it shares
  nothing counts as wrong);
- ``share_f1`` (with precision and recall): it shares at the turns where the gold response does;
- ``reply_acc_object``: right after a photo whose object the text never names (the world's
  dialogues that open with a photo), its reply names the photo's object: it *sees*;
- ``reply_acc_object_blank``: the same contexts with the photo replaced by a blank grey one. Far
  below ``reply_acc_object``, it shows the perceptron is read, not bypassed.

All in percent. ``bench llm`` prints them for every checkpoint of a pretraining run, the trainer
for every checkpoint of a run on a synthetic world, and ``assets rebuild llm`` records them.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from photodialog.data.loading import load_dialogues
from photodialog.data.photos import load_photo
from photodialog.data.samples import build_samples
from photodialog.data.schema import Sample, Turn
from photodialog.data.synth import find_attributes
from photodialog.errors import DataError
from photodialog.evaluation.attribute_metrics import (
    ProbeScorer,
    all_probe_keys,
    caption_accuracy,
    gold_photo_attributes,
    load_probe_scorer,
    reply_object_accuracy,
    unannounced_photo_turns,
)
from photodialog.evaluation.eval_files import EvalPaths, save_photos
from photodialog.evaluation.image_metrics import INCEPTION, ImageSet, fidelity_metric_set, fidelity_scores, load_image_set
from photodialog.evaluation.metrics import SeedResult
from photodialog.evaluation.share_moment import share_moment_scores
from photodialog.models.generation import Reply
from photodialog.models.generation_settings import GenerationSettings
from photodialog.registry import TEXT_METRICS


# Noise seed of batch b under evaluation seed s: s * NOISE_SEED_STRIDE + b (distinct for any
# realistic number of batches, so two seeds never share a batch's noise).
NOISE_SEED_STRIDE = 1_000_003


def load_targets(
    data_path: str | Path, split: str, max_samples: int = 0, *, strict: bool = False, progress: bool = True
) -> list[Sample]:
    """Every target turn of ``split`` (the first ``max_samples`` when > 0), in dataset order."""
    samples = build_samples(load_dialogues(data_path, split, strict=strict, progress=progress))
    if not samples:
        raise DataError(f"the {split} split of {data_path} has no dialogue with two turns or more: nothing to evaluate")
    return samples[:max_samples] if max_samples > 0 else samples


def _progress(total: int, desc: str, unit: str, enabled: bool):
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def _context_size(sample: Sample) -> int:
    return sum(len(turn.text) for turn in sample.context)


def generate_replies(
    system, samples: Sequence[Sample], settings: GenerationSettings, *, batch_size: int = 16,
    progress: bool = True, desc: str = "replies",
) -> list[Reply]:
    """The model's reply (text and captions, no photos) to each target's context, in order."""
    responder = system.responder()
    text_only = replace(settings, draw_photos=False)
    # Similar prompt lengths in one batch: left padding is computed too, so less of it is faster.
    order = sorted(range(len(samples)), key=lambda i: _context_size(samples[i]))
    replies: list[Reply | None] = [None] * len(samples)
    with _progress(len(samples), desc, "turn", progress) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            contexts = [samples[i].context for i in chunk]
            speakers = [samples[i].response.speaker for i in chunk]
            for index, reply in zip(chunk, responder.respond(contexts, speakers, text_only)):
                replies[index] = reply
            bar.update(len(chunk))
    return replies  # type: ignore[return-value]


def noise_seed(seed: int, batch_index: int) -> int:
    return seed * NOISE_SEED_STRIDE + batch_index


def iter_photos(
    generator, captions: Sequence[str], settings: GenerationSettings, *, seed: int, batch_size: int = 16,
    progress: bool = True, desc: str = "photos",
) -> Iterator:
    """One PIL photo per caption, in order, drawn in batches of ``batch_size`` with noise from ``seed``.

    A generator, so that a caller can save each photo as it comes instead of holding thousands of
    512 px photos in memory.
    """
    with _progress(len(captions), desc, "photo", progress) as bar:
        for batch_index, start in enumerate(range(0, len(captions), batch_size)):
            chunk = list(captions[start : start + batch_size])
            yield from generator.generate(
                chunk, steps=settings.diffusion_steps, guidance_scale=settings.guidance_scale,
                seed=noise_seed(seed, batch_index), sampler=settings.sampler,
            )
            bar.update(len(chunk))


def draw_photos(generator, captions: Sequence[str], settings: GenerationSettings, **kwargs) -> list:
    """``iter_photos`` as a list."""
    return list(iter_photos(generator, captions, settings, **kwargs))


# ---- Scoring one seed: the gold side of the targets, and the metrics of one seed's replies and photos ----

NO_GENERATOR = (
    "this checkpoint has no image generator (a pipeline text part); evaluate the pipeline's image part, "
    "whose model.text_from joins the two"
)


@dataclass
class ScoringOptions:
    """How photos are drawn and scored (the ``EvalRequest`` fields that matter here)."""
    data_path: str
    device: str
    batch_size: int
    inception_weights: str | None = None
    isc_splits: int = 10
    feature_extractor: str = INCEPTION
    progress: bool = True


@dataclass
class GoldTargets:
    """What the targets say: gold texts, the reference photos, the gold captions, and what each gold
    photo shows (``attributes``: from ``truth``, {photo_id: attributes}, where the world keeps it,
    else read from the caption)."""
    samples: list[Sample]
    truth: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.texts = [s.response.text for s in self.samples]
        self.reference: dict[int, str] = {}  # target -> its first gold photo with a local file
        self.captions: dict[int, str] = {}  # target -> the caption of its first gold photo
        self.missing_photos = 0  # gold photo turns whose photos have no local file (dead URLs)
        self.attributes = gold_photo_attributes(self.samples, self.truth)  # target -> what its gold photo shows
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


class SeedScorer:
    """Draws and scores the photos of one seed's replies; keeps what is shared across seeds."""
    def __init__(self, system, gold: GoldTargets, settings: GenerationSettings, paths: EvalPaths, options: ScoringOptions):
        self.system, self.gold, self.settings, self.paths, self.options = system, gold, settings, paths, options
        self.generator = system.model.generator
        self.probe, self.probe_problem = load_probe_scorer(options.data_path)
        self._reference_features = None

    @cached_property
    def reference_set(self) -> ImageSet:
        """The gold photos FID compares against, checked and decoded once for every seed."""
        return load_image_set(list(self.gold.reference.values()), "reference")

    @cached_property
    def reference_feature_cache(self) -> Path:
        """A folder, removed with the scorer, where torch-fidelity keeps the reference features."""
        folder = Path(tempfile.mkdtemp(prefix="photodialog-fid-"))
        # A finalizer, not a TemporaryDirectory: the evaluation never closes the scorer explicitly,
        # and an implicitly cleaned TemporaryDirectory warns.
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        return folder

    @property
    def is_world(self) -> bool:
        return self.probe is not None or self.probe_problem is not None

    def score(self, seed: int, replies: Sequence[Reply]) -> tuple[SeedResult, dict[int, Path]]:
        """The seed's metrics and the photo files drawn for it (by target index)."""
        result = SeedResult(seed)
        predicted = [reply.text for reply in replies]
        for metric in TEXT_METRICS.names:  # every registered text metric (photodialog.registry)
            result.add(TEXT_METRICS.load(metric)(predicted, self.gold.texts))
        result.counts["reference_photos_missing"] = self.gold.missing_photos
        if self.is_world:
            self._text_world_scores(result, replies)
        if self.generator is None:
            result.mark_unavailable(["is", "fid"] + (all_probe_keys() if self.is_world else []), NO_GENERATOR)
            return result, {}
        captions = {i: reply.captions[0] for i, reply in enumerate(replies) if reply.captions}
        saved, photos = self._draw_and_save(captions, seed, self.paths.drawn_photos(seed), f"photos, seed {seed}")
        scores = fidelity_scores(
            [saved[i] for i in sorted(saved)], self.reference_set,
            inception_weights=self.options.inception_weights, device=self.options.device,
            isc_splits=self.options.isc_splits, feature_extractor=self.options.feature_extractor,
            reference_cache=self.reference_feature_cache,
        )
        result.add(fidelity_metric_set(scores))
        result.counts["generated_photos"] = len(saved)
        if self.probe is not None:
            self._probe_scores(result, seed, photos, captions)
        elif self.probe_problem is not None:
            result.mark_unavailable(all_probe_keys(), self.probe_problem["reason"], self.probe_problem.get("fix"))
        return result, saved

    def _text_world_scores(self, result: SeedResult, replies: Sequence[Reply]) -> None:
        """On a synthetic world, what the replies say about photos: the own caption at every gold
        photo turn (``caption_acc_*``), and the reply to an unannounced photo (``reply_acc_object``)."""
        gold = self.gold.attributes
        result.add(caption_accuracy([(replies[i].captions or [None])[0] for i in gold], list(gold.values())))
        unannounced = unannounced_photo_turns(self.gold.samples)
        if unannounced:
            result.metrics["reply_acc_object"] = reply_object_accuracy(
                [replies[i].text for i in unannounced], list(unannounced.values()))
            result.counts["reply_turns"] = len(unannounced)

    def _draw_and_save(self, captions: dict[int, str], seed: int, folder: Path, desc: str):
        """Draw ``{target: caption}``, saving each photo as it comes: ({target: file}, {target: photo}).

        The photos themselves are kept only when the probe will read them (the synthetic world,
        whose photos are small); otherwise only the files remain.
        """
        drawn = iter_photos(self.generator, list(captions.values()), self.settings, seed=seed,
                            batch_size=self.options.batch_size, progress=self.options.progress, desc=desc)
        saved, kept = {}, {}
        for index, path, photo in save_photos(folder, zip(captions, drawn)):
            saved[index] = path
            if self.probe is not None:
                kept[index] = photo
        return saved, kept

    def reference_features(self, probe: ProbeScorer):
        if self._reference_features is None:

            images = [load_photo(path) for path in self.gold.reference.values()]
            self._reference_features = probe.features(images)
        return self._reference_features

    def _probe_scores(self, result: SeedResult, seed: int, photos: dict[int, Any], captions: dict[int, str]) -> None:

        probe = self.probe
        order = sorted(photos)
        generated = [photos[i] for i in order]
        result.add(probe.accuracy("caption", generated, [find_attributes(captions[i]) for i in order]))
        both = [i for i in order if i in self.gold.attributes]
        result.add(probe.accuracy("gold", [photos[i] for i in both], [self.gold.attributes[i] for i in both]))
        turns = sorted(self.gold.attributes)  # every gold photo turn: one without a photo of the model's is a miss
        result.add(probe.match_over_turns([photos.get(i) for i in turns], [self.gold.attributes[i] for i in turns]))
        # The image generator alone: the gold captions, with the same noise seeds as the model's photos.
        gold_captions = {i: self.gold.captions[i] for i in sorted(self.gold.captions)}
        folder = self.paths.drawn_photos(seed, gold_captions=True)
        _, by_target = self._draw_and_save(gold_captions, seed, folder, f"gold-caption photos, seed {seed}")
        drawn = [by_target[i] for i in gold_captions]
        result.add(probe.accuracy("generator", drawn, [find_attributes(text) for text in gold_captions.values()]))
        reference = self.reference_features(probe)
        result.add(probe.frechet("probe_fid", generated, reference))
        result.add(probe.frechet("probe_fid_generator", drawn, reference))


# ---- Does the text side do the task? The measures a pretrained start must pass before anything relies on it ----

BLANK_GREY = (128, 128, 128)


def text_competence(system, samples: list[Sample], settings: GenerationSettings, *, batch_size: int = 16,
                    progress: bool = False, truth=None) -> dict[str, float]:
    """The module docstring's measures of ``system`` on ``samples`` (a split's targets), in percent,
    with ``caption_turns`` and ``reply_turns`` (how many turns each counts). Keys whose turns do not
    occur (no gold photo turn, no unannounced photo) are left out. ``truth``: {photo_id: attributes}
    of a world whose captions leave something out (``data.synth.world.photo_attributes``)."""
    replies = generate_replies(system, samples, settings, batch_size=batch_size, progress=progress, desc="replies")
    gold_photo = gold_photo_attributes(samples, truth)
    result: dict[str, float] = {}
    captions = caption_accuracy([(replies[i].captions or [None])[0] for i in gold_photo], list(gold_photo.values()))
    result.update(captions.values)
    result.update(captions.counts)
    share = share_moment_scores([r.text for r in replies], [s.response.text for s in samples]).as_metric_set()
    result.update({k: v for k, v in share.values.items() if k.startswith("share_")})
    unannounced = unannounced_photo_turns(samples)
    if unannounced and system.model.perceptron is not None:
        order = list(unannounced)
        seen = [replies[i].text for i in order]
        result["reply_acc_object"] = reply_object_accuracy(seen, [unannounced[i] for i in order])
        blank = _with_blank_photos([samples[i] for i in order])
        blind = generate_replies(system, blank, settings, batch_size=batch_size, progress=progress, desc="replies, blank photos")
        result["reply_acc_object_blank"] = reply_object_accuracy([r.text for r in blind], [unannounced[i] for i in order])
        result["reply_turns"] = len(order)
    return result


def _with_blank_photos(samples: list[Sample]) -> list[Sample]:
    """``samples`` with every context photo file replaced by one blank grey photo (captions kept:
    a model that reads pixels never sees them)."""
    # pillow: only this control needs an image written
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="photodialog-blank-"))
    path = folder / "blank.png"
    Image.new("RGB", (64, 64), BLANK_GREY).save(path)

    def blank_turn(turn: Turn) -> Turn:
        return replace(turn, photos=[replace(photo, path=str(path)) for photo in turn.photos])

    return [replace(s, context=[blank_turn(t) for t in s.context]) for s in samples]
