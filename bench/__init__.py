"""Benchmarks: scripts that measure and print figures (never timed assertions in tests)."""
