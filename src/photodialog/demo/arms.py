"""The arms of the replication experiment: one recipe, each arm a few overrides of it.

Every arm fine-tunes the same pretrained start (``model.init_from``) with the same recipe
(``configs/tiny-finetune.yaml``: STGS with Gumbel noise, tau annealed 1 -> 0.01, mean pooling),
the same data order per training seed and the same number of samples of each kind:

- ``end-to-end`` (the paper): ``L_v`` reaches the LLM through STGS and the sentence-level bridge.
- ``no-bridge`` (the ablation): the same joint training and the same forward values (the text
  encoder reads the same caption tokens), but the bridge passes no gradient, so ``L_v`` puts none
  on the LLM. ``end-to-end - no-bridge`` is the effect of the paper's gradient path alone.
- ``pipeline`` (the paper's baseline): the parts fine-tuned apart, joined by caption text: the LLM
  reads context photos as captions written by a captioner (the world's probe, the tiny stand-in
  for BLIP-2's captioner) and learns from ``L_t`` alone; the generator learns from ``L_v`` on the
  gold captions. The two parts share batches only so that their data is the same as the other
  arms'; with AdamW's per-parameter updates that is the same as two separate runs on those
  batches, except that gradient clipping takes one norm over both parts.
- ``end-to-end-sampled``: ``end-to-end`` with the caption the authors' code feeds the generator,
  the LLM's own sampled caption tokens (``model.caption_source=sampled``); ``word``, ``exact``:
  the paper's other bridges. ``--arms`` adds them.

The caption reaching the generator is the gold one in every default arm: from the pretrained
start, training the generator on sampled captions cost it most of what it had learnt (measured:
docs/demo/caption-source.md), so ``gold`` is the recipe's default and ``sampled`` an extra arm.

To add an arm: one entry in ``ARMS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...]
    meaning: str


ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("end-to-end", ("model.bridge=sentence", "model.caption_source=gold"),
        "the paper: L_v reaches the LLM through STGS and the sentence-level bridge (Eq. 10-11)"),
    Arm("no-bridge", ("model.bridge=none", "model.caption_source=gold"),
        "the same joint training with no L_v gradient on the LLM (the ablation)"),
    Arm("pipeline", ("model.bridge=none", "model.caption_source=gold", "model.parts=[llm, generator]",
                     "model.context_photos=caption", "model.captioner=probe"),
        "the parts fine-tuned apart, joined by caption text: the LLM reads context photos as the probe's captions "
        "and learns from L_t, the generator from L_v on gold captions"),
    Arm("end-to-end-sampled", ("model.bridge=sentence", "model.caption_source=sampled"),
        "end-to-end with the LLM's sampled caption tokens reaching the generator (the authors' code)"),
    Arm("word", ("model.bridge=word", "model.caption_source=gold"),
        "end-to-end through the word-level dynamic bridge"),
    Arm("exact", ("model.bridge=exact", "model.caption_source=gold"),
        "end-to-end through the static exact-match bridge (Eq. 8)"),
)}
DEFAULT_ARMS = ("end-to-end", "no-bridge", "pipeline")
REFERENCE = "end-to-end"  # every difference is this arm minus another


def parse_arms(extra: list[str] | None) -> list[str]:
    """The default arms plus ``extra`` (``--arms word,exact``), in registry order; unknown names raise ValueError."""
    wanted = set(DEFAULT_ARMS) | set(extra or [])
    unknown = sorted(wanted - set(ARMS))
    if unknown:
        raise ValueError(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    return [name for name in ARMS if name in wanted]


def run_name(arm: str, seed: int) -> str:
    """The run folder (under ``runs/``) and eval file name of one arm and training seed."""
    return f"{arm}-seed{seed}"
