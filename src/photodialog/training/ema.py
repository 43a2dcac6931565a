"""An exponential moving average of the trainable weights, used for inference when kept.

Diffusion models sample far better from averaged weights than from the last noisy update
(standard since DDPM); with a high learning rate and a short run, as in the tiny recipes, the
difference is large. The average lives beside the model, is saved with every checkpoint
(``ema.safetensors``) and restored by ``--resume``; ``load_system`` loads it instead of the last
weights when the checkpoint has one.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch



class WeightAverage:
    """``avg <- decay * avg + (1 - decay) * w`` after every optimizer step, with a warm start:
    the effective decay is ``min(decay, (1 + step) / (10 + step))`` so early weights fade fast."""

    def __init__(self, named_parameters: dict[str, torch.nn.Parameter], decay: float):
        self.decay = decay
        self.parameters = named_parameters
        self.average = {name: p.detach().clone().float() for name, p in named_parameters.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average: avg = d * avg + (1 - d) * w, with the decay warmed
        up as d = min(decay, (1 + n) / (10 + n)) after n updates.
        """
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        names = list(self.average)
        averages = [self.average[n] for n in names]
        current = [self.parameters[n].detach().float() for n in names]
        torch._foreach_mul_(averages, decay)
        torch._foreach_add_(averages, current, alpha=1 - decay)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights by name, with the update count (saved as ``ema.safetensors``)."""
        return {**self.average, "__updates__": torch.tensor(self.updates)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average and its update count from ``state`` (what ``state()`` returned)."""
        self.updates = int(state.pop("__updates__", torch.tensor(0)))
        for name, value in state.items():
            self.average[name].copy_(value)

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the model for the duration (e.g. a dev evaluation)."""
        saved = {name: p.detach().clone() for name, p in self.parameters.items()}
        with torch.no_grad():
            for name, p in self.parameters.items():
                p.copy_(self.average[name].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.parameters.items():
                    p.copy_(saved[name])
