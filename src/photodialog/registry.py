"""Every extension point and what is registered at it: the one list of allowed values.

Config validation (``config.CHOICES``), the ``--help`` choices of the commands and the docs read
their names from here. Each entry names its implementation as ``"module:attribute"``, imported
only when used (``Registry.load``), so this module, and ``config`` which reads it, import
neither torch nor diffusers: ``photodialog --help`` stays fast.

Adding one is its implementation (a function, class or module) plus one ``add`` line below:

========================  ====================================================================
registry                  what an entry is
========================  ====================================================================
``DATASET_FORMATS``       a module with ``NAME``, ``looks_like(record)`` and ``parse_record(record)``
                          (``data/photochat.py``); the loader tries them in this order
``DATASET_SOURCES``       a ``DatasetSource`` (``data/download/sources.py``): where ``photodialog data
                          download NAME`` fetches the dialogue files, and which format parses them
``BRIDGES``               a function ``(bridge, caption, sd_row) -> [(llm ids, sd ids), ...]``
                          giving the blocks of the caption's matrix M (Eq. 9-10); ``exact``
                          (Eq. 8, a static matrix), ``aligned`` (Eq. 8 per position) and ``none``
                          are the bridge's own modes
``SAMPLERS``              a diffusers scheduler class, built from the generator's noise schedule
``DECODINGS``             a function ``(settings) -> generate() keyword arguments``
``TEXT_METRICS``          a function ``(predicted texts, gold texts) -> MetricSet``, run on every seed
``BASELINES``             recipes ``tiny-<name>-text/image`` and ``paper-<name>-text/image-<dataset>``
                          in ``configs/``; ``label`` is the name in tables
========================  ====================================================================
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from photodialog.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    """One registered choice: its name, where its implementation is, and a line about it."""

    name: str
    target: str | None
    """``"package.module:attribute"`` (or ``"package.module"``), None when the owner handles the name itself."""
    summary: str
    label: str = ""
    """How tables and reports name it (default: the name)."""


class Registry:
    """The named choices of one extension point, in registration order."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str | None, summary: str, *, label: str = "") -> None:
        """Register ``name``; raises ``ValueError`` when it is already taken (two files claimed it)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = Entry(name, target, summary, label or name)

    @property
    def names(self) -> tuple[str, ...]:
        """The allowed values, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries.values())

    def entry(self, name: str) -> Entry:
        """The entry of ``name``; raises ``ConfigError`` listing the allowed names when unknown."""
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} '{name}'; choose one of {', '.join(self._entries)}")
        return self._entries[name]

    def load(self, name: str) -> Any:
        """The implementation of ``name``, imported now (``ConfigError`` when unknown or built in)."""
        target = self.entry(name).target
        if target is None:
            raise ConfigError(f"{self.kind} '{name}' has no separate implementation")
        module, _, attribute = target.partition(":")
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded


DATASET_FORMATS = Registry("dataset format")
DATASET_FORMATS.add("photochat", "photodialog.data.photochat", "PhotoChat: one record per dialogue, one shared photo")
DATASET_FORMATS.add("dialogcc", "photodialog.data.dialogcc", "DialogCC: utterances with any number of CC3M photos")

DATASET_SOURCES = Registry("dataset")
DATASET_SOURCES.add("photochat", "photodialog.data.download.sources:PHOTOCHAT",
                    "PhotoChat (Zang et al., ACL 2021), CC BY 4.0: 12,286 dialogues, one photo each")
DATASET_SOURCES.add("dialogcc", "photodialog.data.download.sources:DIALOGCC",
                    "DialogCC (Lee et al., NAACL 2024), CC BY-NC-SA 4.0: 83,370 dialogues, CC3M photos")

BRIDGES = Registry("bridge")
BRIDGES.add("exact", None, "Eq. 8: the static matrix of tokens whose text is equal (costs a pass over the vocabulary per caption)")
BRIDGES.add("sentence", "photodialog.models.bridge:sentence_blocks", "Eq. 10 (the paper's): the caption's two token sets")
BRIDGES.add("word", "photodialog.models.bridge:word_blocks", "the union over the caption's words of their token sets")
BRIDGES.add("none", None, "no gradient from L_v to the LLM (the pipeline)")
BRIDGES.add("aligned", None, "beyond the paper: Eq. 8's static matrix position by position, no pooling "
            "(each caption position's whole LLM row to the SD positions of the same word)")

SAMPLERS = Registry("sampler")
SAMPLERS.add("ddim", "diffusers:DDIMScheduler", "DDIM (deterministic)")
SAMPLERS.add("dpm", "diffusers:DPMSolverMultistepScheduler", "DPM-Solver++ (multistep)")
SAMPLERS.add("euler", "diffusers:EulerDiscreteScheduler", "Euler")
SAMPLERS.add("ddpm", "diffusers:DDPMScheduler", "DDPM (ancestral, adds noise at every step)")

DECODINGS = Registry("decoding")
DECODINGS.add("greedy", "photodialog.models.generation:greedy_decoding", "the most likely token at each step")
DECODINGS.add("beam", "photodialog.models.generation:beam_decoding", "beam search over num_beams beams")
DECODINGS.add("sample", "photodialog.models.generation:sample_decoding", "sampling with temperature and top-p")

TEXT_METRICS = Registry("text metric")
TEXT_METRICS.add("text", "photodialog.evaluation.text_metrics:text_scores", "BLEU-1/2 and ROUGE-L against the gold turn")
TEXT_METRICS.add("share_moment", "photodialog.evaluation.share_moment:share_moment_scores",
                 "share-moment precision, recall and F1")

BASELINES = Registry("baseline")
BASELINES.add("pipeline", None, "the end-to-end model's own parts, trained apart and joined by caption text",
              label="pipeline")
BASELINES.add("divter", None, "a DialoGPT-layout (GPT-2) text model with the same captioner and image model",
              label="Divter")
BASELINE_SCALES = ("tiny", "photochat", "dialogcc")  # a baseline's recipes: the synthetic world's, or the paper's per dataset

REGISTRIES = (DATASET_FORMATS, DATASET_SOURCES, BRIDGES, SAMPLERS, DECODINGS, TEXT_METRICS, BASELINES)


def markdown() -> str:
    """Every registry as a Markdown table (name, implementation, what it is): the table of
    docs/architecture.md, which a test keeps equal to this. ``python -m photodialog.registry`` prints it."""
    rows = ["| registry | name | implementation | what it is |", "| --- | --- | --- | --- |"]
    for registry in REGISTRIES:
        for entry in registry:
            where = f"`{entry.target}`" if entry.target else "(built in)"
            if registry is BASELINES:
                where = f"`configs/tiny-{entry.name}-*.yaml`, `configs/paper-{entry.name}-*-<dataset>.yaml`"
            rows.append(f"| {registry.kind} | `{entry.name}` | {where} | {entry.summary} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")

