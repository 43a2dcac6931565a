"""A conversation as the messages of Gradio's ``Chatbot``: text with the photos where they were shared.

Each turn is one message whose content is a list of text pieces and photo files, in the order
of the turn's ``[IMG] caption [/IMG]`` spans; the model's photos are followed by their caption.
A span without a file (a photo that was not drawn, or one known only by its caption) shows as
its caption in brackets.
"""

from __future__ import annotations

from photodialog.data.schema import PHOTO_SPAN, Turn
from photodialog.serving import USER

PENDING = "…"  # the bot's message while the reply has not started


def chat_messages(history: list[Turn], pending: str | None = None) -> list[dict]:
    """Chatbot messages for ``history``, plus the bot's unfinished reply when ``pending`` is given."""
    messages = [{"role": "user" if turn.speaker == USER else "assistant", "content": turn_content(turn)} for turn in history]
    if pending is not None:
        messages.append(pending_message(pending))
    return messages


def pending_message(text: str) -> dict:
    """The bot's unfinished reply: the text so far, or an ellipsis before the first word."""
    return {"role": "assistant", "content": text or PENDING}


def turn_content(turn: Turn) -> list:
    """Text pieces and ``{"path", "alt_text"}`` photo entries of one turn, in order."""
    content: list = []
    photos = iter(turn.photos)
    position = 0
    for span in PHOTO_SPAN.finditer(turn.text):
        _add_text(content, turn.text[position:span.start()])
        photo = next(photos, None)
        caption = span.group(1)
        if photo is not None and photo.path:
            content.append({"path": photo.path, "alt_text": caption})
            if turn.speaker != USER:  # what the model meant to draw; a user's photo has only a neutral caption
                content.append(f"*{caption}*")
        else:
            content.append(f"[photo: {caption}]")
        position = span.end()
    _add_text(content, turn.text[position:])
    return content


def _add_text(content: list, piece: str) -> None:
    if piece.strip():
        content.append(" ".join(piece.split()))
