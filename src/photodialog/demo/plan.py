"""What `photodialog demo` runs: the world, the pretraining stage, the arms x training seeds, the evaluation.

Every budget is a number of optimizer steps (or samples), never minutes: the same command gives
the same numbers on any machine of the same CPU kind and torch version (other CPU kinds sum floats
in another order), and a slow or busy machine only takes longer. The default plan is
sized for at most 20 minutes on an idle 2-core machine (14.2 measured when it also pretrained the
generator), two lanes side by side
(``docs/demo/time-spent.json`` holds the measured split).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from photodialog.demo.arms import DEFAULT_ARMS

# The run name of the pretraining stage (a folder under pretrain/). The image generator is not
# pretrained here: every recipe of the demo starts it from the pretrained tiny Stable Diffusion
# photodialog ships (model.tiny.diffusion_source=bundled; models/tiny_generator.py).
PRETRAIN_TEXT = "llm-perceptron"


@dataclass
class DemoPlan:
    dialogues: int
    """Dialogues in the synthetic world (train / dev / test = 80 / 10 / 10%)."""
    seeds: list[int]
    """Training seeds: every arm is fine-tuned once per seed (new weights' init, data order, noise)."""
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    pretrain_text_steps: int = 0
    finetune_steps: int = 0
    eval_samples: int = 0
    """Test turns evaluated per model (0 = the whole test split, the protocol)."""
    eval_seed: int = 0
    """The sampling seed of every evaluation (the same for every model: the photos differ only by model)."""
    diffusion_steps: int = 4
    """Sampler steps per photo (the recipes' ``eval.diffusion_steps``: DPM-Solver++, tuned on dev)."""
    probe_epochs: int = 10
    quick: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def make_plan(seeds: int, arms: list[str], quick: bool) -> DemoPlan:
    """The default plan (or ``--quick``: a smoke run of every stage, too small to show anything)."""
    if quick:
        return DemoPlan(dialogues=300, seeds=list(range(seeds)), arms=arms, pretrain_text_steps=40, finetune_steps=12,
                        eval_samples=24, probe_epochs=3, quick=True)
    return DemoPlan(dialogues=2000, seeds=list(range(seeds)), arms=arms, pretrain_text_steps=1600, finetune_steps=200,
                    eval_samples=0)
