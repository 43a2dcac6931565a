"""Fetch every photo of the downloaded dialogues, concurrently, resumably, once per URL.

Planning decides, per photo, from the manifest and the files on disk:

- a file that is present and matches its ``ok``/``generated`` manifest line is kept as is;
- a file that is present without such a line is decode-checked (by a worker) and kept if whole;
- a photo whose last fetch failed is left alone unless ``retry_failed``;
- a URL that is not ``http(s)://`` is never requested: the records come from elsewhere, and a
  ``file://`` (or ``ftp://``, ``data:``) URL in one would copy a file of this machine into the dataset;
- everything else is fetched. Photos that share a URL are fetched once and copied.

Each worker streams one URL into a hidden temporary file (size limit enforced while
streaming), decodes it fully, and renames it into place. The main thread is the only writer
of the manifest. Ctrl-C sets a stop flag that every worker checks between chunks and while
waiting to retry, so the run stops within a chunk (or one socket timeout), keeps what it
fetched, and leaves no partial file.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from photodialog.data.download.http import Body, FetchError, HttpLimits, fetch
from photodialog.data.download.images import (
    ImageRejected,
    check_image,
    place_photo,
    temp_path_for,
)
from photodialog.data.download.manifest import FAILED, GENERATED, OK, ManifestEntry, ManifestWriter
from photodialog.data.download.photo_sources import URL, tried_sources
from photodialog.data.download.sources import PhotoRef
from photodialog.data.layout import find_photo

# Some CDNs serve photos as octet-stream; for those the decode check is the judge.
UNTYPED_CONTENT = {"", "application/octet-stream", "binary/octet-stream"}
# Dead photos that answer "200 OK" with a valid image saying so, after a redirect: Flickr sends
# https://s.yimg.com/pw/images/en-us/photo_unavailable.png, imgur sends /removed.png.
PLACEHOLDER_URL_PARTS = ("/photo_unavailable", "imgur.com/removed.png")
RECORD_URL_SCHEMES = ("http", "https")  # what a dataset record's own photo URL may use


@dataclass
class PhotoJob:
    """One URL to fetch, the stem it is stored under, and further stems that share the URL."""

    url: str
    stem: str
    copies: list[str] = field(default_factory=list)
    verify_existing: bool = False  # a file is present without a manifest line: check it first


@dataclass
class PhotoPlan:
    """What a run will do: the jobs, and the photos it leaves as they are."""

    jobs: list[PhotoJob]
    kept: int = 0  # present and whole already
    failed_before: int = 0  # failed in an earlier run and not retried
    no_url: list[ManifestEntry] = field(default_factory=list)


@dataclass
class PhotoRunResult:
    """What one run of the photo fetcher did (the plan says what it left alone)."""

    fetched: int = 0  # fetched (or copied) and whole, this run
    failed: int = 0  # failed this run (shown on the progress bar)
    bytes_fetched: int = 0


def photo_refusal(final_url: str, content_type: str) -> str | None:
    """Why a response cannot be the photo (a placeholder, not an image), or None if it may be."""
    if any(part in final_url for part in PLACEHOLDER_URL_PARTS):
        return "placeholder: photo unavailable"
    if content_type.startswith("image/") or content_type in UNTYPED_CONTENT:
        return None
    return f"not an image: {content_type}"


def plan_photos(
    refs: Iterable[PhotoRef], manifest: dict[str, ManifestEntry], root: Path, retry_failed: bool
) -> PhotoPlan:
    """Decide what to fetch; one job per distinct URL."""
    plan = PhotoPlan(jobs=[])
    jobs_by_url: dict[str, PhotoJob] = {}
    seen_stems: set[str] = set()
    for ref in refs:
        if ref.stem in seen_stems:
            continue  # the first URL seen for a stem wins
        seen_stems.add(ref.stem)
        if not ref.url:
            plan.no_url.append(ManifestEntry(url=None, stem=ref.stem, status=FAILED, reason="no url"))
            continue
        scheme = urlsplit(ref.url).scheme.lower()
        if scheme not in RECORD_URL_SCHEMES:
            reason = f"not an http(s) URL ({scheme or 'no scheme'}:): a record's photo is fetched from the web only"
            plan.no_url.append(ManifestEntry(url=ref.url, stem=ref.stem, status=FAILED, reason=reason))
            continue
        action = _resume_action(ref.stem, manifest.get(ref.stem), root, retry_failed)
        if action == "kept":
            plan.kept += 1
        elif action == "failed_before":
            plan.failed_before += 1
        elif ref.url in jobs_by_url:
            jobs_by_url[ref.url].copies.append(ref.stem)
        else:
            job = PhotoJob(url=ref.url, stem=ref.stem, verify_existing=action == "verify")
            jobs_by_url[ref.url] = job
            plan.jobs.append(job)
    return plan


def _resume_action(stem: str, entry: ManifestEntry | None, root: Path, retry_failed: bool) -> str:
    existing = find_photo(root, stem)
    if existing is not None:
        if entry is not None and entry.status in (OK, GENERATED) and entry.bytes == existing.stat().st_size:
            return "kept"
        return "verify"
    if entry is not None and entry.status == FAILED and not retry_failed and URL in tried_sources(entry):
        return "failed_before"  # its URL failed before (a failure of an earlier source alone is no reason)
    return "fetch"


def fetch_photos(
    plan: PhotoPlan,
    root: Path,
    manifest: dict[str, ManifestEntry],
    limits: HttpLimits,
    workers: int = 16,
    progress: bool = True,
    on_result: Callable[[ManifestEntry], None] | None = None,
    desc: str = "photos",
) -> PhotoRunResult:
    """Run the plan's jobs on ``workers`` threads; the manifest is updated as results arrive.

    ``manifest`` (by stem) is updated in place as well as on disk, also when the run is cut
    short, so the caller goes on with the newest state without reading the file again.
    """
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    result = PhotoRunResult()
    stop = threading.Event()
    with ManifestWriter(root) as writer, tqdm(
        total=len(plan.jobs), unit="photo", desc=desc, disable=not progress or not plan.jobs
    ) as bar:

        def record(job_entries: list[ManifestEntry]) -> None:
            for entry in job_entries:
                manifest[entry.stem] = entry
                writer.append(entry)
                _count(result, entry)
                if on_result is not None:
                    on_result(entry)
            bar.update(1)
            bar.set_postfix(ok=result.fetched, failed=result.failed, refresh=False)

        for entry in plan.no_url:
            manifest[entry.stem] = entry
            writer.append(entry)
        try:
            _run_pool(plan.jobs, root, limits, workers, stop, record)
        finally:
            writer.rewrite(manifest)  # also after Ctrl-C: one line per photo, nothing lost
    return result


def _run_pool(jobs, root, limits, workers, stop, record) -> None:
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="photo")
    futures: dict[Future, PhotoJob] = {pool.submit(run_job, job, root, limits, stop): job for job in jobs}
    recorded: set[Future] = set()
    try:
        for future in as_completed(futures):
            recorded.add(future)
            record(future.result())
    except BaseException:
        # Ctrl-C (or a bug): stop the workers, drop queued jobs, keep every finished result.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future not in recorded and future.done() and not future.cancelled() and future.exception() is None:
                record(future.result())
        raise
    pool.shutdown(wait=True)


def _count(result: PhotoRunResult, entry: ManifestEntry) -> None:
    if entry.status == FAILED:
        result.failed += 1
    elif entry.attempts > 0:
        result.fetched += 1
        result.bytes_fetched += entry.bytes


def run_job(job: PhotoJob, root: Path, limits: HttpLimits, stop: threading.Event) -> list[ManifestEntry]:
    """Fetch (or verify) one URL and copy it to the stems that share it; one entry per stem."""
    entry = _verify_existing(job, root) if job.verify_existing else None
    if entry is None:
        entry = _fetch_one(job, root, limits, stop)
    return [entry] + [_copy_for(entry, stem, root) for stem in job.copies]


def _verify_existing(job: PhotoJob, root: Path) -> ManifestEntry | None:
    """An entry for a file already on disk if it decodes, else None (fetch it again)."""
    path = find_photo(root, job.stem)
    if path is None:
        return None
    try:
        check_image(path)
    except ImageRejected:
        return None
    return ManifestEntry(url=job.url, stem=job.stem, status=OK, path=_relative(path, root), bytes=path.stat().st_size)


def _fetch_one(job: PhotoJob, root: Path, limits: HttpLimits, stop: threading.Event) -> ManifestEntry:
    tmp = temp_path_for(root, job.stem)
    attempts = 0
    try:
        size, attempts = fetch(job.url, lambda body: _write_body(body, tmp), limits, photo_refusal, stop)
        final = place_photo(tmp, root, job.stem, check_image(tmp))
        return ManifestEntry(
            url=job.url, stem=job.stem, status=OK, path=_relative(final, root), bytes=size, attempts=attempts
        )
    except FetchError as err:
        return ManifestEntry(url=job.url, stem=job.stem, status=FAILED, reason=err.reason, attempts=err.attempts)
    except ImageRejected as err:
        return ManifestEntry(url=job.url, stem=job.stem, status=FAILED, reason=err.reason, attempts=attempts)
    finally:
        tmp.unlink(missing_ok=True)


def _write_body(body: Body, tmp: Path) -> int:
    size = 0
    with open(tmp, "wb") as handle:
        for chunk in body.chunks:
            handle.write(chunk)
            size += len(chunk)
    return size


def _copy_for(entry: ManifestEntry, stem: str, root: Path) -> ManifestEntry:
    """The same photo under another stem (a second photo_id for the same URL); no request."""
    if entry.status != OK or entry.path is None:
        return ManifestEntry(url=entry.url, stem=stem, status=FAILED, reason=entry.reason, attempts=0)
    source = root / entry.path
    tmp = temp_path_for(root, stem)
    try:
        shutil.copyfile(source, tmp)
        final = place_photo(tmp, root, stem, check_image(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    return ManifestEntry(url=entry.url, stem=stem, status=OK, path=_relative(final, root), bytes=entry.bytes)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()

