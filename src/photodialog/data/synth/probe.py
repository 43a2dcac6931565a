"""The photo probe: a small CNN that reads object, colour and scene off a synthetic-world photo.

It is how generated photos are scored objectively (docs/architecture.md, "The synthetic world"): a photo drawn for the caption
"a red car at the beach" should be classified as car / red / beach. Its penultimate features
(``Probe.features``) give a Frechet distance "in the probe's feature space" when no Inception
weights are around.

Training augments every batch with blur, pixelation, noise, small shifts and a little colour
jitter, because the photos it has to read come from a tiny diffusion model and are blurry and
noisy, never as crisp as the rendered ones. Training is deterministic for a seed on CPU and
leaves the caller's global random state untouched.

Files in the probe folder (``<world>/probe/`` by default): ``model.safetensors`` and
``config.json`` (attribute lists, architecture, training settings and measured accuracies).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photodialog.data.synth.attributes import KINDS, find_attributes
from photodialog.data.synth.probe_augment import augment
from photodialog.data.synth.probe_model import ProbeConfig, build_network, images_to_tensor, read_rgb
from photodialog.data.synth.world import LabelledPhoto, load_world
from photodialog.errors import DataError, UserError
from photodialog.files import save_tensors
from photodialog.devices import torch_threads
from photodialog.output_files import claim_folder

PROBE_DIR = "probe"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Colour and scene are read off a few pixels and are learnt within an epoch; the object needs
# its shape, and with equal weights its head idles for hundreds of steps (measured: 18 % vs 60 %
# object accuracy after 150 steps), so its loss counts three times.
LOSS_WEIGHTS = {"object": 3.0, "colour": 1.0, "scene": 1.0}


@dataclass
class ProbeReport:
    """The result of ``train_probe``: where the probe went and how well it reads photos."""

    out_dir: str
    epochs: int
    train_photos: int
    test_photos: int
    seconds: float
    accuracy: dict[str, float]  # test split, per head and "all" (all three right)
    held_out_accuracy: dict[str, float]  # test photos of held-out triples only
    blurred_accuracy: dict[str, float]  # test split with a Gaussian blur (sigma 1 px at probe size)
    train_loss: list[float] = field(default_factory=list)


class Probe:
    """A trained probe; build with ``Probe.load`` or ``train_probe``."""

    def __init__(self, network, config: ProbeConfig):
        self.network = network.eval()
        self.config = config

    @classmethod
    def load(cls, path: str | Path) -> "Probe":
        """Load from a probe folder, or from a world folder that has one in ``probe/``."""
        # imports torch: only reading or writing weights needs it
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = _probe_folder(Path(path))
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            config = ProbeConfig(
                objects=meta["objects"], colours=meta["colours"], scenes=meta["scenes"],
                image_size=meta["image_size"], widths=tuple(meta["widths"]),
                convs_per_stage=tuple(meta["convs_per_stage"]),
            )
            network = build_network(config)
            network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, SafetensorError) as exc:
            raise DataError(f"the probe in {folder} cannot be loaded ({exc}); retrain it with "
                            f"`photodialog data probe WORLD_DIR`") from exc
        return cls(network, config)

    def save(self, folder: str | Path, extra: dict | None = None) -> None:
        """Write weights and config (plus ``extra`` fields such as accuracies) to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors(self.network.state_dict(), folder / WEIGHTS_FILE)
        meta = {**asdict(self.config), **(extra or {})}
        text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
        (folder / CONFIG_FILE).write_text(text, encoding="utf-8")

    def predict(self, images: list[Image.Image]) -> list[dict[str, str]]:
        """``{"object", "colour", "scene"}`` names for each image (any size, resized)."""
        logits = self._run(images, features_only=False)
        names = {kind: self.config.classes(kind) for kind in KINDS}
        indices = {kind: logits[kind].argmax(axis=1) for kind in KINDS}
        return [{kind: names[kind][int(indices[kind][i])] for kind in KINDS}
                for i in range(len(images))]

    def features(self, images: list[Image.Image]) -> np.ndarray:
        """Penultimate-layer features, float32 ``[N, feature_dim]`` (for a Frechet distance)."""
        return self._run(images, features_only=True)

    def score(self, images: list[Image.Image], expected: list[str | dict]) -> dict[str, float]:
        """Accuracy per head (and "all") of ``images`` against captions or attribute dicts.

        Attributes a caption does not name are not counted for that head (so a generated caption
        without a scene still scores its object and colour); ``counted_<head>`` says how many were.
        """
        if len(images) != len(expected):
            raise ValueError(f"{len(images)} images but {len(expected)} expected labels")
        predicted = self.predict(images)
        wanted = [find_attributes(e) if isinstance(e, str) else e for e in expected]
        result: dict[str, float] = {}
        for kind in KINDS:
            pairs = [(p[kind], w.get(kind)) for p, w in zip(predicted, wanted) if w.get(kind)]
            result[kind] = float(np.mean([p == w for p, w in pairs])) if pairs else float("nan")
            result[f"counted_{kind}"] = len(pairs)
        full = [all(p[k] == w.get(k) for k in KINDS) for p, w in zip(predicted, wanted)
                if all(w.get(k) for k in KINDS)]
        result["all"] = float(np.mean(full)) if full else float("nan")
        return result

    def _run(self, images, features_only: bool):
        # torch is slow to import: only this path needs it
        import torch

        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), 256):
                batch = images_to_tensor(images[start:start + 256], self.config.image_size)
                outputs.append(self.network(batch, features_only=features_only))
        if features_only:
            if not outputs:
                return np.zeros((0, self.config.feature_dim), dtype=np.float32)
            return torch.cat(outputs).numpy().astype(np.float32)
        return {kind: torch.cat([o[kind] for o in outputs]).numpy() if outputs
                else np.zeros((0, len(self.config.classes(kind)))) for kind in KINDS}


def _probe_folder(path: Path) -> Path:
    for folder in (path, path / PROBE_DIR):
        if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
            return folder
    raise DataError(f"no trained probe in {path} (expected {CONFIG_FILE} and {WEIGHTS_FILE}, "
                    f"or a {PROBE_DIR}/ folder with them); train one with "
                    f"`photodialog data probe WORLD_DIR`")


# ---------------------------------------------------------------------------------------------
# Training

def train_probe(world_dir: str | Path, out_dir: str | Path | None = None, epochs: int = 10,
                image_size: int = 32, seed: int = 0, batch_size: int = 32, lr: float = 3e-3,
                threads: int | None = 1, progress: bool = True) -> ProbeReport:
    """Train a probe on the world's train photos, test it on its test photos, save it.

    ``out_dir`` defaults to ``<world_dir>/probe``; a non-empty folder that is not a probe's is
    refused (``UserError``) before training. Returns the measured accuracies.
    ``threads`` is the number of CPU threads torch uses while training (None: leave as is).
    One thread is the default: it makes the result independent of the machine's core count,
    and a network this small gains little from more threads but loses a lot when the cores
    are shared with other work (measured: 5x slower with 2 threads on 2 busy cores).
    """
    with torch_threads(threads):
        return _train_probe(world_dir, out_dir, epochs, image_size, seed, batch_size, lr, progress)


def _train_probe(world_dir, out_dir, epochs, image_size, seed, batch_size, lr,
                 progress) -> ProbeReport:
    # torch is slow to import: only this path needs it
    import torch

    if epochs < 1 or batch_size < 1:
        raise UserError(f"epochs and batch size must be at least 1 (got {epochs}, {batch_size})")
    if not 8 <= image_size <= 256:
        raise UserError(f"the probe's image size must be between 8 and 256 px (got {image_size})")
    started = time.perf_counter()
    world = load_world(world_dir)
    out_dir = Path(out_dir or Path(world_dir) / PROBE_DIR)
    # Before training: a folder of someone else's files is refused, not written into.
    claim_folder(out_dir, "data probe", made_before=lambda folder: (folder / CONFIG_FILE).is_file())
    config = ProbeConfig(objects=list(world.objects), colours=list(world.colours),
                         scenes=list(world.scenes), image_size=image_size)
    train_set = _labelled_tensors(world.photos("train"), config)
    test_photos = world.photos("test")
    if len(train_set[0]) == 0 or not test_photos:
        raise DataError(f"{world_dir} has no train or no test photos to train a probe on")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_network(config)
        losses = _fit(network, train_set, epochs, batch_size, lr, seed, progress)
    probe = Probe(network, config)
    report = _evaluate(probe, test_photos, out_dir, epochs,
                       len(train_set[0]), started, losses)
    probe.save(report.out_dir, extra={"training": {"epochs": epochs, "seed": seed,
               "batch_size": batch_size, "lr": lr, "train_photos": report.train_photos},
               "accuracy": {"test": report.accuracy, "test_held_out": report.held_out_accuracy,
                            "test_blurred": report.blurred_accuracy}})
    return report


def _labelled_tensors(photos: list[LabelledPhoto], config: ProbeConfig):
    # torch is slow to import: only this path needs it
    import torch

    x = images_to_tensor([read_rgb(p.path) for p in photos], config.image_size)
    labels = {kind: torch.tensor([config.classes(kind).index(getattr(p.triple, kind))
                                  for p in photos], dtype=torch.long) for kind in KINDS}
    return x, labels


def _fit(network, train_set, epochs: int, batch_size: int, lr: float, seed: int,
         progress: bool) -> list[float]:
    # torch is slow to import: only this path needs it
    import torch
    from torch.nn import functional as F
    from tqdm import tqdm

    x, labels = train_set
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, steps))
    losses = []
    network.train()
    for _ in tqdm(range(epochs), desc="training probe", unit="epoch", disable=not progress):
        order, total = torch.randperm(len(x), generator=generator), 0.0
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            logits = network(augment(x[index], generator))
            loss = sum(LOSS_WEIGHTS[k] * F.cross_entropy(logits[k], labels[k][index]) for k in KINDS)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(x))
    network.eval()
    return losses


def _evaluate(probe: Probe, photos: list[LabelledPhoto], out_dir, epochs: int, train_count: int,
              started: float, losses: list[float]) -> ProbeReport:
    # only photo work needs Pillow; keeps light callers light
    from PIL import ImageFilter

    images = [read_rgb(p.path) for p in photos]
    labels = [p.triple.as_dict() for p in photos]
    held = [i for i, p in enumerate(photos) if p.held_out]
    small = [im.resize((probe.config.image_size,) * 2, Image.BILINEAR) for im in images]
    blurred = [im.filter(ImageFilter.GaussianBlur(1.0)) for im in small]
    return ProbeReport(
        out_dir=str(out_dir), epochs=epochs, train_photos=train_count, test_photos=len(photos),
        seconds=round(time.perf_counter() - started, 1),
        accuracy=_headline(probe.score(images, labels)),
        held_out_accuracy=_headline(probe.score([images[i] for i in held], [labels[i] for i in held]))
        if held else {},
        blurred_accuracy=_headline(probe.score(blurred, labels)),
        train_loss=[round(v, 4) for v in losses],
    )


def _headline(scores: dict[str, float]) -> dict[str, float]:
    """The accuracies of a ``Probe.score`` result, rounded, without the counts."""
    return {k: round(scores[k], 4) for k in (*KINDS, "all")}
