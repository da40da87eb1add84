"""The backend contract suite: every test runs against local files and against PostgreSQL."""
