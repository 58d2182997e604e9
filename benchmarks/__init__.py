"""Benchmarks of what pytest-nni-docker adds to the time NNI needs. Start with ``python -m benchmarks.run``."""
