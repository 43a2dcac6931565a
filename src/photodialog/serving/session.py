"""One conversation: its history, the photos it wrote, and its export to PhotoChat's format.

A session owns a folder (``out_dir``). Its photos lie in ``out_dir/photos/`` under names it
chooses (``user-001.png``, ``bot-001.png``), and ``save`` writes the dialogue to
``out_dir/dialogue.json`` unless the caller gives another path: nothing a person sends becomes
part of a path. A user photo is saved re-encoded from its decoded pixels, so the copy is a plain PNG
whatever was uploaded (and carries none of the original's metadata).
"""

from __future__ import annotations

import copy
from pathlib import Path

from photodialog.data.schema import Photo, Turn, photo_turn_text
from photodialog.models.generation import Reply
from photodialog.serving import BOT, USER
from photodialog.serving.photochat_export import write_dialogue

PHOTO_DIR = "photos"
USER_PHOTO_CAPTION = "a photo"  # neutral: the model perceives the pixels, this text is only a fallback
DIALOGUE_FILE = "dialogue.json"


class ChatSession:
    """The history of one conversation between a person (``USER``) and the model (``BOT``)."""

    def __init__(self, out_dir: str | Path, history: list[Turn] | None = None, dialogue_id: str | None = None):
        self.out_dir = Path(out_dir)
        self.dialogue_id = dialogue_id or self.out_dir.name
        self.history: list[Turn] = list(history or [])
        self._photo_counts = {USER: 0, BOT: 0}  # kept across reset(): earlier files are never overwritten

    # ------------------------------------------------------------ turns

    def add_user_message(self, text: str, images: list) -> Turn:
        """Append what the person said (checked text, decoded PIL images); returns their turn.

        A message right after another of the person's (the model said nothing in between) joins
        it, as consecutive messages of one speaker do in the datasets.
        """
        photos = [self.save_photo(image, USER) for image in images]
        pieces = [text] if text else []
        pieces += [photo_turn_text(photo.caption) for photo in photos]
        return self._append(Turn(USER, " ".join(pieces), photos))

    def add_reply(self, reply: Reply) -> list[Path]:
        """Append the model's reply, saving its photos; returns their files (in caption order)."""
        photos = [self.save_photo(image, BOT, caption) for image, caption in zip(reply.photos, reply.captions)]
        if reply.text.strip():  # an empty reply is no turn, as an empty message is none in the datasets
            self._append(Turn(BOT, reply.text, photos))
        return [Path(photo.path) for photo in photos]

    def _append(self, turn: Turn) -> Turn:
        if self.history and self.history[-1].speaker == turn.speaker:
            last = self.history[-1]
            last.text = f"{last.text} {turn.text}".strip()
            last.photos.extend(turn.photos)
            return last
        self.history.append(turn)
        return turn

    def save_photo(self, image, speaker: str, caption: str = USER_PHOTO_CAPTION) -> Photo:
        """Write ``image`` as a new PNG in the session's photo folder; returns it as a ``Photo``."""
        self._photo_counts[speaker] += 1
        stem = f"{'user' if speaker == USER else 'bot'}-{self._photo_counts[speaker]:03d}"
        path = self.out_dir / PHOTO_DIR / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
        return Photo(caption=caption, path=str(path.absolute()), photo_id=stem)

    # ------------------------------------------------------------ state

    def snapshot(self) -> list[Turn]:
        """A copy of the history, for ``restore`` when a reply fails half-way."""
        return copy.deepcopy(self.history)

    def restore(self, history: list[Turn]) -> None:
        self.history = history

    def reset(self) -> None:
        """Start a new conversation (photo files already written stay where they are)."""
        self.history = []

    def save(self, path: str | Path | None = None) -> Path:
        """Write the conversation in PhotoChat's format (default: ``out_dir/dialogue.json``)."""
        return write_dialogue(path or self.out_dir / DIALOGUE_FILE, self.history, self.dialogue_id)
