"""The baselines of Table 2: the pipeline and Divter, trained apart and joined by caption text (``presets``)."""
