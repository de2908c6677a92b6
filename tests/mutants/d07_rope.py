"""Planted mistakes for 07_rope."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="sinusoidal_positions", old="pe[:, 0::2] = torch.sin(angles)\n    pe[:, 1::2] = torch.cos(angles)",
           new="pe[:, 0::2] = torch.cos(angles)\n    pe[:, 1::2] = torch.sin(angles)",
           fails={"test_sinusoidal_positions"}, why="cos on even channels, sin on odd",
           hint="sin on even channels, cos on odd"),
    Mutant(cell="sinusoidal_positions", old="torch.arange(0, d_model, 2, dtype=torch.float64) / d_model",
           new="torch.arange(0, d_model // 2, dtype=torch.float64) / d_model",
           fails={"test_sinusoidal_positions"}, why="exponent i/d instead of 2i/d", hint="omega_i = 10000^(-2i/d)"),
    Mutant(cell="rope", old="x_even, x_odd = x[..., 0::2], x[..., 1::2]",
           new="x_even, x_odd = x[..., : D // 2], x[..., D // 2 :]",
           fails={"test_rope"}, why="reads the pairs (i, i + D/2) but writes them back interleaved",
           hint="you read the pairs as (i, i + D/2) but wrote them back"),
    Mutant(cell="rope",
           old=("    x_even, x_odd = x[..., 0::2], x[..., 1::2]                                 # (..., T, D/2) each\n"
                "    y_even = x_even * cos - x_odd * sin\n"
                "    y_odd = x_even * sin + x_odd * cos\n"
                "    return torch.stack([y_even, y_odd], dim=-1).reshape(x.shape)"
                "               # (..., T, D/2, 2) -> (..., T, D)"),
           new="""    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)""",
           fails={"test_rope"}, why="the half-split convention (GPT-NeoX, HF Llama): pairs (i, i + D/2)",
           hint="you paired channel i with i + D/2"),
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
    # common mistakes (gptref.grading.mistakes.d07_rope), named by the visible tests
    Mutant(cell="sinusoidal_positions", old="pe[:, 0::2] = torch.sin(angles)\n    pe[:, 1::2] = torch.cos(angles)",
           new="all_angles = p * 10000.0 ** (-torch.arange(d_model, dtype=torch.float64) / d_model)\n"
               "    pe[:, 0::2] = torch.sin(all_angles[:, 0::2])\n    pe[:, 1::2] = torch.cos(all_angles[:, 1::2])",
           fails={"test_sinusoidal_positions"}, why="each channel gets its own frequency 10000^(-j/d)",
           hint="channel 2i+1 no longer uses its pair's angle"),
    Mutant(cell="sinusoidal_positions", old="pe[:, 0::2] = torch.sin(angles)\n    pe[:, 1::2] = torch.cos(angles)",
           new="pe[:, : d_model // 2] = torch.sin(angles)\n    pe[:, d_model // 2 :] = torch.cos(angles)",
           fails={"test_sinusoidal_positions"}, why="sines in the first half, cosines in the second (concatenated)",
           hint="all the sines in the first half"),
    Mutant(cell="sinusoidal_positions", old="omega = 10000.0 ** (-torch.arange", new="omega = 10000.0 ** (torch.arange",
           fails={"test_sinusoidal_positions"}, why="positive exponent: multiplies by 10000^(2i/d)",
           hint="instead of dividing by it"),
    Mutant(cell="sinusoidal_positions", old="p = torch.arange(n_positions, dtype=torch.float64)",
           new="p = torch.arange(1, n_positions + 1, dtype=torch.float64)",
           fails={"test_sinusoidal_positions"}, why="positions numbered from 1", hint="number the positions from 1"),
    Mutant(cell="sinusoidal_positions", old="return pe.to(torch.float32)", new="return pe",
           fails={"test_sinusoidal_positions"}, why="returns the float64 table",
           hint="without converting it to float32"),
    Mutant(cell="rope", old="y_even = x_even * cos - x_odd * sin\n    y_odd = x_even * sin + x_odd * cos",
           new="y_even = x_even * cos + x_odd * sin\n    y_odd = -x_even * sin + x_odd * cos",
           fails={"test_rope"}, why="rotates by -p theta (clockwise)", hint="rotate by -p theta_i (clockwise)"),
    Mutant(cell="rope", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-torch.arange(D // 2, dtype=torch.float64) / D)",
           fails={"test_rope"}, why="theta_i = base^(-i/D)", hint="theta_i = base^(-i/D)"),
    Mutant(cell="rope", old="theta = base ** (", new="theta = 10000.0 ** (",
           fails={"test_rope"}, why="ignores the base argument", hint="use the base argument"),
    Mutant(cell="rope", old="angles = torch.as_tensor(positions, dtype=torch.float64)[:, None] * theta",
           new="angles = torch.as_tensor(positions, dtype=torch.float32)[:, None] * theta.float()",
           fails={"test_rope"}, why="angles in float32", hint="compute the angles in float32"),
    Mutant(cell="rope_score", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-torch.arange(D // 2, dtype=torch.float64) / D)",
           fails={"test_rope_score"}, why="theta_i = base^(-i/D) in the score", hint="theta_i = base^(-i/D)"),
    Mutant(cell="rope_score", old="theta = base ** (", new="theta = 10000.0 ** (",
           fails={"test_rope_score"}, why="ignores the base argument in the score", hint="use the base argument"),
    Mutant(cell="rope_score", old="return (real * cos - imag * sin).sum(dim=-1)", new="return real * cos - imag * sin",
           fails={"test_rope_score"}, why="does not sum over the pairs", hint="forget to sum over the pairs"),
    Mutant(cell="rope_score", old="imag = q_odd * k_even - q_even * k_odd",
           new="imag = q_odd * k_even + q_even * k_odd",
           fails={"test_rope_score"}, why="adds the two products of the imaginary part",
           hint="add the two products of the imaginary part"),
    Mutant(cell="rope_score", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-torch.arange(0, D, 2) / D)",
           fails={"test_rope_score"}, why="theta in float32", hint="compute the angles in float32"),
    # issue 23: a new student's wrong answers, written from the notebook alone
    Mutant(cell="rope_score",
           old="cos = torch.cos(distance * theta).to(q.dtype)\n    sin = torch.sin(distance * theta)",
           new="cos = torch.cos(abs(distance) * theta).to(q.dtype)\n    sin = torch.sin(abs(distance) * theta)",
           fails={"test_rope_score"}, why="uses |m - n|", hint="use the distance's size |m - n|"),
    Mutant(cell="sinusoidal_positions", old="omega = 10000.0 **", new="omega = 1000.0 **",
           fails={"test_sinusoidal_positions"}, why="base 1000 instead of 10000", hint="with b = 1000"),
    Mutant(cell="sinusoidal_positions",
           old="p = torch.arange(n_positions, dtype=torch.float64)[:, None]                     # (n, 1)\n"
               "    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
           new="p = torch.arange(n_positions, dtype=torch.float32)[:, None]\n"
               "    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)",
           fails={"test_sinusoidal_positions"}, why="angles computed in float32",
           hint="compute the angles p * omega_i in float32"),
    Mutant(cell="rope", old="return torch.stack([y_even, y_odd], dim=-1).reshape(x.shape)",
           new="x[..., 0::2], x[..., 1::2] = y_even, y_odd\n    return x",
           fails={"test_rope"}, why="writes the rotation into x in place", hint="changed its argument 'x' in place"),
    Mutant(cell="rope", old="return torch.stack([y_even, y_odd], dim=-1).reshape(x.shape)",
           new="return torch.cat([y_even, y_odd], dim=-1)",
           fails={"test_rope"}, why="reads neighbours, writes halves", hint="write them back as halves"),
    Mutant(cell="rope_score", old="real = q_even * k_even + q_odd * k_odd",
           new="real = q_even * k_even - q_odd * k_odd",
           fails={"test_rope_score"}, why="no conjugate in the real part", hint="without conjugating k_i"),
    Mutant(cell="rope_score", old="return (real * cos - imag * sin).sum(dim=-1)",
           new="return (real * cos - imag * sin).sum()",
           fails={"test_rope_score"}, why="sums over every dimension",
           hint="sum over every dimension (.sum() with no dim)"),
    # issue 23, more wrong answers from testers (each named by a mistake in gptref.grading.mistakes.d07_rope)
    Mutant(cell="rope", old="cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)",
           new="cos, sin = angles.sin().to(x.dtype), angles.cos().to(x.dtype)",
           fails={"test_rope"}, why="cos and sin swapped", hint="swap cos and sin"),
    Mutant(cell="rope", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (torch.arange(0, D, 2, dtype=torch.float64) / D)",
           fails={"test_rope"}, why="positive exponent: base^(+2i/D)", hint="use theta_i = base^(+2i/D)"),
    Mutant(cell="rope", old="positions = torch.arange(T)\n", new="positions = torch.arange(1, T + 1)\n",
           fails={"test_rope"}, why="default positions counted from 1", hint="count the default positions from 1"),
    Mutant(cell="rope", old="cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)",
           new="cos, sin = angles.cos(), angles.sin()",
           fails={"test_rope"}, why="cos and sin left in float64", hint="x times a float64 tensor becomes float64"),
    Mutant(cell="rope_score", old="return (real * cos - imag * sin).sum(dim=-1)",
           new="return (real * cos - imag * sin).mean(dim=-1)",
           fails={"test_rope_score"}, why="the mean of the pair terms instead of their sum",
           hint="take the mean of the pair terms"),
    Mutant(cell="rope_score", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (torch.arange(0, D, 2, dtype=torch.float64) / D)",
           fails={"test_rope_score"}, why="positive exponent in the score", hint="use theta_i = base^(+2i/D)"),
    Mutant(cell="rope_score",
           old="cos = torch.cos(distance * theta).to(q.dtype)\n    sin = torch.sin(distance * theta).to(q.dtype)",
           new="cos = torch.cos(distance * theta)\n    sin = torch.sin(distance * theta)",
           fails={"test_rope_score"}, why="cos and sin left in float64 in the score",
           hint="q times a float64 tensor becomes float64"),
]

# Fresh wrong answers of issue 23 (n58), named by the general machinery or a new known mistake.
MUTANTS += [
    Mutant("rope", old="    y_even = x_even * cos - x_odd * sin\n    y_odd = x_even * sin + x_odd * cos",
           new="    y_even = x_odd * cos - x_even * sin\n    y_odd = x_odd * sin + x_even * cos",
           fails={"test_rope"}, why="the two channels of each pair swapped in the rotation",
           hint="the two channels of every pair swapped"),
    Mutant("rope_score",
           old="q_even, q_odd = q[..., 0::2], q[..., 1::2]                         # (..., D/2) each\n"
               "    k_even, k_odd = k[..., 0::2], k[..., 1::2]",
           new="q_even, q_odd = q[..., :D // 2], q[..., D // 2:]\n    k_even, k_odd = k[..., :D // 2], k[..., D // 2:]",
           fails={"test_rope_score"}, why="rope_score reads q's pairs as halves (i, i + D/2)",
           hint="and so must rope_score"),
]

# Issue 23, fresh set 3 (f611): float32 angles in rope, off only at the largest positions.
MUTANTS += [
    Mutant(cell="rope", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-torch.arange(0, D, 2) / D)", fails={"test_rope"}, why="theta in float32",
           hint="compute the angles in float32"),
]

# Issue 23, fresh set 5: rope_score's angles in q's dtype were off by only ~1e-4 at distance 1000 in float32.
MUTANTS += [
    Mutant(cell="rope_score", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-torch.arange(0, D, 2, dtype=q.dtype) / D)", fails={"test_rope_score"},
           why="angles in q's dtype (float32 for a float32 input)", hint="compute the angles in q's dtype"),
]

# Issue 23, fresh set 6: theta in x's dtype; float32 angles lose digits at position 300001.
MUTANTS += [
    Mutant("rope", old="-torch.arange(0, D, 2, dtype=torch.float64) / D",
           new="-torch.arange(0, D, 2, dtype=x.dtype) / D",
           fails={"test_rope"}, why="theta computed in x's dtype (float32 for a float32 x)",
           hint="as when you compute the angles in float32"),
]

# Issue 23, fresh set 9: the angles rounded to float32 before sin and cos.
MUTANTS += [
    Mutant(cell="sinusoidal_positions", old="angles = p * omega", new="angles = (p * omega).float()",
           fails={"test_sinusoidal_positions"}, why="angles rounded to float32 (B-07-5)",
           hint="round the angles p * omega_i to float32 before sin and cos"),
]

# Issue 23, fresh set 10: the 2 of the exponent counted twice.
MUTANTS += [
    Mutant(cell="rope_score", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-2 * torch.arange(0, D, 2, dtype=torch.float64) / D)",
           fails={"test_rope_score"}, why="exponent -4i/D (A-07-17)", hint="count the 2 twice"),
    Mutant(cell="rope", old="theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)",
           new="theta = base ** (-2 * torch.arange(0, D, 2, dtype=torch.float64) / D)",
           fails={"test_rope"}, why="exponent -4i/D in rope (A-07-17's twin)", hint="count the 2 twice"),
    Mutant(cell="sinusoidal_positions",
           old="omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
           new="omega = 10000.0 ** (-2 * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)",
           fails={"test_sinusoidal_positions"}, why="exponent -4i/d in the table (A-07-17's twin)",
           hint="count the 2 twice"),
]

# Issue 23, fresh set 13: the sequence length read from dim 0.
MUTANTS += [
    Mutant("rope", old="T, D = x.shape[-2], x.shape[-1]", new="T, D = x.shape[0], x.shape[-1]",
           fails={"test_rope"}, why="T read from dim 0, the batch (C-07-12)", hint="takes a size from dim 0"),
]
