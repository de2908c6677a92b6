"""The real course through the real pipeline, half A of its days (tests/real_course.py says how they split)."""

from real_course import define_tests

globals().update(define_tests(0))
