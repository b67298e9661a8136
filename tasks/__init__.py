"""Prefect tasks: thin wrappers (retries, logging, artifacts) around pingan's functions."""
