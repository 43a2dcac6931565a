"""A trained tiny run loads back as a dialogue system that sees photos and answers."""

from __future__ import annotations

import torch

from photodialog.data.photos import load_photo
from photodialog.data.schema import Photo, Turn
from photodialog.models.generation_settings import GenerationSettings
from photodialog.system import load_system


def _world_photos(world) -> list[str]:
    return [str(p) for p in sorted((world / "photos" / "train").glob("*.png"))]


def _world_photo(world) -> str:
    return _world_photos(world)[0]


def _pixels(system, path: str) -> torch.Tensor:
    """What the perceptron is given for the photo at ``path``: [1, 3, S, S]."""
    return system.model.perceptron.preprocess([load_photo(path)])


def test_checkpoint_loads_and_replies(tiny_run, tiny_world, monkeypatch):
    system = load_system(tiny_run)
    path = _world_photo(tiny_world)
    history = [Turn("0", "hi! look at this [IMG] a red car at the beach [/IMG]", [Photo("a red car at the beach", path=path)])]
    # Record what the perceptron is shown while the system replies.
    seen: list[torch.Tensor] = []
    perceptron_forward = system.model.perceptron.forward

    def recording_forward(pixels):
        seen.append(pixels.detach().cpu())
        return perceptron_forward(pixels)

    monkeypatch.setattr(system.model.perceptron, "forward", recording_forward)
    reply = system.reply(history, "1", GenerationSettings(max_new_tokens=8, diffusion_steps=2))
    assert isinstance(reply.text, str)
    assert len(reply.photos) == len(reply.captions)
    # It saw the context photo: the perceptron got exactly that photo's pixels, once.
    assert len(seen) == 1
    assert torch.allclose(seen[0], _pixels(system, path), atol=1e-6)


def test_context_photo_embeddings_reach_the_llm_input(tiny_run, tiny_world):
    system = load_system(tiny_run)
    photo = Photo("a red car at the beach", path=_world_photo(tiny_world))
    history = [Turn("0", "look [IMG] a red car at the beach [/IMG]", [photo])]
    responder = system.responder()
    with_photo, _ = responder.prompt_inputs([history], ["1"])
    slots = system.model.perceptron.num_query_tokens
    ids, slot_positions, photos, _ = system.formatter.encode_prompt(history, "1")
    assert len(slot_positions) == slots and photos == [photo]
    visual = system.model.perceptron(_pixels(system, photo.path))
    assert torch.allclose(with_photo[0, slot_positions], visual[0], atol=1e-5)

    # Another photo under the same text: a prompt of the same length whose slot embeddings, and
    # only those, change with the photo.
    other_path = next(p for p in _world_photos(tiny_world) if not torch.equal(_pixels(system, p), _pixels(system, photo.path)))
    other = [Turn("0", history[0].text, [Photo(photo.caption, path=other_path)])]
    with_other, _ = responder.prompt_inputs([other], ["1"])
    assert with_other.shape == with_photo.shape
    is_slot = torch.zeros(with_photo.shape[1], dtype=torch.bool)
    is_slot[slot_positions] = True
    assert torch.equal(with_other[0, ~is_slot], with_photo[0, ~is_slot])
    assert not torch.allclose(with_other[0, is_slot], with_photo[0, is_slot])

    # Without the photo's pixels the model is given its caption text instead: no slots, the caption's tokens.
    blind = [Turn("0", history[0].text, [Photo("a red car at the beach")])]
    blind_ids, blind_slots, blind_photos, _ = system.formatter.encode_prompt(blind, "1")
    assert blind_slots == [] and blind_photos == []
    caption_ids = system.model.tokenizer("a red car at the beach", add_special_tokens=False).input_ids
    assert any(blind_ids[i:i + len(caption_ids)] == caption_ids for i in range(len(blind_ids)))
    without, _ = responder.prompt_inputs([blind], ["1"])
    assert without.shape[1] == len(blind_ids)
