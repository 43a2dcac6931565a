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

from photodialog.data.download.dialogue_files import DialogueFile, fetch_dialogue_files, photo_refs
from photodialog.data.download.fallback import FallbackOptions, MissingPhoto, check_model_reference, regenerate
from photodialog.data.download.http import HttpLimits
from photodialog.data.download.images import remove_stale_parts
from photodialog.data.download.manifest import FAILED, GENERATED, OK, ManifestEntry, ManifestWriter, load_manifest
from photodialog.data.download.photo_sources import (
    GENERATOR,
    SOURCE_ORDER,
    URL,
    HubMirror,
    OpenImages,
    tried_sources,
    with_attempt,
)
from photodialog.data.download.photo_fetch import PhotoJob, PhotoPlan, fetch_photos, plan_photos
from photodialog.data.download.sources import PhotoRef, get_source
from photodialog.data.layout import PHOTO_DIR, SPLITS
from photodialog.errors import UserError
from photodialog.output_files import claim_folder


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
    open_images: str | None = None  # PhotoChat: Open Images folder or URL template, tried before photo_url
    photo_source: str | None = None  # a Hub dataset (or local folder) mirroring the photos, tried after the URL
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
    served_by: dict[str, int] = field(default_factory=dict)  # photo source -> photos it served (ok or generated)
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
        if self.served_by:
            lines.append("served by: " + ", ".join(f"{source} {count}" for source, count in self.served_by.items()))
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
    before_url, after_url = photo_sources_of(options, source.name)  # bad flags fail before any fetching
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
            _fetch(options, root, refs, manifest, summary, before_url, after_url)
            if options.fallback is not None:
                _redraw(options, root, refs, manifest, summary)
        except KeyboardInterrupt:
            summary.interrupted = True
    _count_photos(summary, refs, manifest)
    return summary


def _prepare_folder(out: Path) -> Path:
    root = Path(out).expanduser()
    # A dataset folder this command made (a rerun goes on), a new or empty one, or one in the dataset's layout
    # (photos/ of photos already at hand, checked and kept): never a folder of other files.
    claim_folder(root, "data download", made_before=lambda folder: (folder / PHOTO_DIR).is_dir())
    (root / PHOTO_DIR).mkdir(parents=True, exist_ok=True)
    remove_stale_parts(root)  # partial files of a killed run
    return root


def _distinct(refs) -> dict[str, PhotoRef]:
    distinct: dict[str, PhotoRef] = {}
    for ref in refs:
        distinct.setdefault(ref.stem, ref)
    return distinct


def photo_sources_of(options: DownloadOptions, dataset: str) -> tuple[list, list]:
    """The photo sources tried before and after each photo's own URL (``photo_sources.py``)."""
    before, after = [], []
    if options.open_images:
        if dataset != "photochat":
            raise UserError(f"--open-images is for PhotoChat, whose photo_id names an Open Images file; {dataset} has none")
        before.append(OpenImages(options.open_images))
    if options.photo_source:
        after.append(HubMirror(options.photo_source))
    return before, after


def _fetch(
    options: DownloadOptions,
    root: Path,
    refs: dict[str, PhotoRef],
    manifest: dict[str, ManifestEntry],
    summary: DownloadSummary,
    before_url: list,
    after_url: list,
) -> None:
    served = set()
    for photo_source in before_url:
        served |= _try_source(photo_source, options, root, refs, manifest, summary)
    plan = plan_photos([r for r in refs.values() if r.stem not in served], manifest, root, options.retry_failed)
    summary.kept, summary.failed_before = plan.kept, plan.failed_before
    before = dict(manifest)
    result = fetch_photos(plan, root, manifest, options.limits, options.workers, options.progress)
    summary.fetched_now += result.fetched
    summary.bytes_fetched += result.bytes_fetched
    _record_source(URL, before, manifest, refs)
    _rewrite(root, manifest)
    for photo_source in after_url:
        _try_source(photo_source, options, root, refs, manifest, summary)


def _try_source(photo_source, options, root: Path, refs: dict[str, PhotoRef], manifest, summary) -> set[str]:
    """Fetch from ``photo_source`` every photo it has not failed for yet; returns the stems it served."""
    todo = [ref for ref in refs.values() if _wants(photo_source.name, manifest.get(ref.stem), root, options.retry_failed)]
    if not todo:
        return set()
    found = photo_source.candidates(todo)
    before = dict(manifest)
    for stem, reason in found.misses.items():
        manifest[stem] = ManifestEntry(url=refs[stem].url, stem=stem, status=FAILED, reason=reason)
    plan = PhotoPlan(jobs=[PhotoJob(url=url, stem=stem) for stem, url in found.urls.items()])
    try:
        result = fetch_photos(plan, root, manifest, options.limits, options.workers, options.progress,
                              desc=f"photos ({photo_source.name})")
        summary.fetched_now += result.fetched
        summary.bytes_fetched += result.bytes_fetched
    finally:
        _record_source(photo_source.name, before, manifest, refs)
        _rewrite(root, manifest)
    return {stem for stem in found.urls if manifest[stem].status == OK}


def _wants(source_name: str, entry: ManifestEntry | None, root: Path, retry_failed: bool) -> bool:
    """Whether to ask this source: no file yet, and no earlier failure of this source (or --retry-failed)."""
    if entry is None:
        return True
    if entry.status != FAILED:
        return False
    return retry_failed or source_name not in tried_sources(entry)


def _record_source(name: str, before: dict[str, ManifestEntry], manifest: dict[str, ManifestEntry], refs) -> None:
    """Say on each line this source wrote that it served the photo, or add its failure to ``tried``."""
    for stem, entry in manifest.items():
        if stem not in refs or entry is before.get(stem):
            continue  # not looked at by this source
        earlier = _earlier_attempts(before.get(stem))
        entry.source = name
        if entry.status == FAILED:
            entry.tried = with_attempt(earlier, name, entry.reason)
            entry.reason = next((a["reason"] for a in entry.tried if a["source"] == URL), entry.reason)
            entry.url = refs[stem].url  # the photo's own URL, whichever source failed last
        else:
            entry.tried = [a for a in earlier if a["source"] != name] or None


def _earlier_attempts(entry: ManifestEntry | None) -> list[dict]:
    if entry is None or entry.status != FAILED:
        return []
    if entry.tried is None:  # a failed line from before sources were recorded: its URL failed
        return [{"source": URL, "reason": entry.reason}]
    return list(entry.tried)


def _rewrite(root: Path, manifest: dict[str, ManifestEntry]) -> None:
    with ManifestWriter(root) as writer:
        writer.rewrite(manifest)


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
    served: Counter[str] = Counter()
    for stem in refs:
        entry = entries.get(stem)
        if entry is None:
            summary.pending += 1
        elif entry.status == OK:
            summary.ok += 1
            served[entry.source or URL] += 1
        elif entry.status == GENERATED:
            summary.generated += 1
            served[entry.source or GENERATOR] += 1
        else:
            summary.failed += 1
            reasons[entry.reason or "unknown"] += 1
    summary.failed_by_reason = dict(reasons.most_common())
    summary.served_by = {name: served[name] for name in SOURCE_ORDER if served[name]}

