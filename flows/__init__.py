"""Prefect flows: one job per file."""
