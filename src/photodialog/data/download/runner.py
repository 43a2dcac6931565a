"""The whole `data download` job: dialogue files, photos, redrawing, summary.

``download_dataset(options)`` is what the CLI calls and what the tests call. It raises
``DataError`` when the dialogue files cannot be fetched (nothing to work with); photo
failures are never errors: they are recorded in the manifest and counted in the summary.
Ctrl-C during the photos or the redrawing ends the run early with ``interrupted`` set and
everything done so far kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from photodialog.data.download.dialogues import DialogueFile, fetch_dialogue_files, photo_refs
from photodialog.data.download.fallback import FallbackOptions, MissingPhoto, check_model_reference, regenerate
from photodialog.data.download.http import HttpLimits
from photodialog.data.download.images import remove_stale_parts
from photodialog.data.download.manifest import FAILED, GENERATED, OK, ManifestEntry, ManifestWriter, load_manifest
from photodialog.data.download.photos import fetch_photos, plan_photos
from photodialog.data.download.sources import PhotoRef, get_source
from photodialog.data.layout import PHOTO_DIR, SPLITS
from photodialog.errors import UserError


@dataclass
class DownloadOptions:
    """What to download, where to, and with which limits."""

    dataset: str  # photochat | dialogcc
    out: Path
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    base_url: str | None = None  # None: $PHOTODIALOG_<DATASET>_BASE_URL, else the published location
    limit: int | None = None  # first N dialogues per split
    workers: int = 16
    limits: HttpLimits = field(default_factory=HttpLimits)
    retry_failed: bool = False
    refetch_dialogues: bool = False
    photos: bool = True
    fallback: FallbackOptions | None = None
    progress: bool = True


@dataclass
class DownloadSummary:
    """What the folder holds after the run, and what this run did."""

    dataset: str
    out: Path
    dialogue_files: int = 0
    dialogue_files_fetched: int = 0
    dialogues: dict[str, int] = field(default_factory=dict)
    photos: int = 0  # distinct photos shared in the downloaded dialogues
    ok: int = 0
    generated: int = 0
    failed: int = 0
    pending: int = 0  # not looked at yet (interrupted run, or --no-photos)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    fetched_now: int = 0
    bytes_fetched: int = 0
    kept: int = 0
    failed_before: int = 0
    generated_now: int = 0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as printed at the end of a run."""
        per_split = ", ".join(f"{split} {count}" for split, count in self.dialogues.items())
        lines = [
            f"{self.dataset}: {sum(self.dialogues.values())} dialogues ({per_split}) in "
            f"{self.dialogue_files} file(s), {self.dialogue_files_fetched} fetched now",
            f"photos: {self.photos} distinct; ok {self.ok}, generated {self.generated}, "
            f"failed {self.failed}" + (f", not looked at yet {self.pending}" if self.pending else ""),
            f"this run: fetched {self.fetched_now} ({self.bytes_fetched / 1e6:.1f} MB), kept {self.kept} "
            f"already present, {self.failed_before} earlier failures not retried, redrew {self.generated_now}",
        ]
        lines += [f"  failed: {count:6d}  {reason}" for reason, count in self.failed_by_reason.items()]
        lines += [f"note: {note}" for note in self.notes]
        if self.interrupted:
            lines.append("interrupted: everything fetched so far is kept; run the same command again to go on")
        return lines


def download_dataset(options: DownloadOptions) -> DownloadSummary:
    """Fetch the dialogue files, then their photos, then redraw failures if asked."""
    source = get_source(options.dataset)
    if options.fallback is not None:
        check_model_reference(options.fallback.model)
    root = _prepare_folder(options.out)
    files = fetch_dialogue_files(
        source, root, options.splits, options.base_url, options.limit, options.limits,
        refetch=options.refetch_dialogues, progress=options.progress,
    )
    refs = _distinct(photo_refs(source, files))
    summary = DownloadSummary(dataset=source.name, out=root, photos=len(refs))
    _count_files(summary, files)
    _note_files_beyond_limit(summary, source, root, options.splits, files)
    # Read once: fetching and redrawing keep this dict up to date with what they write.
    manifest = load_manifest(root)
    if options.photos:
        try:
            _fetch(options, root, refs, manifest, summary)
            if options.fallback is not None:
                _redraw(options, root, refs, manifest, summary)
        except KeyboardInterrupt:
            summary.interrupted = True
    _count_photos(summary, refs, manifest)
    return summary


def _prepare_folder(out: Path) -> Path:
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file; give a folder (it is created if missing)")
    (root / PHOTO_DIR).mkdir(parents=True, exist_ok=True)
    remove_stale_parts(root)  # partial files of a killed run
    return root


def _distinct(refs) -> dict[str, PhotoRef]:
    distinct: dict[str, PhotoRef] = {}
    for ref in refs:
        distinct.setdefault(ref.stem, ref)
    return distinct


def _fetch(
    options: DownloadOptions,
    root: Path,
    refs: dict[str, PhotoRef],
    manifest: dict[str, ManifestEntry],
    summary: DownloadSummary,
) -> None:
    plan = plan_photos(refs.values(), manifest, root, options.retry_failed)
    summary.kept, summary.failed_before = plan.kept, plan.failed_before
    result = fetch_photos(plan, root, manifest, options.limits, options.workers, options.progress)
    summary.fetched_now, summary.bytes_fetched = result.fetched, result.bytes_fetched


def _redraw(
    options: DownloadOptions,
    root: Path,
    refs: dict[str, PhotoRef],
    entries: dict[str, ManifestEntry],
    summary: DownloadSummary,
) -> None:
    """Redraw the failed photos; ``entries`` (the manifest) is updated in place, like on disk."""
    missing = [
        MissingPhoto(entry=entries[stem], caption=ref.caption)
        for stem, ref in refs.items()
        if stem in entries and entries[stem].status == FAILED
    ]
    with ManifestWriter(root) as writer:

        def record(entry):
            entries[entry.stem] = entry
            writer.append(entry)
            summary.generated_now += 1

        try:
            regenerate(missing, root, options.fallback, record, options.progress)
        finally:
            writer.rewrite(entries)


def _count_files(summary: DownloadSummary, files: list[DialogueFile]) -> None:
    summary.dialogue_files = len(files)
    summary.dialogue_files_fetched = sum(f.fetched for f in files)
    for file in files:
        summary.dialogues[file.split] = summary.dialogues.get(file.split, 0) + file.records


def _note_files_beyond_limit(summary, source, root: Path, splits: list[str], files: list[DialogueFile]) -> None:
    """Files of an earlier, larger run are left in place (never deleted), but said so."""
    fetched = {file.path for file in files}
    on_disk = [root / remote.local_path for remote in source.files_for(splits)]
    beyond = [path.relative_to(root).as_posix() for path in on_disk if path not in fetched and path.is_file()]
    if beyond:
        summary.notes.append(
            f"{len(beyond)} dialogue file(s) from an earlier run lie beyond --limit and were left in place "
            f"({beyond[0]}{', ...' if len(beyond) > 1 else ''}); loaders will read them too: delete them "
            f"for a folder of exactly --limit dialogues per split"
        )


def _count_photos(summary: DownloadSummary, refs: dict[str, PhotoRef], entries: dict[str, ManifestEntry]) -> None:
    reasons: Counter[str] = Counter()
    for stem in refs:
        entry = entries.get(stem)
        if entry is None:
            summary.pending += 1
        elif entry.status == OK:
            summary.ok += 1
        elif entry.status == GENERATED:
            summary.generated += 1
        else:
            summary.failed += 1
            reasons[entry.reason or "unknown"] += 1
    summary.failed_by_reason = dict(reasons.most_common())

