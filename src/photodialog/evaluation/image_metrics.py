"""Inception Score and FID of generated photos through torch-fidelity, never downloading anything.

Per the protocol, the generated set is one image per predicted turn that has a caption and the
reference set is the gold photo of every gold turn that has one; the two are unpaired.

**Common size.** Every image of both sets is resized so that its shorter side is
``image_size`` (bicubic, antialiased) and centre-cropped to ``image_size x image_size``, so
that any photo, whatever its shape, enters the feature extractor like the others. By default
``image_size`` is the shorter side of the first generated image: square generated photos pass
unchanged and the references are matched to them. (torch-fidelity's Inception then resizes
everything to 299 x 299 itself.)

**Offline.** torch-fidelity downloads the Inception weights when not given a local file. Here
the file must be passed (``inception_weights``) and is checked before any model is built; if
it is missing or unusable, ``fidelity_scores`` returns ``{"available": False, "reason", "fix"}``
instead of failing. While torch-fidelity runs, its download functions are replaced by ones
that raise at once, so a missing network can never hang an evaluation.

**Feature cache.** torch-fidelity's file cache is off (nothing is written under TORCH_HOME),
except for the reference set's features when the caller gives ``reference_cache``, a folder
of its own for that one reference set: an evaluation scores every seed against the same gold
photos, so their features are computed once instead of once per seed.

Images are read as ``data.photos`` reads every photo: fully decoded (a truncated file is found
before torch-fidelity starts, not halfway through it), EXIF-rotated, transparency on white.
Unreadable images are skipped and counted (``skipped_generated`` / ``skipped_reference``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from PIL import Image

from photodialog.data.photos import as_rgb, load_photo, verify_photo
from photodialog.errors import DataError, UserError
from photodialog.evaluation.metrics import MetricSet, unavailable_entry, unavailable_record

INCEPTION = "inception-v3-compat"
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_FIX = f"pass --inception-weights PATH (the torch-fidelity '{INCEPTION_WEIGHTS_FILE}' file)"
# torch-fidelity's own extractors fetch weights from the internet when given no file.
BUILTIN_EXTRACTORS_PREFIXES = ("inception-", "clip-", "dinov2-", "vgg16")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_LISTED_SKIPS = 10
# With one photo in a split, p(y|x) = p(y) and that split's IS is exactly 1 whatever the photo;
# two per split is the least that can tell photos apart. FID needs a covariance on each side.
IS_MIN_PER_SPLIT = 2
FID_MIN_PER_SET = 2

ImageItem = str | os.PathLike | Image.Image
ImageSource = str | os.PathLike | Sequence[ImageItem]


@dataclass
class ImageSet:
    """The readable images of one set, and the ones skipped with the reason."""

    items: list[ImageItem]
    skipped: list[str] = field(default_factory=list)


def _photo_problem(path: Path) -> str | None:
    """None when the file decodes completely, else why not (the message names the file).

    A full decode, not ``Image.verify()``: verify checks the header and structure only and
    passes a truncated JPEG, which would then fail inside torch-fidelity and end the evaluation.
    """
    try:
        verify_photo(path)
    except DataError as exc:
        return str(exc)
    return None


def load_image_set(source: ImageSource | ImageSet, what: str) -> ImageSet:
    """Images of a folder (non-recursive, by suffix, sorted) or of a list of paths / PIL images.

    An ``ImageSet`` is returned as it is: a caller that scores several sets against the same
    reference checks and decodes it once.
    """
    if isinstance(source, ImageSet):
        return source
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise UserError(f"{what} images: {folder} is not a folder")
        source = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    image_set = ImageSet(items=[])
    for item in source:
        problem = None if isinstance(item, Image.Image) else _photo_problem(Path(item))
        if problem:
            image_set.skipped.append(problem)
        else:
            image_set.items.append(item)
    return image_set


def to_square_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB uint8 CHW tensor: shorter side resized to ``size`` (bicubic), centre-cropped square."""
    # torch is slow to import: only this path needs it
    import torchvision.transforms.functional as TF

    image = as_rgb(image)  # not convert("RGB"): it would clip a 16-bit photo to white
    image = TF.resize(image, size, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(image, [size, size]))


class SquareImageDataset(torch.utils.data.Dataset):
    """What torch-fidelity reads: each image as a ``size x size`` uint8 tensor, decoded lazily."""

    def __init__(self, items: Sequence[ImageItem], size: int):
        self.items = list(items)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        item = self.items[index]
        # load_photo: upright and on white, as training and the probe see the same photos; a file
        # broken since load_image_set checked it is a DataError naming it, not a crash deep inside.
        image = item if isinstance(item, Image.Image) else load_photo(item)
        return to_square_tensor(image, self.size)


def _shorter_side(item: ImageItem) -> int:
    if isinstance(item, Image.Image):
        return min(item.size)
    with Image.open(item) as image:
        return min(image.size)


def is_builtin_extractor(name: str) -> bool:
    return name.startswith(BUILTIN_EXTRACTORS_PREFIXES)


def inception_weights_problem(path: str | os.PathLike | None) -> str | None:
    """None when ``path`` holds torch-fidelity's Inception state dict, else what is wrong."""
    if path is None:
        return "no Inception weights were given, and photodialog never downloads them"
    path = Path(path)
    if not path.is_file():
        return f"Inception weights file not found: {path}"
    try:
        # mmap: look at the tensors' shapes without reading ~90 MB into memory.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read means "unusable", with its message
        return f"cannot read Inception weights {path}: {type(exc).__name__}: {exc}"
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    if fc is None or tuple(fc.shape) != (1008, 2048):
        return f"{path} is not torch-fidelity's Inception-v3 state dict (no fc.weight of shape 1008 x 2048)"
    return None


def weights_problem(extractor: str, weights: str | os.PathLike | None) -> str | None:
    """Why ``extractor`` cannot run offline with ``weights``, or None when it can."""
    if not is_builtin_extractor(extractor):
        return None  # registered by the caller, who knows where its weights come from
    if extractor == INCEPTION:
        return inception_weights_problem(weights)
    if weights is None or not Path(weights).is_file():
        return f"{extractor} needs a local weights file, and photodialog never downloads them"
    return None


def _refuse_download(*args, **kwargs):
    raise RuntimeError("photodialog does not download model weights; pass a local weights file")


@contextlib.contextmanager
def no_downloads() -> Iterator[None]:
    """Make every download path torch-fidelity could take raise at once instead of waiting on a network."""
    targets = [(torch.hub, name) for name in ("load_state_dict_from_url", "download_url_to_file", "load")]
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("torch_fidelity") and hasattr(module, "load_state_dict_from_url"):
            targets.append((module, "load_state_dict_from_url"))
    saved = [(module, name, getattr(module, name)) for module, name in targets]
    try:
        for module, name in targets:
            setattr(module, name, _refuse_download)
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _device_is_cuda(device: str | torch.device) -> bool:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device} was requested for IS/FID but CUDA is not available")
    return device.type == "cuda"


def _cache_options(reference_cache: str | os.PathLike | None, size: int) -> dict[str, Any]:
    """torch-fidelity's cache settings: off, or on for the reference set only (module docstring)."""
    if reference_cache is None:
        return {"cache": False}  # no writes under TORCH_HOME, and no stale features from another run
    # The generated set has no cache name, so only the reference features are kept; the size is in
    # the name because the same photos resized differently have other features.
    return {"cache": True, "cache_root": str(reference_cache), "input2_cache_name": f"reference-{size}px"}


def _run_torch_fidelity(generated, reference, *, extractor, weights, device, batch_size, isc_splits, rng_seed, verbose,
                        cache_options):
    # heavy and only needed for IS/FID
    import torch_fidelity

    kwargs = dict(
        input1=generated,
        input2=reference,
        isc=isc_splits > 0,
        fid=reference is not None,
        isc_splits=max(1, isc_splits),
        feature_extractor=extractor,
        cuda=_device_is_cuda(device),
        batch_size=batch_size,
        rng_seed=rng_seed,
        verbose=verbose,
        **cache_options,
        datasets_download=False,
        save_cpu_ram=True,  # no DataLoader worker processes: the data is small next to the model
    )
    if weights is not None:
        kwargs["feature_extractor_weights_path"] = str(weights)
    device = torch.device(device)
    cuda_context = torch.cuda.device(device) if device.type == "cuda" and device.index is not None else None
    with no_downloads(), cuda_context or contextlib.nullcontext():
        return torch_fidelity.calculate_metrics(**kwargs)


def fidelity_scores(
    generated: ImageSource,
    reference: ImageSource | ImageSet,
    *,
    inception_weights: str | os.PathLike | None,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    isc_splits: int = 10,
    image_size: int | None = None,
    feature_extractor: str = INCEPTION,
    rng_seed: int = 2020,
    verbose: bool = False,
    reference_cache: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """IS (mean, split std) of the generated set and FID between the generated and reference sets.

    ``generated`` / ``reference``: a folder of images or a list of image paths / PIL images
    (``reference`` also an ``ImageSet`` already loaded). ``reference_cache``: a folder that keeps
    the reference set's features between calls with the same reference set (module docstring).
    ``feature_extractor``: a torch-fidelity extractor name; its built-in ones (default: the
    paper's Inception) need ``inception_weights``, an extractor registered by the caller with
    ``torch_fidelity.register_feature_extractor`` is used as it is.

    Returns ``{"available": True, "is_mean", "is_std", "fid", "isc_splits", "num_generated",
    "num_reference", "skipped_generated", "skipped_reference", "skipped", "image_size",
    "feature_extractor", "unavailable"}``, where ``unavailable`` names a metric the sets are too
    small for, with the reason and the minimum: IS needs ``IS_MIN_PER_SPLIT`` generated photos
    per split (``is_mean``/``is_std`` are then None; the splits are never lowered, which would
    report a meaningless 1.0 ± 0), FID ``FID_MIN_PER_SET`` photos on each side. Without usable
    weights, generated images, or enough of them for either metric:
    ``{"available": False, "reason", "fix"}``. A folder that does not exist is a
    ``UserError``; an image file that breaks after it was checked, a ``DataError`` naming it.
    """
    problem = weights_problem(feature_extractor, inception_weights)
    if problem:
        return unavailable_record(problem, WEIGHTS_FIX)
    generated_set = load_image_set(generated, "generated")
    reference_set = load_image_set(reference, "reference")
    if not generated_set.items:
        skipped = f" ({len(generated_set.skipped)} unreadable)" if generated_set.skipped else ""
        return unavailable_record(f"no generated images to score{skipped}")
    size = image_size or _shorter_side(generated_set.items[0])
    unavailable = _too_small(len(generated_set.items), len(reference_set.items), isc_splits)
    if "is" in unavailable and "fid" in unavailable:
        return unavailable_record(f"{unavailable['is']['reason']}; {unavailable['fid']['reason']}", unavailable["is"]["fix"])
    has_reference = "fid" not in unavailable
    splits = 0 if "is" in unavailable else isc_splits
    metrics = _run_torch_fidelity(
        SquareImageDataset(generated_set.items, size),
        SquareImageDataset(reference_set.items, size) if has_reference else None,
        extractor=feature_extractor,
        weights=inception_weights,
        device=device,
        batch_size=batch_size,
        isc_splits=splits,
        rng_seed=rng_seed,
        verbose=verbose,
        cache_options=_cache_options(reference_cache, size),
    )
    skipped = generated_set.skipped + reference_set.skipped
    return {
        "available": True,
        "is_mean": metrics.get("inception_score_mean"),
        "is_std": metrics.get("inception_score_std"),
        "fid": metrics.get("frechet_inception_distance"),
        "isc_splits": isc_splits,
        "num_generated": len(generated_set.items),
        "num_reference": len(reference_set.items),
        "skipped_generated": len(generated_set.skipped),
        "skipped_reference": len(reference_set.skipped),
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "image_size": size,
        "feature_extractor": feature_extractor,
        "unavailable": unavailable,
    }


def _too_small(generated: int, reference: int, isc_splits: int) -> dict[str, dict[str, str]]:
    """``{metric: {"reason", "fix"}}`` for IS / FID when a set is too small for the protocol."""
    unavailable = {}
    needed = IS_MIN_PER_SPLIT * max(1, isc_splits)
    if generated < needed:
        unavailable["is"] = unavailable_entry(
            f"IS needs at least {needed} generated photos ({IS_MIN_PER_SPLIT} in each of isc_splits={isc_splits} splits), "
            f"found {generated}",
            "score more turns (eval.max_samples=0 for all of them) or lower isc_splits",
        )
    if generated < FID_MIN_PER_SET or reference < FID_MIN_PER_SET:
        unavailable["fid"] = unavailable_entry(
            f"FID needs at least {FID_MIN_PER_SET} generated and {FID_MIN_PER_SET} reference photos, "
            f"found {generated} and {reference}"
        )
    return unavailable


def fidelity_metric_set(scores: dict[str, Any]) -> MetricSet:
    """The ``is`` / ``is_split_std`` / ``fid`` entries of one seed from ``fidelity_scores``' dict."""
    if not scores.get("available"):
        entry = unavailable_entry(scores.get("reason", "IS/FID not computed"), scores.get("fix"))
        return MetricSet(unavailable={"is": dict(entry), "fid": dict(entry)})
    values = {}
    if scores.get("is_mean") is not None:
        values.update({"is": scores["is_mean"], "is_split_std": scores["is_std"]})
    if scores.get("fid") is not None:
        values["fid"] = scores["fid"]
    counts = {
        "images_generated": scores["num_generated"],
        "images_reference": scores["num_reference"],
        "images_skipped_generated": scores["skipped_generated"],
        "images_skipped_reference": scores["skipped_reference"],
        "isc_splits": scores["isc_splits"],
    }
    return MetricSet(values=values, unavailable=dict(scores.get("unavailable", {})), counts=counts)
