"""tests/schedule.py: the long files come first, longest first, and the order of the rest is kept."""

import random
from types import SimpleNamespace

from schedule import LONG_FILES, file_weight, longest_files_first


def test_longest_files_first_keeps_the_rest_in_order():
    rng = random.Random(3)
    names = list(LONG_FILES) + [f"test_short_{k}.py" for k in range(12)]
    items = [SimpleNamespace(path=f"/repo/tests/{name}", test=k) for name in names for k in range(3)]
    rng.shuffle(items)
    short_before = [item for item in items if file_weight(str(item.path)) == 0]
    longest_files_first(items)
    weights = [file_weight(str(item.path)) for item in items]
    assert weights == sorted(weights, reverse=True)
    first_two = {items[0].path.rsplit("/", 1)[1], items[3].path.rsplit("/", 1)[1]}
    assert first_two == {"test_real_course_a.py", "test_real_course_b.py"}  # one half to each worker at the start
    assert [item for item in items if file_weight(str(item.path)) == 0] == short_before
