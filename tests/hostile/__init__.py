"""Hostile input through the real CLI: bounded, one line, contained."""
