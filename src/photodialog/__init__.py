"""photodialog: photo-sharing multimodal dialogue generation, trained end to end.

The library (``data``: datasets to samples; ``models``: the see-and-draw model and its parts;
the top-level modules: config, registry, system, checkpoints...) imports none of the
applications on top of it: ``evaluation``, ``training`` (which may use evaluation; the
baselines too), ``serving`` (chat and web page), ``bench`` and ``demo``; ``cli`` wires them to
the ``photodialog`` command. Allowed values of every extension point are in ``registry``.
See docs/architecture.md.
"""

__version__ = "0.1.0"

IMG_START = "[IMG]"
IMG_END = "[/IMG]"
