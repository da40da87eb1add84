"""The dpone example as a `dg` project (docs/dagster-components.md)."""
