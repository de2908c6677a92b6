"""Day 3 written by hand, plain style."""


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    n = x.shape[-1]
    mu = x.sum(dim=-1, keepdim=True) / n
    centred = x - mu
    variance = (centred * centred).sum(dim=-1, keepdim=True) / n
    out = centred / (variance + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def rms_norm(x, weight=None, eps=1e-6):
    n = x.shape[-1]
    mean_square = (x * x).sum(dim=-1, keepdim=True) / n
    out = x / (mean_square + eps).sqrt()
    if weight is not None:
        out = out * weight
    return out
