"""Deployments built from the catalog, and the serve entry point of the main job."""
