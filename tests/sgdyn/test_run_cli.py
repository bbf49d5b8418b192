"""The command line reads one run description: any method (a shipped name, update equations, a
file, --param), schedules for alpha / beta / batch (text forms and files), sampling and recorded
steps; the numbers are the library's for the same description."""
import json

import numpy as np
import pytest

from sgdyn.cli import main
from sgdyn.theory.dynamics import solve
from sgdyn.theory.methods import get_method
from sgdyn.theory.problem import Problem
from sgdyn.theory.record import Record
from sgdyn.theory.run import Run
from sgdyn.theory.schedules import cosine, warmup

SPEC = "powerlaw:nu=1.5,kappa=1,n=8"
P = Problem.parse(SPEC)
# a method the engine does not ship: the gradient at a point between w and w + v
USER = "params: c = 0.3 in [0, 1]; v' = beta*v - alpha*g(w + c*v); w' = w + v'"


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *argv):
    code, out, err = cli(capsys, *argv, "--json")
    assert code in (0, 1) and err == "", err
    return json.loads(out)


def test_user_method_goes_through_every_command(capsys):
    common = ["--problem", SPEC, "--method", USER, "--param", "c=0.5"]
    code, out, _ = cli(capsys, "derive", "--method", USER)
    assert code == 0 and "U(z) = " in out and "c" in out
    want = solve(Run.build(P, get_method(USER).bind(c=0.5), alpha=0.2, beta=0.5, batch=2,
                           steps=60))
    d = cli_json(capsys, "loss", *common, "--alpha", "0.2", "--beta", "0.5", "--batch", "2",
                 "--steps", "60")
    np.testing.assert_allclose(d["loss"], want.loss, rtol=1e-13)
    assert d["inputs"]["run"]["method"] == "custom" and d["inputs"]["run"]["schedule"]["c"] == "0.5"
    c = cli_json(capsys, "critical-lr", *common, "--beta", "0.5", "--batch", "2")
    from sgdyn.theory.stability import critical_learning_rate
    assert c["alpha_crit"] == pytest.approx(
        critical_learning_rate(P, 0.5, 2, get_method(USER).bind(c=0.5)).alpha_crit, rel=1e-12)
    o = cli_json(capsys, "optimize", *common, "--batch", "2")
    assert o["objective"] == "rate" and 0 < o["alpha"] < o["alpha_crit"] and o["value"] < 1
    s = cli_json(capsys, "simulate", *common, "--alpha", "0.2", "--beta", "0.5", "--batch", "2",
                 "--steps", "60", "--runs", "2000", "--seed", "3", "--every", "10")
    z = (np.array(s["mean"][1:]) - want.loss[10::10]) / np.array(s["stderr"][1:])
    assert np.abs(z).max() < 4
    v = cli_json(capsys, "validate", *common, "--alpha", "0.2", "--beta", "0.5", "--batch", "2",
                 "--steps", "60", "--runs", "2000", "--seed", "3", "--every", "10")
    assert v["verdict"] == "agrees"


def test_method_file_txt_and_json(capsys, tmp_path):
    txt = tmp_path / "mine.txt"
    txt.write_text("# heavy ball in PyTorch's form\nv' = beta*v - alpha*g(w)\nw' = w + v'\n")
    js = tmp_path / "mats.json"
    js.write_text(json.dumps({"name": "hb-matrices", "F": [["1 + beta", "-beta"], [1, 0]],
                              "K": [["-alpha"], [0]], "G": [[1, 0]], "x0": [[1], [1]]}))
    want = cli_json(capsys, "loss", "--problem", SPEC, "--alpha", "0.3", "--beta", "0.6",
                    "--batch", "2", "--steps", "30")["loss"]
    for f in (txt, js):
        got = cli_json(capsys, "loss", "--problem", SPEC, "--method-file", str(f), "--alpha", "0.3",
                       "--beta", "0.6", "--batch", "2", "--steps", "30")["loss"]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_schedules_from_text_and_files(capsys, tmp_path):
    alpha = warmup(10) + cosine(0.3, floor=0.01)
    want = solve(Run.build(P, "nesterov", alpha=alpha, beta="linear(0.2, 0.8)",
                           batch="double(2, milestones=[40])", steps=80))
    d = cli_json(capsys, "loss", "--problem", SPEC, "--method", "nesterov", "--alpha",
                 "warmup(10)+cosine(0.3,floor=0.01)", "--beta", "linear(0.2,0.8)", "--batch",
                 "double(2,milestones=[40])", "--steps", "80")
    np.testing.assert_allclose(d["loss"], want.loss, rtol=1e-13)
    values = alpha.values(np.arange(80), 80)
    np.save(tmp_path / "a.npy", values)
    np.savetxt(tmp_path / "a.csv", values, delimiter=",")
    for f in ("a.npy", "a.csv"):
        got = cli_json(capsys, "loss", "--problem", SPEC, "--method", "nesterov", "--alpha",
                       str(tmp_path / f), "--beta", "linear(0.2,0.8)", "--batch",
                       "double(2,milestones=[40])", "--steps", "80")
        np.testing.assert_allclose(got["loss"], want.loss, rtol=1e-12)


def test_record_keeps_checkpoints_only(capsys):
    d = cli_json(capsys, "loss", "--problem", SPEC, "--alpha", "0.2", "--batch", "1",
                 "--steps", "100000", "--record", "log:20")
    full = solve(Run.build(P, "heavy-ball", alpha=0.2, batch=1, steps=100000,
                           record=Record.log(20)))
    assert d["steps"] == full.steps.tolist() and len(d["steps"]) <= 21 and d["steps"][-1] == 100000
    np.testing.assert_allclose(d["loss"], full.loss, rtol=1e-13)
    e = cli_json(capsys, "loss", "--problem", SPEC, "--alpha", "0.2", "--batch", "1",
                 "--steps", "30", "--record", "at:0,7,30")
    assert e["steps"] == [0, 7, 30]


def test_methods_lists_the_catalogue(capsys):
    d = cli_json(capsys, "methods")
    names = [m["name"] for m in d["methods"]]
    assert {"sgd", "heavy-ball", "nesterov", "nesterov-pytorch", "qhm", "ema-heavy-ball",
            "preconditioned-sgd", "preconditioned-heavy-ball"} <= set(names)
    qhm = d["methods"][names.index("qhm")]
    assert "nu = 0.7 in [0, 1]" in qhm["parameters"] and "Ma & Yarats" in qhm["references"][0]


@pytest.mark.parametrize("argv,match", [
    (["--method", "adam"], "method must be one of"),
    (["--method", "w' = w*w - alpha*g(w)"], "not linear"),
    (["--param", "nu"], "--param 'nu' must read NAME=VALUE"),
    (["--param", "nu=0.5"], "--param nu: method 'heavy-ball' has no such parameter"),
    (["--method", "qhm", "--param", "nu=1.5"], "nu must lie in [0, 1]"),
    (["--method", "qhm", "--param", "nu=abc"], "--param nu"),
    (["--alpha", "cosin(0.3)"], "unknown shape 'cosin'"),
    (["--alpha", "cosine(0.3,floor=)"], "--alpha: schedule"),
    (["--alpha", "linear(0.3,-0.1)"], "alpha must be > 0 at every step"),
    (["--beta", "linear(0.5,1.2)"], "beta must lie in (-1, 1) at every step"),
    (["--batch", "linear(0,8)"], "batch must be an integer >= 1"),
    (["--batch", "2.5"], "batch must be an integer"),
    (["--alpha", "nofile.npy"], "does not exist"),
    (["--record", "log"], "--record 'log' must read"),
    (["--record", "at:0,500"], "beyond the horizon"),
    (["--sampling", "epochs", "--data-size", "100"], "sampling 'epochs' has no second-moment theory"),
    (["--sampling", "without-replacement"], "needs the data set's size"),
    (["--method-file", "nope.txt"], "does not exist"),
])
def test_bad_run_input_is_one_line(capsys, argv, match):
    base = ["loss", "--problem", SPEC, "--alpha", "0.2", "--beta", "0.3", "--batch", "2",
            "--steps", "50"]
    for flag, val in zip(argv[::2], argv[1::2]):
        if flag in base:
            base[base.index(flag) + 1] = val
        else:
            base += [flag, val]
    code, out, err = cli(capsys, *base)
    assert code == 2 and out == "" and err.count("\n") == 1 and match in err, err


def test_schedule_array_of_the_wrong_length_is_named(capsys, tmp_path):
    np.save(tmp_path / "short.npy", np.full(10, 0.1))
    code, _, err = cli(capsys, "loss", "--problem", SPEC, "--alpha", str(tmp_path / "short.npy"),
                       "--batch", "1", "--steps", "50")
    assert code == 2 and "alpha: the schedule short.npy has 10 values" in err
