"""The arms of the replication experiment: one recipe, each arm a few overrides of it.

Every arm fine-tunes the same pretrained start (``model.init_from: [bundled]``) with the same
recipe (``configs/tiny-finetune.yaml``), the same data order per training seed, the same steps,
and gradients clipped per part (``train.grad_clip_per_part``), so the arms share nothing but their
inputs. In every default arm the generator trains on the gold captions only, and the LLM's own
caption (what the arm says reaches the generator) trains the LLM alone
(``model.own_caption_path=llm_only``, its ``L_v`` weighted ``OWN_CAPTION_WEIGHT``): a wrong
caption cannot teach the generator to ignore words (it did, measured in
docs/demo/caption-source.md). The world's gold captions leave the colour
out of half of the photos (``data synth --omit-colour``), while the dialogue states it and the
photo shows it: what ``L_t`` cannot teach the LLM and ``L_v`` can.

- ``no-bridge`` (the reference): the same computation, but no bridge, so ``L_v`` puts no gradient
  on the LLM; every difference is another arm minus this one.
- ``paper`` (the paper, §2.4-2.5): STGS with Gumbel noise, tau annealed 1 -> 0.01 over the first
  three epochs (``demo/run.py``: the run is shorter, so tau stays near 1, as in the paper's first
  steps), the sentence-level bridge with mean pooling (Eq. 10-11), the LLM's sampled caption.
- ``authors-code`` (the paper's public code, ``model/joint_generater.py``): plain straight-through
  (no noise, tau 1), every LLM token of the caption linked to every CLIP token of its text with the
  one-hots summed over positions (``pooling=sum``), the teacher-forced argmax caption.
- ``aligned`` (beyond the paper): ``authors-code`` with a bridge that carries word-level
  information: Eq. 8's static LLM-to-CLIP matrix applied position by position, no pooling, so each
  caption position gets the gradient of its own word.
- ``pipeline`` (the paper's baseline, ``--arms pipeline``): the parts fine-tuned apart, joined by
  caption text: the LLM reads context photos as the probe's captions and learns from ``L_t``
  alone; the generator learns from ``L_v`` on the gold captions.
- ``end-to-end-gold``: the previous demo's end-to-end arm (sentence bridge, gold captions through
  STGS, trained jointly); ``word``, ``exact``: the paper's other bridges. ``--arms`` adds them.

To add an arm: one entry in ``ARMS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...]
    meaning: str


# The own caption trains the LLM only (the generator learns from gold), its L_v weighted 10: with weight 1
# the aligned arm's own caption named the photo's colour 3 points more often than no-bridge's after
# the demo's 120 steps, with 10 about 20 points more (pilot, docs/demo/report.md "Power"). Every
# bridged arm gets the same weight, so the arms differ in the bridge and STGS settings alone.
OWN_CAPTION_WEIGHT = 10.0
OWN = ("model.own_caption_path=llm_only", f"model.own_caption_weight={OWN_CAPTION_WEIGHT:g}")

ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("no-bridge", ("model.bridge=none", "model.caption_source=argmax", *OWN),
        "the reference: the same computation with no bridge, so L_v puts no gradient on the LLM"),
    Arm("paper", ("model.bridge=sentence", "model.pooling=mean", "model.gumbel_noise=true", "model.caption_source=sampled", *OWN),
        "the paper: STGS with Gumbel noise, tau annealed over three epochs, the sentence-level bridge with mean "
        "pooling (Eq. 10-11), the LLM's sampled caption"),
    Arm("authors-code", ("model.bridge=sentence", "model.pooling=sum", "model.gumbel_noise=false", "model.caption_source=argmax",
                         "train.tau_start=1", "train.tau_end=1", *OWN),
        "the authors' code: plain straight-through, all caption tokens linked to all CLIP tokens with the one-hots "
        "summed, the argmax caption"),
    Arm("aligned", ("model.bridge=aligned", "model.gumbel_noise=false", "model.caption_source=argmax",
                    "train.tau_start=1", "train.tau_end=1", *OWN),
        "beyond the paper: authors-code with a word-level bridge (Eq. 8's matrix position by position, no pooling)"),
    Arm("pipeline", ("model.bridge=none", "model.caption_source=gold", "model.parts=[llm, generator]",
                     "model.context_photos=caption", "model.captioner=probe"),
        "the parts fine-tuned apart, joined by caption text: the LLM reads context photos as the probe's captions "
        "and learns from L_t, the generator from L_v on gold captions"),
    Arm("end-to-end-gold", ("model.bridge=sentence", "model.caption_source=gold"),
        "the sentence bridge with gold captions through STGS, trained jointly (the previous demo's end-to-end arm)"),
    Arm("word", ("model.bridge=word", "model.caption_source=gold"),
        "end-to-end through the word-level dynamic bridge, gold captions"),
    Arm("exact", ("model.bridge=exact", "model.caption_source=gold"),
        "end-to-end through the static exact-match bridge (Eq. 8), gold captions"),
)}
DEFAULT_ARMS = ("no-bridge", "paper", "authors-code", "aligned")
REFERENCE = "no-bridge"  # every difference is another arm minus this one


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
