"""Core: threads, turn costs, fitting, models, settings, the session, errors; no IPython."""
