"""photodialog: photo-sharing multimodal dialogue generation, trained end to end.

The library is split by purpose (see docs/architecture.md):
``data`` (datasets to samples), ``models`` (the see-and-draw model and its parts),
``training``, ``evaluation``, ``baselines``, ``serving`` (chat and web page),
``bench`` and ``demo``; ``cli`` wires them to the ``photodialog`` command.
"""

__version__ = "0.1.0"

IMG_START = "[IMG]"
IMG_END = "[/IMG]"
