"""`photodialog data download`: fetch PhotoChat or DialogCC into a dataset folder.

The parts, one file each:

- ``sources``   where each dataset's dialogue files live and how to find the photos in a record
- ``records``   a streaming JSON reader (a JSON array or JSON lines), so a 300 MB file never
                has to be held in memory as Python objects
- ``http``      one URL, fetched with timeouts, retries, backoff and a size limit
- ``dialogues`` the dialogue files, written into the layout of ``photodialog.data.layout``
- ``images``    the decode check and the atomic write of one photo
- ``manifest``  ``photos/manifest.jsonl``: one line per photo, what happened and why
- ``photos``    the concurrent photo fetcher with resume and de-duplication
- ``fallback``  regenerating the photos that could not be fetched, from their captions
- ``runner``    the whole job, as one function the CLI and the tests call
"""

from photodialog.data.download.http import HttpLimits
from photodialog.data.download.manifest import ManifestEntry, load_manifest
from photodialog.data.download.job import DownloadOptions, DownloadSummary, download_dataset
from photodialog.data.download.sources import SOURCES, DatasetSource, PhotoRef, get_source

__all__ = [
    "SOURCES",
    "DatasetSource",
    "DownloadOptions",
    "DownloadSummary",
    "HttpLimits",
    "ManifestEntry",
    "PhotoRef",
    "download_dataset",
    "get_source",
    "load_manifest",
]
