"""LLM backends, each behind a `mode`, imported lazily."""
