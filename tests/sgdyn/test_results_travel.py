"""Results that travel: the command line's JSON echoes its inputs, ``--csv`` is a table with the
same numbers, and every result converts to xarray / pandas / JSON and back to the same numbers."""
import io
import json

import numpy as np
import pandas as pd
import pytest

from sgdyn import plots, simulate
from sgdyn.cli import main
from sgdyn.theory.dynamics import loss_curve
from sgdyn.theory.problem import Problem
from sgdyn.theory.stability import critical_learning_rate
from sgdyn.validate import validate

SPEC = "powerlaw:nu=1.5,kappa=3,n=30"
P = Problem.parse(SPEC)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    return out


def read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), comment="#")


def csv_comments(text: str) -> dict:
    return {k: json.loads(v) for k, v in (line[2:].split(": ", 1) for line in text.splitlines()
                                          if line.startswith("# "))}


LOSS = ["loss", "--problem", SPEC, "--alpha", "0.3", "--beta", "-0.2", "--batch", "2",
        "--steps", "40", "--tau2", "0.5", "--label-noise", "0.01"]


def test_json_echoes_the_inputs(capsys):
    d = json.loads(cli(capsys, *LOSS, "--json"))
    inp = d["inputs"]
    assert inp["command"] == "loss" and inp["sgdyn_version"] == "0.1.0"
    # hyperparameters are echoed as given (they may be schedules); the run says what they meant
    assert inp["flags"] == {"problem": SPEC, "alpha": "0.3", "beta": "-0.2", "batch": "2",
                            "method": None, "method_file": None, "param": [], "tau1": None,
                            "tau2": 0.5, "label_noise": 0.01, "data_size": None, "steps": 40.0,
                            "route": "recursion", "sampling": None, "record": None}
    run = inp["run"]
    assert run["method"] == "heavy-ball" and run["steps"] == 40 and run["sampling"] == "iid"
    assert run["schedule"] == {"alpha": "0.3", "beta": "-0.2", "batch": "2"}
    assert inp["noise"] == {"model": "SE", "tau1": 1.0, "tau2": 0.5}
    assert inp["problem"] == {"name": SPEC, "n_modes": 30, "total_modes": 30.0, "trace": P.trace,
                              "label_noise": 0.01, "data_size": None}


def test_loss_csv_has_the_json_numbers(capsys):
    j = json.loads(cli(capsys, *LOSS, "--json"))
    text = cli(capsys, *LOSS, "--csv")
    df = read_csv(text)
    assert list(df.columns) == ["step", "loss"] and df["step"].tolist() == list(range(41))
    assert df["loss"].tolist() == j["loss"]                       # exact: floats written by repr
    meta = csv_comments(text)
    assert meta["rate"] == j["rate"] and meta["inputs.flags.tau2"] == 0.5
    assert meta["inputs.sgdyn_version"] == "0.1.0"


def test_simulate_csv_columns(capsys):
    argv = ["simulate", "--problem", SPEC, "--alpha", "0.2", "--batch", "2", "--steps", "20",
            "--runs", "64", "--seed", "3", "--every", "5"]
    j = json.loads(cli(capsys, *argv, "--json"))
    df = read_csv(cli(capsys, *argv, "--csv"))
    assert df["step"].tolist() == j["steps"] == [0, 5, 10, 15, 20]
    assert df["mean"].tolist() == j["mean"] and df["stderr"].tolist() == j["stderr"]
    for i, q in enumerate(j["quantile_levels"]):
        assert df[f"q{q:g}"].tolist() == j["quantiles"][i]
    tr = simulate.run(P, 0.2, 0.0, 2, 20, 64, 3, every=5)
    assert df["mean"].tolist() == tr.mean.tolist()


def test_scalar_result_is_a_one_row_table(capsys):
    argv = ["critical-lr", "--problem", SPEC, "--beta", "0.5", "--batch", "4"]
    df = read_csv(cli(capsys, *argv, "--csv"))
    c = critical_learning_rate(P, 0.5, 4)
    assert len(df) == 1 and df["alpha_crit"][0] == c.alpha_crit
    assert df["limited_by"][0] == c.limited_by and df["reason"][0] == c.reason


def test_phase_diagram_json_and_csv_carry_the_grid(capsys, tmp_path):
    argv = ["phase-diagram", "--problem", SPEC, "--batch", "1,8", "--n-beta", "7", "--n-alpha",
            "11", "--out", str(tmp_path / "r.png")]
    j = json.loads(cli(capsys, *argv, "--json"))
    fig, data = plots.convergence_regions(P, [1, 8], n_alpha=11, n_beta=7)
    assert [p["batch"] for p in j["panels"]] == [1, 8] and j["batch"] == 1
    for panel, d in zip(j["panels"], data):
        g = panel["grid"]
        assert g["alphas"] == d.alphas.tolist() and g["betas"] == d.betas.tolist()
        vals = np.array([[np.nan if v is None else v for v in row] for row in g["values"]])
        np.testing.assert_array_equal(vals, d.values)
        assert g["alpha_crit"] == d.alpha_crit.tolist()
        assert (panel["alpha"], panel["beta"], panel["value"]) == (*d.optimum, d.optimum_value)
    df = read_csv(cli(capsys, *argv, "--csv"))
    assert list(df.columns) == ["batch", "beta", "alpha", "value"] and len(df) == 2 * 7 * 11
    for d in data:
        part = df[df["batch"] == d.batch]
        np.testing.assert_array_equal(part["value"].to_numpy().reshape(7, 11), d.values)
        assert part["alpha"].tolist()[:11] == d.alphas.tolist()


# -- Python results -> xarray / pandas / JSON / CSV -> the same numbers -------------------------
def test_loss_curve_round_trips():
    curve = loss_curve(P, 0.3, 0.5, 4, 200)
    ds = curve.to_xarray()
    assert ds["loss"].dims == ("step",) and ds["loss"].values.tolist() == curve.loss.tolist()
    assert float(ds["rate"]) == curve.rate and ds.attrs["limited_by"] == curve.limited_by
    df = curve.to_dataframe()
    back = pd.read_csv(io.StringIO(df.to_csv()), index_col="step")
    assert back["loss"].tolist() == curve.loss.tolist() and back.index.tolist() == list(range(201))
    d = json.loads(curve.to_json())
    assert d["loss"] == curve.loss.tolist() and d["rate"] == curve.rate
    assert xr_roundtrip(ds)["loss"].values.tolist() == curve.loss.tolist()


def xr_roundtrip(ds):
    """Through netCDF-like dicts (xarray's own serialisation)."""
    import xarray as xr
    return xr.Dataset.from_dict(ds.to_dict())


def test_trajectories_and_validation_round_trip():
    rep = validate(P, 0.2, 0.5, 2, 30, 64, 1, every=10)
    ds = rep.to_xarray()
    assert ds["step"].values.tolist() == rep.steps.tolist()
    assert ds["z"].values.tolist() == rep.z.tolist()
    assert ds["trajectories.mean"].values.tolist() == rep.trajectories.mean.tolist()
    assert ds.attrs["verdict"] == rep.verdict and bool(ds["agrees"]) == rep.agrees
    tr = rep.trajectories
    q = tr.to_xarray()["quantiles"]
    assert q.dims == ("quantile", "step") and q["quantile"].values.tolist() == tr.quantile_levels.tolist()
    df = tr.to_dataframe()
    assert df["quantiles[0.5]"].tolist() == tr.quantiles[2].tolist()
    back = pd.read_csv(io.StringIO(df.to_csv()), index_col="step")
    assert back["stderr"].tolist() == tr.stderr.tolist()
    assert json.loads(rep.to_json())["trajectories"]["mean"] == tr.mean.tolist()


def test_region_grid_round_trips():
    _, d = plots.convergence_region(P, 2, betas=np.linspace(-0.5, 0.9, 5), n_alpha=8)
    ds = d.to_xarray()
    assert ds["values"].dims == ("beta", "alpha")
    np.testing.assert_array_equal(ds["values"].sel(beta=d.betas[2]).values, d.values[2])
    df = d.to_dataframe()
    assert df.index.names == ["beta", "alpha"] and len(df) == 40
    np.testing.assert_array_equal(df["values"].to_numpy().reshape(5, 8), d.values)
    assert df.loc[(d.betas[1], d.alphas[3]), "alpha_crit"] == d.alpha_crit[1]


@pytest.mark.parametrize("make", [
    lambda: critical_learning_rate(P, 0.3, 2),
    lambda: P,
    lambda: simulate.run(P, 0.2, 0.0, 2, 10, 64, 1),
])
def test_every_result_converts(make):
    r = make()
    d = r.to_dict()
    ds = r.to_xarray()
    df = r.to_dataframe()
    for name, value in d.items():
        if isinstance(value, float) and name in ds:
            assert float(ds[name]) == value
    assert ds.attrs["result"] == type(r).__name__ == df.attrs["result"]
    json.loads(r.to_json())


def test_csv_keeps_infinities_that_json_cannot(capsys):
    argv = ["validate", "--problem", SPEC, "--alpha", "0.2", "--batch", "2", "--steps", "20",
            "--runs", "64", "--every", "10"]
    j = json.loads(cli(capsys, *argv, "--json"))
    df = read_csv(cli(capsys, *argv, "--csv"))
    assert j["tail_index"][0] is None and df["tail_index"][0] == np.inf   # t = 0: no tail at all
    assert df["step"].tolist() == j["steps"] and df["z"].tolist() == j["z"]
    assert df["heavy_tailed"].tolist() == j["heavy_tailed"]
