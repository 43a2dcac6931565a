"""What `photodialog demo` runs: the world, the arms x training seeds from the shipped start, the evaluation.

Every budget is a number of optimizer steps (or samples), never minutes: the same command gives
the same numbers on any machine of the same CPU kind and torch version (other CPU kinds sum floats
in another order), and a slow or busy machine only takes longer. The default plan is
sized for at most 20 minutes on an idle 2-core machine, two lanes side by side
(``docs/demo/time-spent.json`` holds the measured split). Nothing is pretrained here: every arm
starts from the pretrained parts photodialog ships (``model.init_from: [bundled]``, the tiny LLM
and perceptron of ``assets/tiny-llm``; ``model.tiny.diffusion_source: bundled``, the generator of
``assets/tiny-sd``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from photodialog.demo.arms import DEFAULT_ARMS



@dataclass
class DemoPlan:
    dialogues: int
    """Dialogues in the synthetic world (train / dev / test = 80 / 10 / 10%)."""
    seeds: list[int]
    """Training seeds: every arm is fine-tuned once per seed (new weights' init, data order, noise)."""
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
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
        return DemoPlan(dialogues=300, seeds=list(range(seeds)), arms=arms, finetune_steps=12,
                        eval_samples=24, probe_epochs=3, quick=True)
    return DemoPlan(dialogues=2000, seeds=list(range(seeds)), arms=arms, finetune_steps=200,
                    eval_samples=0)
