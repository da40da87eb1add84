"""Dagster integration for dpone: resource, asset factory, translator."""
