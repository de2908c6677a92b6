"""Honest day-4 solutions written another way than the notebook's (loops, explicit sorting, no masked_fill)."""

import torch


def apply_temperature(logits, temperature):
    return torch.div(logits, temperature)


def top_k_filter(logits, k):
    """Threshold at the k-th largest via a full descending sort."""
    k = min(k, logits.shape[-1])
    threshold = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]  # (..., 1)
    return torch.where(logits >= threshold, logits, torch.full_like(logits, float("-inf")))


def top_p_filter(logits, p):
    """Row by row, in Python: walk the tokens from the most probable, keep while the mass above is < p."""
    flat = logits.reshape(-1, logits.shape[-1])  # (rows, V)
    out = torch.full_like(flat, float("-inf"))
    probs = torch.softmax(flat, dim=-1)
    for r in range(flat.shape[0]):
        above = 0.0
        for token in torch.argsort(flat[r], descending=True).tolist():
            if above >= p:
                break
            out[r, token] = flat[r, token]
            above += probs[r, token].item()
    return out.reshape(logits.shape)


def greedy(model, idx, max_new_tokens, eos_id=None):
    """Python lists per row; the model still sees the whole batch."""
    rows = [list(map(int, r)) for r in idx]
    finished = [False] * len(rows)
    for _ in range(max_new_tokens):
        if eos_id is not None and all(finished):
            break
        logits = model(torch.tensor(rows, dtype=idx.dtype))[:, -1, :]  # (B, V)
        for b, row in enumerate(rows):
            token = eos_id if finished[b] else int(torch.argmax(logits[b]))
            row.append(token)
            finished[b] = finished[b] or token == eos_id
    return torch.tensor(rows, dtype=idx.dtype)


def beam_search(model, idx, max_new_tokens, beam_size=4, length_penalty=1.0, eos_id=None):
    """Beams as (tokens, summed log-prob) pairs; the same ranking walk, written with a sorted list."""
    beams = [([], 0.0)]
    done = []
    for _ in range(max_new_tokens):
        batch = torch.cat([idx.repeat(len(beams), 1), torch.tensor([b[0] for b in beams], dtype=torch.long)
                           .reshape(len(beams), -1)], dim=1)  # (n_live, T + step)
        logp = torch.log_softmax(model(batch)[:, -1, :].double(), dim=-1)  # (n_live, V)
        scored = sorted(((beams[i][1] + logp[i, v].item(), i * logp.shape[1] + v, i, v)
                         for i in range(len(beams)) for v in range(logp.shape[1])),
                        key=lambda c: (-c[0], c[1]))
        nxt = []
        for total, _, i, v in scored:
            tokens = beams[i][0] + [v]
            if v == eos_id:
                done.append((tokens, total / len(tokens) ** length_penalty))
            else:
                nxt.append((tokens, total))
                if len(nxt) == beam_size:
                    break
        beams = nxt
    done += [(t, s / len(t) ** length_penalty) for t, s in beams if t]
    return sorted(done, key=lambda h: -h[1])[:beam_size]
