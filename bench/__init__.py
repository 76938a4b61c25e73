"""Benchmarks of the model registry (`make bench`, or `python -m bench [--quick]`).

Every figure is measured next to its own baseline in the same run and reported as a ratio, so that
a noisy machine moves both sides together. The last line of stdout is one JSON object.
"""
