"""Bulk: many prompts (--map, pacing, the row cache, batch jobs, progress)."""
