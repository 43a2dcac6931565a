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

from photodialog.demo.arms import DEFAULT_ARMS, REFERENCE

# The one question, fixed before anything trains (written into plan.json, judged in summary.json):
# does an arm's bridge make the photo the bot shares, drawn from its own caption, show the gold
# photo's colour, which half of the gold captions leave out? Counted over every gold photo turn.
PRIMARY_METRIC = "photo_match_colour"
ALSO_REPORTED = "photo_match_all"  # the same, all three attributes: reported beside it, no verdict of its own
SECONDARY_METRIC = "caption_acc_colour"  # the mechanism: the LLM's own caption names the photo's colour
FAMILY_LEVEL = 0.05
# The spread (sd) of the primary endpoint's per-seed difference (an arm minus no-bridge), percentage
# points, pooled over a pilot's contrasts (docs/demo/pilot.json: 2 seeds): what the seed count is
# chosen from. With 4 seeds and 3 contrasts it gives a detectable difference of about 9 points.
PILOT_SD = 3.2
FINETUNE_STEPS = 120
DEFAULT_SEEDS = 4  # training seeds per arm (the power statement in the report says what they can detect)


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
    omit_colour: float = 0.5
    """The fraction of gold captions that leave the colour out (``data synth --omit-colour``)."""
    quick: bool = False
    primary_endpoint: dict = field(default_factory=dict)
    """What is judged, how, and what the run can detect (``primary_endpoint``)."""

    def __post_init__(self) -> None:
        if not self.primary_endpoint:
            self.primary_endpoint = primary_endpoint(self.arms, len(self.seeds))

    def as_dict(self) -> dict:
        return asdict(self)


# What one unit of work took on an idle 2-core AMD EPYC (one thread each): only for the time the demo
# announces before it starts; no budget depends on it.
SECONDS_PER_STEP = 0.75
SECONDS_PER_EVAL = 30.0  # one model on the test split
SECONDS_WORLD = 35.0


def expected_minutes(plan: DemoPlan, lanes: int = 2) -> float:
    """About how long ``plan`` takes on an idle machine with ``lanes`` cores (the demo says it first)."""
    runs = len(plan.arms) * len(plan.seeds)
    eval_seconds = SECONDS_PER_EVAL * (plan.eval_samples / 1200 if plan.eval_samples else 1.0)
    return (SECONDS_WORLD + runs * (plan.finetune_steps * SECONDS_PER_STEP + 12) / lanes + runs * eval_seconds / lanes) / 60


def primary_endpoint(arms: list[str], seeds: int) -> dict:
    """The pre-registered primary endpoint of a plan with ``arms`` and ``seeds`` training seeds."""
    # numbers, never minutes: the stats module is light
    from photodialog.demo.intervals import detectable_difference

    contrasts = max(1, len([a for a in arms if a != REFERENCE]))
    detectable = detectable_difference(PILOT_SD, seeds, contrasts, FAMILY_LEVEL)
    return {
        "metric": PRIMARY_METRIC,
        "meaning": "% of gold photo turns at which the photo the model shares, drawn from its own caption, shows "
                   "the gold photo's colour (the attribute half of the gold captions leave out), read by the "
                   "world's probe; a turn where it shares no photo counts as a miss",
        "also_reported": ALSO_REPORTED, "secondary": SECONDARY_METRIC,
        "reference": REFERENCE, "contrasts": contrasts,
        "test": f"paired t-test over training seeds of (arm - {REFERENCE}), Holm's correction over the "
                f"{contrasts} contrast(s), family-wise level {FAMILY_LEVEL}",
        "pilot_sd": PILOT_SD,
        "detectable_difference": round(detectable, 1) if detectable != float("inf") else None,
        "power": 0.8,
    }


def make_plan(seeds: int, arms: list[str], quick: bool) -> DemoPlan:
    """The default plan (or ``--quick``: a smoke run of every stage, too small to show anything)."""
    if quick:
        return DemoPlan(dialogues=300, seeds=list(range(seeds)), arms=arms, finetune_steps=12,
                        eval_samples=24, probe_epochs=3, quick=True)
    return DemoPlan(dialogues=2000, seeds=list(range(seeds)), arms=arms, finetune_steps=FINETUNE_STEPS,
                    eval_samples=0)
