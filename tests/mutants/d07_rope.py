"""Planted mistakes for 07_rope."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="sinusoidal_positions", old="pe[:, 0::2] = torch.sin(angles)\n    pe[:, 1::2] = torch.cos(angles)",
           new="pe[:, 0::2] = torch.cos(angles)\n    pe[:, 1::2] = torch.sin(angles)",
           fails={"test_sinusoidal_positions"}, why="cos on even channels, sin on odd", hint="sin on even channels, cos on odd"),
    Mutant(cell="sinusoidal_positions", old="torch.arange(0, d_model, 2, dtype=torch.float64) / d_model",
           new="torch.arange(0, d_model // 2, dtype=torch.float64) / d_model",
           fails={"test_sinusoidal_positions"}, why="exponent i/d instead of 2i/d", hint="omega_i = 10000^(-2i/d)"),
    Mutant(cell="rope", old="x_even, x_odd = x[..., 0::2], x[..., 1::2]",
           new="x_even, x_odd = x[..., : D // 2], x[..., D // 2 :]",
           fails={"test_rope"}, why="reads the pairs (i, i + D/2) but writes them back interleaved", hint="you read the pairs as (i, i + D/2) but wrote them back"),
    Mutant(cell="rope", old="""    x_even, x_odd = x[..., 0::2], x[..., 1::2]                                 # (..., T, D/2) each
    y_even = x_even * cos - x_odd * sin
    y_odd = x_even * sin + x_odd * cos
    return torch.stack([y_even, y_odd], dim=-1).reshape(x.shape)               # (..., T, D/2, 2) -> (..., T, D)""",
           new="""    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)""",
           fails={"test_rope"}, why="the half-split convention (GPT-NeoX, HF Llama): pairs (i, i + D/2)", hint="you paired channel i with i + D/2"),
    Mutant(cell="rope", old="y_even = x_even * cos - x_odd * sin", new="y_even = x_even * cos + x_odd * sin",
           fails={"test_rope"}, why="wrong sign: not a rotation", hint="check the signs of the sin terms"),
    Mutant(cell="rope", old="    if positions is None:\n        positions = torch.arange(T)\n",
           new="    positions = torch.arange(T)\n",
           fails={"test_rope"}, why="ignores the positions argument", hint="use the positions argument"),
    Mutant(cell="rope_score", old="return (real * cos - imag * sin).sum(dim=-1)",
           new="return (real * cos + imag * sin).sum(dim=-1)",
           fails={"test_rope_score"}, why="uses n - m instead of m - n", hint="the sign of the distance is reversed"),
    Mutant(cell="rope_score", old="imag = q_odd * k_even - q_even * k_odd", new="imag = 0.0 * q_odd",
           fails={"test_rope_score"}, why="keeps only the cosine terms", hint="you kept only the cosine terms"),
]
