"""benchmarks/recipe_sweep.py's own pieces: how it reads values and options, and what it refuses."""

import pytest


@pytest.fixture(scope="module")
def sweep():
    from benchmarks import recipe_sweep  # the script as a module (the repository's root is on the tests' path)

    return recipe_sweep


def test_values_become_the_types_trainconfig_takes(sweep):
    assert [sweep.parse_value(v) for v in ("30", "0.005", "true", "False", "wsd")] == [30, 0.005, True, False, "wsd"]
    assert isinstance(sweep.parse_value("30"), int) and isinstance(sweep.parse_value("2e-3"), float)
    assert sweep.parse_sets(["warmup_iters=30", "muon_lr=0.005"]) == {"warmup_iters": 30, "muon_lr": 0.005}
    with pytest.raises(SystemExit, match="NAME=VALUE.*'muon_lr'"):
        sweep.parse_sets(["muon_lr"])


def test_an_option_trainconfig_lacks_is_named_before_anything_runs(sweep, capsys):
    assert sweep.main(["--option", "muon_rate", "--values", "0.01", "--set", "warmup=30"]) == 2
    assert "not TrainConfig options: muon_rate, warmup" in capsys.readouterr().err
    assert sweep.main(["--option", "warmup_iters", "--values", "30", "--set", "seed=3"]) == 2
    assert "seeds come from --seeds" in capsys.readouterr().err
