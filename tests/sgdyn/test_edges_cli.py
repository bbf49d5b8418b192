import json

import pytest

from sgdyn.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sam_edge_json(capsys):
    code, out, err = run_cli(capsys, "sam-edge", "--eta", "0.1", "--rho", "0.05", "--grad-norm", "2.25", "--json")
    data = json.loads(out)
    assert code == 0 and err == "" and data["sam_edge"] == pytest.approx(15.0, rel=1e-14)
    assert data["gd_edge"] == pytest.approx(20.0)


@pytest.mark.parametrize("method, beta, lr, stable, threshold", [
    ("gd", "0", "0.19", True, 0.2), ("heavy-ball", "0.5", "0.31", False, 0.3),
    ("nesterov", "0.5", "0.149", True, 0.15), ("nesterov", "-0.5", "0.2", True, 0.3)])
def test_edge_json(capsys, method, beta, lr, stable, threshold):
    code, out, _ = run_cli(capsys, "edge", "--method", method, "--lr", lr, "--beta", beta,
                           "--sharpness", "10", "--json")
    data = json.loads(out)
    assert code == 0 and data["stable"] is stable
    assert data["threshold_lr"] == pytest.approx(threshold, rel=1e-14)


def test_eos_and_lr_sweep_write_figures(capsys, tmp_path):
    fig = tmp_path / "eos.png"
    code, out, _ = run_cli(capsys, "eos", "--eta", "0.2", "--steps", "400", "--every", "100",
                           "--out", str(fig), "--json")
    data = json.loads(out)
    assert code == 0 and fig.stat().st_size > 10_000 and len(data["sharpness"]) == 5
    assert data["edge"] == pytest.approx(10.0)
    fig = tmp_path / "sweep.svg"
    code, out, _ = run_cli(capsys, "lr-sweep", "--depth", "2", "--ratios", "0.9:1.1:2", "--runs", "20",
                           "--steps", "20000", "--out", str(fig), "--json")
    data = json.loads(out)
    assert code == 0 and fig.exists() and data["converged_fraction"] == [1.0, 0.0]
    code, out, _ = run_cli(capsys, "lr-sweep", "--depth", "2", "--ratios", "0.9:1.1:2", "--runs", "20",
                           "--steps", "20000")
    assert code == 0 and "predicted eta_crit" in out


@pytest.mark.parametrize("argv, match", [
    (["sam-edge", "--eta", "0.1", "--rho", "0", "--grad-norm", "1"], "rho"),
    (["sam-edge", "--eta", "-0.1", "--rho", "0.1", "--grad-norm", "1"], "eta"),
    (["sam-edge", "--eta", "0.1", "--rho", "0.1", "--grad-norm", "0"], "--grad-norm"),
    (["edge", "--method", "gd", "--lr", "0", "--sharpness", "1"], "lr"),
    (["edge", "--method", "gd", "--lr", "0.1", "--sharpness", "-1"], "sharpness"),
    (["edge", "--method", "heavy-ball", "--lr", "0.1", "--beta", "1", "--sharpness", "1"], "beta"),
    (["edge", "--method", "gd", "--lr", "0.1", "--beta", "0.2", "--sharpness", "1"], "beta"),
    (["eos", "--eta", "0"], "eta"),
    (["eos", "--eta", "0.1", "--optimizer", "sam"], "rho"),
    (["eos", "--eta", "0.1", "--out", "x.txt"], "out"),
    (["lr-sweep", "--ratios", "1:0.5:3"], "ratios"),
    (["lr-sweep", "--ratios", "a:b"], "ratios"),
    (["lr-sweep", "--p", "0"], "p"),
    (["lr-sweep", "--model", "matrix-net", "--depth", "30"], "depth"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, match):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == "" and match in err and err.count("\n") == 1
