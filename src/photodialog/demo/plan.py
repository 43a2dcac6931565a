"""How `photodialog demo` spends its budget: world size, training minutes per lane, eval size.

Two lanes train side by side, one process and one CPU thread each (on 2 cores, two 1-thread
processes do more work than one 2-thread process on models this small): the end-to-end model
in one lane; the pipeline's text part and then its image part in the other, each for half the
time. Both sides get the same components and the same wall-clock budget.
"""

from __future__ import annotations

from dataclasses import dataclass

# Run names (folders under runs/, lanes, logs) of the two sides' trainings ...
E2E, TEXT, IMAGE = "end-to-end", "pipeline-text", "pipeline-image"
# ... and the pipeline's name in its evaluation: its image part's run, joined to the text part's.
PIPELINE = "pipeline"


@dataclass
class DemoPlan:
    dialogues: int
    train_minutes: float
    eval_samples: int  # 0 = the whole test split (the protocol)
    seeds: list[int]
    diffusion_steps: int
    quick: bool

    @property
    def pipeline_part_minutes(self) -> float:
        return self.train_minutes / 2


def make_plan(budget_minutes: float, seeds: int, quick: bool) -> DemoPlan:
    """Share ``budget_minutes`` between world making, training and evaluation."""
    if quick:
        return DemoPlan(dialogues=300, train_minutes=max(0.3, budget_minutes * 0.35), eval_samples=40,
                        seeds=list(range(max(1, seeds))), diffusion_steps=10, quick=True)
    # World and probe take about half a minute, evaluation about three minutes (2 models, 3 seeds).
    train = max(1.0, budget_minutes * 0.8 - 1.0)
    return DemoPlan(dialogues=2000, train_minutes=train, eval_samples=0,
                    seeds=list(range(max(1, seeds))), diffusion_steps=20, quick=False)
