"""Benchmarks behind `python -m gptref bench NAME`: each module has add_arguments(parser) and run(args).

They report ratios against a peer measured in the same run (tokenizers, naive attention,
decoding without a cache, SDPA), never absolute pass/fail timings.
"""
