"""The photo probe: a small CNN that reads object, colour and scene off a synthetic-world photo.

It is how generated photos are scored objectively (DESIGN.md §2): a photo drawn for the caption
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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from photodialog.data.synth.attributes import KINDS, find_attributes
from photodialog.data.synth.world import LabelledPhoto, load_world
from photodialog.errors import DataError, UserError

PROBE_DIR = "probe"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Colour and scene are read off a few pixels and are learnt within an epoch; the object needs
# its shape, and with equal weights its head idles for hundreds of steps (measured: 18 % vs 60 %
# object accuracy after 150 steps), so its loss counts three times.
LOSS_WEIGHTS = {"object": 3.0, "colour": 1.0, "scene": 1.0}


@dataclass
class ProbeConfig:
    """What a probe classifies and how it is built."""

    objects: list[str]
    colours: list[str]
    scenes: list[str]
    image_size: int = 32
    widths: tuple[int, ...] = (24, 48, 96)  # conv channels per stage; the last is the feature size
    convs_per_stage: tuple[int, ...] = (1, 2, 2)

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]

    def classes(self, kind: str) -> list[str]:
        return {"object": self.objects, "colour": self.colours, "scene": self.scenes}[kind]


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
        from safetensors.torch import load_file

        folder = _probe_folder(Path(path))
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        config = ProbeConfig(objects=meta["objects"], colours=meta["colours"], scenes=meta["scenes"],
                             image_size=meta["image_size"], widths=tuple(meta["widths"]),
                             convs_per_stage=tuple(meta["convs_per_stage"]))
        network = build_network(config)
        network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return cls(network, config)

    def save(self, folder: str | Path, extra: dict | None = None) -> None:
        """Write weights and config (plus ``extra`` fields such as accuracies) to ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.network.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        meta = {**asdict(self.config), "widths": list(self.config.widths),
                "convs_per_stage": list(self.config.convs_per_stage), **(extra or {})}
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


def read_rgb(path: str | Path) -> Image.Image:
    """An image file as RGB, fully read (so the file is closed at once)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def images_to_tensor(images: list[Image.Image], size: int):
    """A float tensor ``[N, 3, size, size]`` in [0, 1] (RGB, bilinear resize)."""
    import torch

    arrays = []
    for image in images:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(image, dtype=np.float32) / 255.0)
    if not arrays:
        return torch.zeros((0, 3, size, size))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def build_network(config: ProbeConfig):
    """Conv stages (conv-BN-ReLU, max-pool), global average pool, one linear head per attribute."""
    import torch
    from torch import nn

    class ProbeNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 3
            for width, convs in zip(config.widths, config.convs_per_stage):
                for _ in range(convs):
                    layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                    channels = width
                layers.append(nn.MaxPool2d(2))
            self.trunk = nn.Sequential(*layers)
            self.heads = nn.ModuleDict({kind: nn.Linear(channels, len(config.classes(kind)))
                                        for kind in KINDS})

        def forward(self, x: torch.Tensor, features_only: bool = False):
            # Centre the input so BatchNorm statistics do not depend on brightness alone.
            features = self.trunk(x * 2.0 - 1.0).mean(dim=(2, 3))
            if features_only:
                return features
            return {kind: head(features) for kind, head in self.heads.items()}

    return ProbeNetwork()


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

    ``out_dir`` defaults to ``<world_dir>/probe``. Returns the measured accuracies.
    ``threads`` is the number of CPU threads torch uses while training (None: leave as is).
    One thread is the default: it makes the result independent of the machine's core count,
    and a network this small gains little from more threads but loses a lot when the cores
    are shared with other work (measured: 5x slower with 2 threads on 2 busy cores).
    """
    with _torch_threads(threads):
        return _train_probe(world_dir, out_dir, epochs, image_size, seed, batch_size, lr, progress)


@contextmanager
def _torch_threads(threads: int | None):
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_probe(world_dir, out_dir, epochs, image_size, seed, batch_size, lr,
                 progress) -> ProbeReport:
    import torch

    if epochs < 1 or batch_size < 1:
        raise UserError(f"epochs and batch size must be at least 1 (got {epochs}, {batch_size})")
    if not 8 <= image_size <= 256:
        raise UserError(f"the probe's image size must be between 8 and 256 px (got {image_size})")
    started = time.perf_counter()
    world = load_world(world_dir)
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
    report = _evaluate(probe, test_photos, out_dir or Path(world_dir) / PROBE_DIR, epochs,
                       len(train_set[0]), started, losses)
    probe.save(report.out_dir, extra={"training": {"epochs": epochs, "seed": seed,
               "batch_size": batch_size, "lr": lr, "train_photos": report.train_photos},
               "accuracy": {"test": report.accuracy, "test_held_out": report.held_out_accuracy,
                            "test_blurred": report.blurred_accuracy}})
    return report


def _labelled_tensors(photos: list[LabelledPhoto], config: ProbeConfig):
    import torch

    x = images_to_tensor([read_rgb(p.path) for p in photos], config.image_size)
    labels = {kind: torch.tensor([config.classes(kind).index(getattr(p.triple, kind))
                                  for p in photos], dtype=torch.long) for kind in KINDS}
    return x, labels


def _fit(network, train_set, epochs: int, batch_size: int, lr: float, seed: int,
         progress: bool) -> list[float]:
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


def augment(x, generator):
    """Flips, shifts, colour jitter, blur, pixelation and noise, per image (x in [0, 1])."""
    import torch
    from torch.nn import functional as F

    n, _, size, _ = x.shape

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*shape, generator=generator)

    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    x = _shift(x, max(1, size // 10), generator)
    gain = uniform(0.85, 1.15, n, 1, 1, 1) * uniform(0.93, 1.07, n, 3, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.8, 1.2, n, 1, 1, 1) + mean
    x = x * gain
    x = _blur(x, uniform(0.0, 1.3, n), generator)
    pixelate = torch.rand(n, generator=generator) < 0.2
    if pixelate.any():
        small = F.interpolate(x[pixelate], scale_factor=0.5, mode="bilinear", align_corners=False)
        x[pixelate] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    x = x + torch.randn(x.shape, generator=generator) * uniform(0.0, 0.08, n, 1, 1, 1)
    return x.clamp(0.0, 1.0)


def _shift(x, max_shift: int, generator):
    """Shift each image by up to ``max_shift`` pixels, filling with the replicated border."""
    import torch
    from torch.nn import functional as F

    n, _, size, _ = x.shape
    padded = F.pad(x, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + size, dx:dx + size]
                        for i, (dy, dx) in enumerate(offsets.tolist())])


def _blur(x, sigmas, generator):
    """Gaussian blur with a per-image sigma (0 leaves the image as it is)."""
    import torch
    from torch.nn import functional as F

    n, c, size, _ = x.shape
    radius = 3
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    sig = sigmas.clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (taps[None, :] / sig) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [n, taps]
    kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (image, channel)
    flat = x.reshape(1, n * c, size, size)
    flat = F.pad(flat, [radius] * 4, mode="replicate")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, size, size)


def _evaluate(probe: Probe, photos: list[LabelledPhoto], out_dir, epochs: int, train_count: int,
              started: float, losses: list[float]) -> ProbeReport:
    from PIL import ImageFilter

    images = [read_rgb(p.path) for p in photos]
    labels = [p.triple.as_dict() for p in photos]
    held = [i for i, p in enumerate(photos) if p.held_out]
    small = [im.resize((probe.config.image_size,) * 2, Image.BILINEAR) for im in images]
    blurred = [im.filter(ImageFilter.GaussianBlur(1.0)) for im in small]
    keep = ("object", "colour", "scene", "all")
    pick = lambda scores: {k: round(scores[k], 4) for k in keep}  # noqa: E731
    return ProbeReport(
        out_dir=str(out_dir), epochs=epochs, train_photos=train_count, test_photos=len(photos),
        seconds=round(time.perf_counter() - started, 1),
        accuracy=pick(probe.score(images, labels)),
        held_out_accuracy=pick(probe.score([images[i] for i in held], [labels[i] for i in held]))
        if held else {},
        blurred_accuracy=pick(probe.score(blurred, labels)),
        train_loss=[round(v, 4) for v in losses],
    )
