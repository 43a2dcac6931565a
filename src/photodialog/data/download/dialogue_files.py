"""Fetch a dataset's dialogue files into the dataset folder, and list the photos they share.

Files keep their published names and formats (PhotoChat: ``DIR/{train,dev,test}/*.json``;
DialogCC: ``DIR/{train,valid,test}.json``). With ``limit``, only the first ``limit`` dialogues of
each split are kept (read from the stream, which is then closed: trying DialogCC out does not
cost its 300 MB train file), written in the same format.

What was fetched is recorded in ``photos/dialogue_files.json`` (URL, limit, size), so that a
second run skips files it already has and a run with another ``--limit`` fetches them again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from photodialog.data.download.http import Body, FetchError, HttpLimits, fetch
from photodialog.data.download.records import RecordReader, iter_file_records, write_records
from photodialog.data.download.sources import DatasetSource, PhotoRef, RemoteFile
from photodialog.data.layout import PHOTO_DIR
from photodialog.errors import DataError

STATE_FILE = "dialogue_files.json"
DIALOGUE_FILE_SECONDS = 3600.0  # wall time for one dialogue file (DialogCC train is ~300 MB)
PROGRESS_MIN_BYTES = 5_000_000


@dataclass
class DialogueFile:
    """One dialogue file in the folder: where it came from and how many dialogues it holds."""

    split: str
    path: Path
    url: str
    records: int
    bytes: int
    fetched: bool  # False: kept from an earlier run


def fetch_dialogue_files(
    source: DatasetSource,
    root: Path,
    splits: list[str],
    base_url: str | None = None,
    limit: int | None = None,
    limits: HttpLimits = HttpLimits(),
    refetch: bool = False,
    progress: bool = True,
) -> list[DialogueFile]:
    """Fetch the files of ``splits`` (at most ``limit`` dialogues per split) into ``root``."""
    base = source.base_url(base_url)
    file_limits = dataclasses.replace(limits, max_bytes=None, attempt_seconds=DIALOGUE_FILE_SECONDS)
    state = _load_state(root)
    results = []
    for split in splits:
        remaining = limit
        for remote in source.files_for([split]):
            if remaining == 0:
                break
            url = f"{base}/{remote.remote_path}"
            result = _kept_file(root, remote, url, remaining, state, refetch)
            if result is None:
                result = _fetch_file(root, remote, url, remaining, file_limits, progress, source)
                state[remote.local_path] = {
                    "url": url, "limit": remaining, "bytes": result.bytes, "records": result.records
                }
                _save_state(root, state)
            results.append(result)
            if remaining is not None:
                remaining -= min(result.records, remaining)
    return results


def _kept_file(root, remote: RemoteFile, url, limit, state, refetch) -> DialogueFile | None:
    """The file from an earlier run if it was fetched from the same URL with the same limit."""
    path = root / remote.local_path
    known = state.get(remote.local_path)
    if refetch or not known or not path.is_file():
        return None
    if known.get("url") != url or known.get("limit") != limit or known.get("bytes") != path.stat().st_size:
        return None
    return DialogueFile(remote.split, path, url, int(known.get("records", 0)), path.stat().st_size, fetched=False)


def _fetch_file(root, remote, url, limit, limits, progress, source) -> DialogueFile:
    path = root / remote.local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if limit is None:
            size, _ = fetch(url, lambda body: _save_whole(body, path, progress), limits)
            records = sum(1 for _ in iter_file_records(path))  # also rejects an HTML error page
        else:
            (records_list, as_array), _ = fetch(url, lambda body: _first_records(body, limit), limits)
            write_records(path, records_list, as_array)
            records, size = len(records_list), path.stat().st_size
    except FetchError as err:
        raise DataError(
            f"could not fetch the {source.title} dialogue file {url}: {err.reason} "
            f"(after {err.attempts} attempt(s)). Check the connection, or point --base-url "
            f"(or ${source.base_url_env}) at a mirror or a local copy."
        ) from None
    except DataError as err:
        path.unlink(missing_ok=True)
        raise DataError(f"{url} did not give a dialogue file: {err}") from None
    return DialogueFile(remote.split, path, url, records, size, fetched=True)


def _save_whole(body: Body, path: Path, progress: bool) -> int:
    """Stream the body to a temporary file, then rename it: never a half-written dialogue file."""
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    tmp = path.with_name(f".{path.name}.part")
    size = 0
    try:
        # A byte counter only for big files: 25 bars for PhotoChat's small files would be noise.
        small = body.content_length is not None and body.content_length < PROGRESS_MIN_BYTES
        with open(tmp, "wb") as handle, tqdm(
            total=body.content_length, unit="B", unit_scale=True, desc=path.name, disable=not progress or small,
            leave=False,
        ) as bar:
            for chunk in body.chunks:
                handle.write(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return size


def _first_records(body: Body, limit: int) -> tuple[list[dict], bool]:
    """The first ``limit`` records of the stream, and whether it is a JSON array."""
    reader = RecordReader(body.chunks, source=body.url)
    records = []
    for record in reader:
        records.append(record)
        if len(records) >= limit:
            break
    return records, bool(reader.is_array)


def photo_refs(source: DatasetSource, files: list[DialogueFile]) -> Iterator[PhotoRef]:
    """Every photo shared in the files, in file order (read from disk, one record at a time)."""
    for file in files:
        for record in iter_file_records(file.path):
            yield from source.photo_refs(record, file.split)


def _state_path(root: Path) -> Path:
    return root / PHOTO_DIR / STATE_FILE


def _load_state(root: Path) -> dict:
    try:
        return json.loads(_state_path(root).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _save_state(root: Path, state: dict) -> None:
    path = _state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
