"""Benchmarks (`make bench`): engine and API figures with their ratio to raw-SQL floors."""
