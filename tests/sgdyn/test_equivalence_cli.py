import json

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.simulate.adaptive import simulate_adaptive
from sgdyn.simulate.adaptive_check import check_adaptive
from sgdyn.theory.equivalence import gap_scaling, momentum_gap
from sgdyn.theory.problem import Problem

SPEC = "powerlaw:nu=1.5,kappa=1,n=8"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_momentum_gap_json_matches_the_library(capsys, tmp_path):
    fig = tmp_path / "gap.png"
    code, out, err = run_cli(capsys, "momentum-gap", "--problem", SPEC, "--eta", "0.05", "--beta",
                             "0.8", "--batch", "4", "--horizon", "2", "--etas", "0.001,0.01,0.05",
                             "--a", "0,0.5", "--label-noise", "0.1", "--json", "--out", str(fig))
    assert code == 0 and err == ""
    data = json.loads(out)
    p = Problem.parse(SPEC).replace(label_noise=0.1)
    assert data["max_relative_gap"] == momentum_gap(p, 0.05, 0.8, 4, 2.0).max_gap
    assert data["edges"]["ratio"] == pytest.approx(data["edges"]["predicted_ratio"], rel=1e-11)
    s = gap_scaling(p, [0.001, 0.01, 0.05], 0.5, 4, 2.0)
    assert data["scaling"][1]["exponent"] == s.exponent and data["scaling"][1]["a"] == 0.5
    assert set(data["stationary_loss"]) == {"sgd", "momentum"}
    assert fig.stat().st_size > 1000 and data["figure"] == str(fig)


def test_momentum_gap_text(capsys):
    code, out, _ = run_cli(capsys, "momentum-gap", "--problem", SPEC, "--eta", "0.1", "--beta",
                           "0.5", "--batch", "2", "--etas", "0.01,0.1", "--a", "0")
    assert code == 0 and "largest relative gap" in out and "(1+beta)/(1-beta) = 3" in out


def test_adaptive_batch_json_matches_the_simulator(capsys, tmp_path):
    fig = tmp_path / "adaptive.svg"
    code, out, err = run_cli(capsys, "adaptive-batch", "--problem", SPEC, "--label-noise", "0.05",
                             "--alpha", "0.3", "--steps", "12", "--runs", "20", "--seed", "3",
                             "--batch", "2", "--max-batch", "50", "--constant", "2,8", "--json",
                             "--out", str(fig))
    assert code == 0 and err == ""
    data = json.loads(out)
    p = Problem.parse(SPEC).replace(label_noise=0.05)
    sim = simulate_adaptive(p, 0.3, 12, 20, 3, batch=2, max_batch=50)
    np.testing.assert_array_equal(data["adaptive"]["batch_mean"], sim.batch.mean(axis=0))
    assert [c["batch"] for c in data["constant"]] == [2, 8]
    assert len(data["theory"]["mean_field_batch"]) == 13
    along = data["along_schedules"]
    want = check_adaptive(p, sim)
    np.testing.assert_array_equal(along["gap"], want.gap)
    np.testing.assert_array_equal(along["replay_gap"], want.replay_gap)
    assert along["replay_max_z"] == want.replay_max_z and "selection effect" in along["note"]
    assert fig.stat().st_size > 1000


def test_adaptive_batch_text_for_an_optimizer_without_theory(capsys):
    code, out, _ = run_cli(capsys, "adaptive-batch", "--problem", SPEC, "--alpha", "0.3",
                           "--optimizer", "adagrad-norm", "--test", "augmented", "--steps", "5",
                           "--runs", "4", "--max-batch", "16")
    assert code == 0 and "adaptive (augmented)" in out and "theory" not in out


@pytest.mark.parametrize("argv, match", [
    (["momentum-gap", "--problem", SPEC, "--eta", "0", "--beta", "0.5", "--batch", "2"], "eta"),
    (["momentum-gap", "--problem", SPEC, "--eta", "0.1", "--beta", "1", "--batch", "2"], "beta"),
    (["momentum-gap", "--problem", SPEC, "--eta", "0.1", "--beta", "0.5", "--batch", "2",
      "--out", "x.gif"], "out must end"),
    (["momentum-gap", "--problem", SPEC, "--eta", "0.1", "--beta", "0.5", "--batch", "2",
      "--etas", "a,b"], "comma-separated"),
    (["adaptive-batch", "--problem", SPEC, "--alpha", "0.1", "--steps", "3", "--batch", "1"], "batch"),
    (["adaptive-batch", "--problem", SPEC, "--alpha", "0.1", "--steps", "3", "--constant", "1"],
     "constant"),
    (["adaptive-batch", "--problem", SPEC, "--alpha", "0.1", "--steps", "3", "--test", "x"], "test"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, match):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and match in err
