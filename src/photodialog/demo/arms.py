"""The arms of the replication experiment: one recipe, each arm a few overrides of it.

Every arm fine-tunes the same pretrained start (``model.init_from``) with the same recipe
(``configs/tiny-finetune.yaml``: the paper's STGS settings), the same data order per training
seed and the same number of samples of each kind; they differ only where the paper's claim lives:

- ``end-to-end`` (the paper): ``L_v`` reaches the LLM through STGS and the sentence-level bridge.
- ``no-bridge`` (the ablation): the same joint training, the same forward values (the text encoder
  reads the same caption tokens), but the bridge passes no gradient, so ``L_v`` puts none on the LLM.
- ``pipeline``: the text part learns from ``L_t`` and the image part from ``L_v`` on the *gold*
  caption, as when the two are fine-tuned apart; no gradient crosses. The two parts share batches
  only so that their data is the same as the other arms'; with AdamW's per-parameter updates and
  per-part losses that is the same as two separate runs on those batches, except that gradient
  clipping takes one norm over both parts.
- ``word`` and ``exact``: the paper's other bridges (``--arms`` adds them).

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
    Arm("end-to-end", ("model.bridge=sentence", "model.caption_source=sampled"),
        "the paper: L_v reaches the LLM through STGS and the sentence-level bridge (Eq. 10-11)"),
    Arm("no-bridge", ("model.bridge=none", "model.caption_source=sampled"),
        "the same joint training with no L_v gradient on the LLM (the ablation)"),
    Arm("pipeline", ("model.bridge=none", "model.caption_source=gold"),
        "text and image parts fine-tuned apart: L_t for the LLM, L_v on gold captions for the generator"),
    Arm("word", ("model.bridge=word", "model.caption_source=sampled"),
        "end-to-end through the word-level dynamic bridge"),
    Arm("exact", ("model.bridge=exact", "model.caption_source=sampled"),
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
