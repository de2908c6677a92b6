"""Day 1 written by hand, plain style: explicit loops and early returns."""


def pair_counts(ids):
    result = {}
    position = 0
    while position + 1 < len(ids):
        key = (ids[position], ids[position + 1])
        if key in result:
            result[key] += 1
        else:
            result[key] = 1
        position += 1
    return result


def merge(ids, pair, new_id):
    first, second = pair
    merged = []
    skip = False
    for position, token in enumerate(ids):
        if skip:
            skip = False
            continue
        is_last = position == len(ids) - 1
        if not is_last and token == first and ids[position + 1] == second:
            merged.append(new_id)
            skip = True
        else:
            merged.append(token)
    return merged
