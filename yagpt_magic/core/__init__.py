"""Core: threads, turn costs, fitting, models, settings, the session, errors; no IPython."""

#: The package's version; here, at the top of the layers, so every layer can record it.
__version__ = "0.1.0"
