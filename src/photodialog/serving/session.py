"""One conversation: its history, the photos it wrote, and its export to PhotoChat's format.

A session owns a folder (``out_dir``). Its photos lie in ``out_dir/photos/`` under names it
chooses (``user-001.png``, ``bot-001.png``), each created exclusively with the lowest number no
file has: a reused folder (a saved chat continued with the same ``--out``) keeps every earlier
photo. ``save`` writes the dialogue to a new ``dialogue.json`` (or ``dialogue-002.json``, ...)
in ``out_dir`` unless the caller names a file; nothing a person sends becomes part of a path.
A user photo is saved re-encoded from its decoded pixels, so the copy is a plain PNG whatever
was uploaded (and carries none of the original's metadata).

A photo of the model that cannot be written (disk full, folder removed) does not cost the
reply: the turn keeps it as its caption, and ``take_write_problems`` says what was not written.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from photodialog.data.schema import Photo, Turn, photo_turn_text
from photodialog.errors import UserError
from photodialog.models.generation import Reply
from photodialog.output_files import new_file, reason
from photodialog.serving import BOT, USER
from photodialog.serving.photochat_export import write_dialogue

PHOTO_DIR = "photos"
USER_PHOTO_CAPTION = "a photo"  # neutral: the model perceives the pixels, this text is only a fallback
DIALOGUE_FILE = "dialogue.json"
_NUMBER = re.compile(r"-(\d+)$")


class ChatSession:
    """The history of one conversation between a person (``USER``) and the model (``BOT``)."""

    def __init__(self, out_dir: str | Path, history: list[Turn] | None = None, dialogue_id: str | None = None):
        self.out_dir = Path(out_dir)
        self.dialogue_id = dialogue_id or self.out_dir.name
        self.history: list[Turn] = list(history or [])
        # The next number to try per speaker, kept across reset(): earlier files are never overwritten.
        self._next_number = {USER: 1, BOT: 1}
        self._dialogue_files: dict[Path, Path] = {}  # folder -> the dialogue file this session created there
        self._write_problems: list[str] = []

    @property
    def photo_dir(self) -> Path:
        return self.out_dir / PHOTO_DIR

    @property
    def photo_count(self) -> int:
        """Photos with a file in the history (each reply perceives all of them)."""
        return sum(1 for turn in self.history for photo in turn.photos if photo.path)

    # ------------------------------------------------------------ turns

    def add_user_message(self, text: str, images: list) -> Turn:
        """Append what the person said (checked text, decoded PIL images); returns their turn.

        A message right after another of the person's (the model said nothing in between) joins
        it, as consecutive messages of one speaker do in the datasets. Raises ``UserError``
        when a photo cannot be written; the history is then unchanged and no file is left.
        """
        photos: list[Photo] = []
        try:
            for image in images:
                photos.append(self.save_photo(image, USER))
        except OSError as err:
            for photo in photos:
                Path(photo.path).unlink(missing_ok=True)
            raise UserError(f"could not save your photo in {self.photo_dir}: {reason(err)}; the message was not "
                            "sent and the conversation is kept (free some space, or restart with another --out)") from None
        pieces = [text] if text else []
        pieces += [photo_turn_text(photo.caption) for photo in photos]
        return self._append(Turn(USER, " ".join(pieces), photos))

    def add_reply(self, reply: Reply) -> list[Path | None]:
        """Append the model's reply, saving its photos; returns their files in caption order.

        A photo that cannot be written is None in the list and stays in the turn as its
        caption (``take_write_problems`` says why), so the reply is never lost.
        """
        photos = [self._reply_photo(image, caption) for image, caption in zip(reply.photos, reply.captions)]
        if reply.text.strip():  # an empty reply is no turn, as an empty message is none in the datasets
            self._append(Turn(BOT, reply.text, photos))
        return [Path(photo.path) if photo.path else None for photo in photos]

    def _reply_photo(self, image, caption: str) -> Photo:
        try:
            return self.save_photo(image, BOT, caption)
        except OSError as err:
            self._write_problems.append(f"could not save the model's photo ({caption}) in {self.photo_dir}: {reason(err)}")
            return Photo(caption=caption)

    def take_write_problems(self) -> list[str]:
        """What could not be written since the last call (then forgotten)."""
        problems, self._write_problems = self._write_problems, []
        return problems

    def _append(self, turn: Turn) -> Turn:
        if self.history and self.history[-1].speaker == turn.speaker:
            last = self.history[-1]
            last.text = f"{last.text} {turn.text}".strip()
            last.photos.extend(turn.photos)
            return last
        self.history.append(turn)
        return turn

    def save_photo(self, image, speaker: str, caption: str = USER_PHOTO_CAPTION) -> Photo:
        """Write ``image`` as a new PNG in the session's photo folder; returns it as a ``Photo``.

        The name is the speaker's lowest free number (``user-004.png``), created exclusively:
        no file is ever replaced. Raises ``OSError`` when it cannot be written (no file is left).
        """
        self.photo_dir.mkdir(parents=True, exist_ok=True)
        path, file = new_file(self.photo_dir, "user" if speaker == USER else "bot", ".png",
                              first=self._next_number[speaker])
        try:
            with file:
                image.save(file, format="PNG")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._next_number[speaker] = int(_NUMBER.search(path.stem).group(1)) + 1
        return Photo(caption=caption, path=str(path.absolute()), photo_id=path.stem)

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
        """Write the conversation in PhotoChat's format; returns the file.

        ``path``: a file (replaced if it exists: the person named it), a folder, or None for
        ``out_dir``. In a folder the dialogue goes to a file this session creates there
        (``dialogue.json``, or ``dialogue-002.json``, ... when that exists) and saves again
        to the same file. Photo paths in the file are relative to its folder. Raises
        ``UserError`` when it cannot be written, leaving no file behind.
        """
        target = Path(path) if path is not None else self.out_dir
        fresh = False  # whether this call created the file (then a failure removes it)
        try:
            if path is None or target.is_dir():
                fresh = target not in self._dialogue_files
                file = self._dialogue_file(target)
            else:
                file = target
            return write_dialogue(file, self.history, self.dialogue_id)
        except OSError as err:
            if fresh and target in self._dialogue_files:
                self._dialogue_files.pop(target).unlink(missing_ok=True)
            raise UserError(f"could not save the dialogue to {target}: {reason(err)}; the conversation is "
                            "kept: save it somewhere else (e.g. /save ~/dialogue.json)") from None

    def _dialogue_file(self, folder: Path) -> Path:
        """The file this session created in ``folder`` for its dialogue (created now the first time)."""
        if folder not in self._dialogue_files:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with open(folder / DIALOGUE_FILE, "xb"):
                    path = folder / DIALOGUE_FILE
            except FileExistsError:
                path, file = new_file(folder, Path(DIALOGUE_FILE).stem, Path(DIALOGUE_FILE).suffix, first=2)
                file.close()
            self._dialogue_files[folder] = path
        return self._dialogue_files[folder]
