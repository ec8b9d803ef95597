"""Temporal workflows; the registry the worker uses is workflows.registry."""
