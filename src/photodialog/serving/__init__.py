"""Chatting with a trained checkpoint: in a terminal (``photodialog chat``) or a web page (``serve``).

The parts, each usable on its own:

- ``engine.py``: one loaded ``DialogueSystem`` shared by every conversation, generation behind a
  lock, reply text streamed as it is generated;
- ``session.py``: one conversation: its history, the photos it wrote (under its own folder, with
  names it chooses), export to PhotoChat's published format;
- ``limits.py``: checks on what a user sends (photo files, message length);
- ``history.py``: reading a saved dialogue back as history (``chat --history``);
- ``photochat_export.py``: a conversation as a PhotoChat record;
- ``terminal.py`` and ``web.py``: the two front ends.

Serving does not depend on how the model works inside. From the model it uses a loaded
``DialogueSystem`` (its ``reply`` and, to stream text, its tokenizer), ``GenerationSettings``
with ``check_settings``, and ``Reply``; from the data side the dialogue schema, ``load_photo``
and, to read a saved dialogue back, the PhotoChat loaders (``data.photochat``, ``data.loading``,
``data.layout``); to write a file atomically, ``evaluation.eval_files.write_text``.
"""

USER = "0"  # PhotoChat's user_id of the person chatting
BOT = "1"  # ... and of the model
