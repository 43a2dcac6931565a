"""``photodialog bench chat``: one chat turn of a checkpoint, piece by piece and whole.

* time to first token: the prompt (perceptron on the context photos + embeddings) and one
  generated token;
* tokens/s with and without the KV cache, generating exactly ``new_tokens`` tokens (the end
  token is held back), overall and for the decode phase alone. Both use the same greedy loop
  (``greedy_tokens``), one feeding the cache, one re-running the whole sequence each step
  (checked to give the same tokens): with ``inputs_embeds``, ``generate(use_cache=False)`` of
  transformers 5.24 still decodes with a cache (it feeds the model one new token per step), so
  it is no no-cache baseline. The production path (``generate`` with the cache, as
  ``Responder`` runs it) is timed as well;
* diffusion: one photo at ``diffusion_steps`` and at 1 step, giving the time per step and the
  fixed cost (text encoding, VAE decoding);
* the whole turn as ``DialogueSystem.reply`` runs it (it stops at the end token, and draws only
  if the model shares a photo), and a composed turn that writes ``new_tokens`` and draws one photo.

Without ``--checkpoint`` a tiny end-to-end model is trained for 2 steps in a temporary folder.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from photodialog.bench.machine import describe_machine, load_average
from photodialog.bench.results import ms
from photodialog.bench.timing import measure
from photodialog.bench.tiny_setup import make_world
from photodialog.config import load_config
from photodialog.data.samples import build_samples
from photodialog.data.schema import Turn
from photodialog.errors import UserError
from photodialog.models.adapters import count_parameters
from photodialog.models.generation_settings import GenerationSettings
from photodialog.system import load_system
from photodialog.training.data import load_split
from photodialog.training.trainer import Trainer

TINY_RUN_OVERRIDES = [
    "max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]
FALLBACK_CAPTION = "a red car at the beach"


@dataclass
class ChatBenchSettings:
    checkpoint: str | None = None
    new_tokens: int = 30
    diffusion_steps: int = 20
    repeats: int = 3
    device: str = "cpu"


def train_tiny_checkpoint(folder: Path) -> Path:
    """A tiny end-to-end run trained for 2 steps (a real checkpoint, as the tests make one)."""
    world = make_world(folder)
    config = load_config("tiny-e2e", [f"data.path={world}", *TINY_RUN_OVERRIDES])
    train_log = logging.getLogger("photodialog.train")
    level = train_log.level
    train_log.setLevel(logging.WARNING)  # the benchmark's own output only
    try:
        return Trainer(config, folder / "run", progress=False).run().run_dir
    finally:
        train_log.setLevel(level)


def chat_history(system):
    """A context from the checkpoint's dataset that holds a photo with pixels, if there is one."""
    data = system.config.data
    for split in (data.dev_split, data.train_split):
        try:
            dialogues, _ = load_split(data, split)
        except (UserError, OSError):
            continue
        for sample in build_samples(dialogues):
            if any(p.path and Path(p.path).is_file() for turn in sample.context for p in turn.photos):
                return sample.context, sample.response.speaker
    return [Turn("0", "hi! how was your trip to the beach?"), Turn("1", "great, we drove the new car there")], "0"


def context_caption(history) -> str:
    return next((p.caption for turn in history for p in turn.photos if p.caption), FALLBACK_CAPTION)


class ChatTimer:
    """The measurements of one system on one context."""

    def __init__(self, system, history, speaker, settings: ChatBenchSettings):
        self.system, self.history, self.speaker, self.settings = system, history, speaker, settings
        self.responder = system.responder()
        self.tokenizer = system.model.tokenizer

    def generate(self, tokens: int):
        """The production path: ``generate`` with the KV cache, forced to ``tokens`` new tokens."""
        embeds, mask = self.responder.prompt_inputs([self.history], [self.speaker])
        return self.system.model.llm.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
            num_beams=1, use_cache=True, eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
        )

    def greedy(self, tokens: int, use_cache: bool) -> list[int]:
        embeds, mask = self.responder.prompt_inputs([self.history], [self.speaker])
        return greedy_tokens(self.system.model.llm, embeds, mask, tokens, use_cache=use_cache, banned=self.tokenizer.eos_token_id)

    def timing(self, fn, repeats: int | None = None):
        with torch.no_grad():
            return measure(fn, repeats=repeats or self.settings.repeats, warmup=1, device=self.settings.device)

    def text(self) -> dict:
        n = self.settings.new_tokens
        prompt = self.timing(lambda: self.responder.prompt_inputs([self.history], [self.speaker]))
        first = self.timing(lambda: self.generate(1))
        with torch.no_grad():
            produced = int(self.generate(n).shape[-1])
            same = self.greedy(n, True) == self.greedy(n, False)
        result = {"prompt": prompt.to_dict(), "time_to_first_token": first.to_dict(), "new_tokens": n, "tokens_generated": produced,
                  "cached_and_uncached_tokens_equal": same}
        runs = {"generate_with_kv_cache": lambda: self.generate(n), "with_kv_cache": lambda: self.greedy(n, True),
                "without_kv_cache": lambda: self.greedy(n, False)}
        for name, run in runs.items():
            whole = self.timing(run)
            decode = max(whole.median_ms - first.median_ms, 1e-9)
            result[name] = {"time": whole.to_dict(), "tokens_per_second": round(n / whole.median_ms * 1000, 2),
                            "decode_tokens_per_second": round((n - 1) / decode * 1000, 2) if n > 1 else None}
        result["kv_cache_speedup"] = round(result["without_kv_cache"]["time"]["median_ms"] / result["with_kv_cache"]["time"]["median_ms"], 3)
        return result

    def diffusion(self) -> dict:
        generator, steps = self.system.model.generator, self.settings.diffusion_steps
        caption = context_caption(self.history)
        full = self.timing(lambda: generator.generate([caption], steps=steps, guidance_scale=3.0))
        one = self.timing(lambda: generator.generate([caption], steps=1, guidance_scale=3.0))
        per_step = (full.median_ms - one.median_ms) / (steps - 1) if steps > 1 else one.median_ms
        return {"caption": caption, "steps": steps, "guidance_scale": 3.0, "image_size": generator.image_size,
                "per_photo": full.to_dict(), "one_step_photo": one.to_dict(), "per_step_ms": round(per_step, 4),
                "fixed_cost_ms": round(one.median_ms - per_step, 4)}

    def turn(self) -> dict:
        settings = GenerationSettings(max_new_tokens=self.settings.new_tokens, diffusion_steps=self.settings.diffusion_steps)
        reply = self.system.reply(self.history, self.speaker, settings)
        timing = self.timing(lambda: self.system.reply(self.history, self.speaker, settings))
        return {"time": timing.to_dict(), "photos_drawn": len(reply.photos), "reply_words": len(reply.text.split())}


def greedy_tokens(llm, embeds: torch.Tensor, mask: torch.Tensor, count: int, *, use_cache: bool, banned: int | None = None) -> list[int]:
    """``count`` greedy tokens for one prompt (batch of 1), with or without the KV cache.

    ``banned`` (the end token) is never chosen, so that exactly ``count`` tokens are made.
    """
    table = llm.get_input_embeddings()
    inputs, past, tokens = embeds, None, []
    for _ in range(count):
        out = llm(inputs_embeds=inputs, attention_mask=mask, cache=past, use_cache=use_cache)
        logits = out.logits[:, -1].float()
        if banned is not None:
            logits[:, banned] = float("-inf")
        token = logits.argmax(-1)
        tokens.append(int(token))
        step = table(token)[:, None].to(embeds.dtype)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        if use_cache:
            inputs, past = step, out.cache  # only the new token; the cache holds the rest
        else:
            inputs = torch.cat([inputs, step], dim=1)  # the whole sequence again
    return tokens


def run_chat_bench(settings: ChatBenchSettings) -> dict:
    started = time.perf_counter()
    machine = describe_machine(settings.device)
    with tempfile.TemporaryDirectory(prefix="photodialog-bench-") as tmp:
        source = settings.checkpoint or train_tiny_checkpoint(Path(tmp))
        system = load_system(source, settings.device)
        history, speaker = chat_history(system)
        timer = ChatTimer(system, history, speaker, settings)
        result = {"benchmark": "chat", "machine": machine, "settings": asdict(settings),
                  "checkpoint": str(system.checkpoint) if settings.checkpoint else "tiny-e2e trained 2 steps (temporary)",
                  "parameters": count_parameters(system.model)[1],
                  "context": {"turns": len(history), "photos": sum(len(t.photos) for t in history)}}
        result["text"] = timer.text()
        if system.model.generator is not None:
            result["diffusion"] = timer.diffusion()
        result["turn"] = timer.turn()
    result["composed_turn_with_one_photo_ms"] = round(
        result["text"]["generate_with_kv_cache"]["time"]["median_ms"] + result.get("diffusion", {}).get("per_photo", {}).get("median_ms", 0.0), 4)
    result["load_average_at_end"] = load_average()
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def summary_lines(result: dict) -> list[str]:
    text = result["text"]
    lines = [
        f"chat turn ({result['machine']['device']}, {result['machine']['torch_threads']} threads), {result['parameters']:,} parameters, "
        f"context of {result['context']['turns']} turns with {result['context']['photos']} photos",
        f"time to first token: {ms(text['time_to_first_token']['median_ms'])} (prompt alone {ms(text['prompt']['median_ms'])})",
        f"{text['new_tokens']} tokens, greedy loop with KV cache: {text['with_kv_cache']['tokens_per_second']} tok/s "
        f"(decode {text['with_kv_cache']['decode_tokens_per_second']} tok/s); without: {text['without_kv_cache']['tokens_per_second']} tok/s "
        f"(cache speedup {text['kv_cache_speedup']}x); generate() with cache: {text['generate_with_kv_cache']['tokens_per_second']} tok/s",
    ]
    if "diffusion" in result:
        d = result["diffusion"]
        lines.append(f"diffusion at {d['image_size']} px: {ms(d['per_photo']['median_ms'])} per photo ({d['steps']} steps), "
                     f"{ms(d['per_step_ms'])} per step, fixed {ms(d['fixed_cost_ms'])}")
    lines.append(f"whole reply(): {ms(result['turn']['time']['median_ms'])} ({result['turn']['photos_drawn']} photos drawn); "
                 f"composed turn with {text['new_tokens']} tokens and one photo: {ms(result['composed_turn_with_one_photo_ms'])}")
    lines.append(f"took {result['wall_seconds']} s")
    return lines
