"""Day 1 written by hand, terse style: library helpers and comprehensions."""
from collections import defaultdict


def pair_counts(ids):
    counter = defaultdict(int)
    for left, right in zip(ids[:-1], ids[1:]):
        counter[left, right] += 1
    return dict(counter)


def merge(ids, pair, new_id):
    out = list(ids)
    j = 0
    while j < len(out) - 1:
        if tuple(out[j:j + 2]) == tuple(pair):
            out[j:j + 2] = [new_id]
        j += 1
    return out
