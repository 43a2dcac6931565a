"""A trained tiny run loads back as a dialogue system that sees photos and answers."""

from __future__ import annotations

import torch

from photodialog.data.photos import load_photo
from photodialog.data.schema import Photo, Turn
from photodialog.models.generation import GenerationSettings
from photodialog.system import load_system


def _world_photo(world) -> str:
    return str(sorted((world / "photos" / "train").glob("*.png"))[0])


def test_checkpoint_loads_and_replies(tiny_run, tiny_world):
    system = load_system(tiny_run)
    history = [Turn("0", "hi! look at this [IMG] a red car at the beach [/IMG]", [Photo("a red car at the beach", path=_world_photo(tiny_world))])]
    reply = system.reply(history, "1", GenerationSettings(max_new_tokens=8, diffusion_steps=2))
    assert isinstance(reply.text, str)
    assert len(reply.photos) == len(reply.captions)


def test_context_photo_embeddings_reach_the_llm_input(tiny_run, tiny_world):
    system = load_system(tiny_run)
    photo = Photo("a red car at the beach", path=_world_photo(tiny_world))
    history = [Turn("0", "look [IMG] a red car at the beach [/IMG]", [photo])]
    responder = system.responder()
    with_photo, _ = responder.prompt_inputs([history], ["1"])
    slots = system.model.perceptron.num_query_tokens
    ids, slot_positions, photos, _ = system.formatter.encode_prompt(history, "1")
    assert len(slot_positions) == slots and photos == [photo]
    visual = system.model.perceptron(system.model.perceptron.preprocess([load_photo(photo.path)]))
    assert torch.allclose(with_photo[0, slot_positions], visual[0], atol=1e-5)
    # Without the photo's pixels the model is given its caption text instead: different input.
    blind = [Turn("0", history[0].text, [Photo("a red car at the beach")])]
    without, _ = responder.prompt_inputs([blind], ["1"])
    assert without.shape != with_photo.shape or not torch.allclose(without, with_photo)
