"""The table of bad, absurd and extreme inputs: every command and the Python API.

Each case is ``(argv, fragment)``: ``sgdyn ARGV`` must exit with code 2, print one line
``sgdyn: error: ...`` on stderr (no traceback, no warning) containing ``fragment`` (the argument
it is about), and print nothing on stdout. ``write_files(folder)`` makes the broken files the
table names (run from inside that folder)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

P = "powerlaw:nu=1.5,kappa=1,n=10"
BIG = "1e12"


def write_files(folder) -> None:
    """The files the cases read: corrupt, truncated, mistyped, misshapen."""
    folder = Path(folder)

    def j(name, obj):
        (folder / name).write_text(obj if isinstance(obj, str) else json.dumps(obj))

    def f(name):
        return str(folder / name)
    np.savez(f("good.npz"), eigenvalues=[1.0, 0.5], initial=[1.0, 1.0])
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    (folder / "trunc.npz").write_bytes((folder / "good.npz").read_bytes()[:50])
    os.makedirs(f("dir.json"), exist_ok=True)
    os.makedirs(f("outdir.png"), exist_ok=True)
    np.savez(f("complex.npz"), eigenvalues=np.array([1 + 1j, 0.5]), initial=[1.0, 1.0])
    np.savez(f("bool.npz"), eigenvalues=np.array([True, False]), initial=[1.0, 1.0])
    np.savez(f("noise2.npz"), eigenvalues=[1.0, 0.5], initial=[1.0, 1.0], label_noise=[0.1, 0.2])
    np.savez(f("nokeys.npz"), something=[1.0])
    j("noise2.json", {"eigenvalues": [1, 0.5], "initial": [1, 1], "label_noise": [0.1, 0.2]})
    j("str.json", {"eigenvalues": "abc", "initial": [1, 1]})
    j("list.json", [1, 2])
    j("bad.json", "{not json")
    j("neg.json", {"eigenvalues": [1, -0.5], "initial": [1, 1]})
    j("zero.json", {"eigenvalues": [1, 0.0], "initial": [1, 1]})
    j("mismatch.json", {"eigenvalues": [1, 0.5], "initial": [1]})
    j("extra.json", {"eigenvalues": [1, 0.5], "initial": [1, 1], "bogus": 3})
    j("empty.json", {"eigenvalues": [], "initial": []})
    j("nan.json", '{"eigenvalues": [NaN], "initial": [1]}')
    j("inf.json", '{"eigenvalues": [Infinity], "initial": [1]}')
    j("negnoise.json", {"eigenvalues": [1, 0.5], "initial": [1, 1], "label_noise": -1})
    j("negc.json", {"eigenvalues": [1, 0.5], "initial": [1, -1]})
    j("ds.json", {"eigenvalues": [1, 0.5], "initial": [1, 1], "data_size": 0.5})
    j("nested.json", {"eigenvalues": [[1, 0.5]], "initial": [1, 1]})
    (folder / "empty.txt").write_text("")
    rng = np.random.default_rng(0)
    np.save(f("X.npy"), rng.standard_normal((20, 3)))
    from sgdyn.theory.problem import Problem
    Problem.from_rows(rng.standard_normal((20, 3)), rng.standard_normal(20)).save(f("data.npz"))
    np.save(f("y.npy"), rng.standard_normal(20))
    np.save(f("y5.npy"), np.zeros(5))
    A = np.random.default_rng(1).standard_normal((20, 4))
    np.save(f("Kasym.npy"), A @ A.T + np.triu(np.ones((20, 20)), 1))
    np.save(f("Knpsd.npy"), A @ A.T - np.eye(20))
    np.save(f("Krect.npy"), A)
    np.save(f("Xstr.npy"), np.array([["a", "b"], ["c", "d"]]))
    np.save(f("Xnan.npy"), np.array([[1.0, np.nan], [0.0, 1.0]]))
    np.save(f("X1d.npy"), np.zeros(4))
    np.save(f("Xzero.npy"), np.zeros((4, 2)))
    (folder / "X.csv").write_text("1,2\n3,x\n")
    (folder / "m.txt").write_text("w' = w - alpha*g(w) +\n")
    (folder / "m.json").write_text('{"text": 3}')
    (folder / "mbad.json").write_text('{"F": [[1, 2]], "K": [[1]], "G": [[1]]}')
    (folder / "alpha.csv").write_text("0.1\nfoo\n")
    np.save(f("alpha_nan.npy"), np.array([0.1, np.nan]))
    np.save(f("alpha_short.npy"), np.array([0.1, 0.1]))
    np.save(f("alpha2d.npy"), np.ones((2, 2)) * 0.1)
    (folder / "plain").write_text("x")


def _with(base: list[str], **flags) -> list[str]:
    """``base`` with ``--flag value`` pairs replaced or added (``None`` drops a flag)."""
    out, skip = [], False
    names = {"--" + k.replace("_", "-"): v for k, v in flags.items()}
    for i, a in enumerate(base):
        if skip:
            skip = False
            continue
        if a in names:
            skip = True
            continue
        out.append(a)
    for k, v in names.items():
        if v is not None:
            out += [k, v]
    return out


LOSS = ["loss", "--problem", P, "--alpha", "0.1", "--batch", "2", "--steps", "50"]
SIM = ["simulate", "--problem", P, "--alpha", "0.1", "--batch", "2", "--steps", "20",
       "--runs", "10"]
VAL = ["validate", "--problem", P, "--alpha", "0.1", "--batch", "2", "--steps", "20",
       "--runs", "20"]
CRIT = ["critical-lr", "--problem", P, "--batch", "2"]
RATE = ["rate", "--problem", P, "--alpha", "0.1", "--batch", "2"]
OPT = ["optimize", "--problem", P, "--batch", "2"]
SCH = ["schedule", "optimize", "--problem", P, "--batch", "2", "--steps", "50"]
CB = ["critical-batch", "--problem", P, "--alpha", "0.1"]
PH = ["phases", "--problem", P, "--alpha", "0.1", "--batch", "2"]
GAP = ["momentum-gap", "--problem", P, "--eta", "0.1", "--beta", "0.5", "--batch", "2"]
ADA = ["adaptive-batch", "--problem", P, "--alpha", "0.1", "--steps", "20", "--runs", "4"]
SAM = ["sam-edge", "--eta", "0.1", "--rho", "0.05", "--grad-norm", "1"]
EDGE = ["edge", "--method", "heavy-ball", "--lr", "0.1", "--beta", "0.5", "--sharpness", "10"]
EOS = ["eos", "--eta", "0.1", "--steps", "20", "--n", "8", "--d", "3", "--width", "4"]
LRS = ["lr-sweep", "--model", "matrix-net", "--runs", "2", "--steps", "10", "--width", "4"]
PD = ["phase-diagram", "--problem", P, "--batch", "2", "--n-beta", "3", "--n-alpha", "3",
      "--out", "pd.png"]
CSE = ["check-se", "--problem", "data.npz", "--batch", "2", "--steps", "20"]
SW = ["sweep", "--problem", P, "--axis", "alpha=0.1,0.2", "--quantity", "loss", "--store",
      "s.zarr", "--batch", "2", "--steps", "10"]
PLC = ["plot", "critical-lr", "--problem", P, "--out", "c.png"]
PLL = ["plot", "loss-curves", "--problem", P, "--alpha", "0.1", "--batch", "2", "--steps", "20",
       "--runs", "10", "--out", "l.png"]

CASES: list[tuple[list[str], str]] = [
    # -- problem specifications and files
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1"), "n"),
    (_with(LOSS, problem="powerlaw:nu=-1,kappa=1,n=10"), "nu"),
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1,n=0"), "n"),
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1,n=2.5"), "n"),
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1,n=1e12"), "n"),
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1,n=1e6,groups=1e10"), "groups"),
    (_with(LOSS, problem="powerlaw:nu=abc,kappa=1,n=10"), "nu"),
    (_with(LOSS, problem="powerlaw:nu=1.5,kappa=1,n=10,bogus=1"), "bogus"),
    (_with(LOSS, problem="powerlaw:"), "powerlaw"),
    (_with(LOSS, problem="missing.json"), "missing.json"),
    (_with(LOSS, problem="corrupt.npz"), "corrupt.npz"),
    (_with(LOSS, problem="trunc.npz"), "trunc.npz"),
    (_with(LOSS, problem="dir.json"), "dir.json"),
    (_with(LOSS, problem="complex.npz"), "eigenvalues"),
    (_with(LOSS, problem="bool.npz"), "eigenvalues"),
    (_with(LOSS, problem="noise2.npz"), "label_noise"),
    (_with(LOSS, problem="noise2.json"), "label_noise"),
    (_with(LOSS, problem="nokeys.npz"), "eigenvalues"),
    (_with(LOSS, problem="str.json"), "eigenvalues"),
    (_with(LOSS, problem="list.json"), "list.json"),
    (_with(LOSS, problem="bad.json"), "bad.json"),
    (_with(LOSS, problem="neg.json"), "eigenvalues"),
    (_with(LOSS, problem="zero.json"), "eigenvalues"),
    (_with(LOSS, problem="mismatch.json"), "initial"),
    (_with(LOSS, problem="extra.json"), "bogus"),
    (_with(LOSS, problem="empty.json"), "eigenvalues"),
    (_with(LOSS, problem="nan.json"), "eigenvalues"),
    (_with(LOSS, problem="inf.json"), "eigenvalues"),
    (_with(LOSS, problem="negnoise.json"), "label_noise"),
    (_with(LOSS, problem="negc.json"), "initial"),
    (_with(LOSS, problem="ds.json"), "data_size"),
    (_with(LOSS, problem="nested.json"), "eigenvalues"),
    (_with(LOSS, problem="empty.txt"), "empty.txt"),
    (_with(LOSS, problem="plain"), "plain"),
    (_with(LOSS, problem=""), "problem"),
    # -- hyperparameters
    (_with(LOSS, alpha="-0.1"), "alpha"),
    (_with(LOSS, alpha="0"), "alpha"),
    (_with(LOSS, alpha="nan"), "alpha"),
    (_with(LOSS, alpha="inf"), "alpha"),
    (_with(LOSS, alpha="abc"), "alpha"),
    (_with(LOSS, alpha="1e400"), "alpha"),
    (_with(LOSS, beta="1"), "beta"),
    (_with(LOSS, beta="-1"), "beta"),
    (_with(LOSS, beta="1.5"), "beta"),
    (_with(LOSS, beta="nan"), "beta"),
    (_with(LOSS, batch="0"), "batch"),
    (_with(LOSS, batch="-3"), "batch"),
    (_with(LOSS, batch="2.5"), "batch"),
    (_with(LOSS, batch="nan"), "batch"),
    (_with(LOSS, batch=BIG, data_size="100"), "batch"),
    (_with(LOSS, steps="-1"), "steps"),
    (_with(LOSS, steps="2.5"), "steps"),
    (_with(LOSS, steps="1e12"), "steps"),
    (_with(LOSS, steps="inf"), "steps"),
    (_with(LOSS, tau1="nan"), "tau1"),
    (_with(LOSS, tau1="-1"), "tau1"),
    (_with(LOSS, tau2="inf"), "tau2"),
    (_with(LOSS, label_noise="-1"), "label"),
    (_with(LOSS, label_noise="nan"), "label"),
    (_with(LOSS, data_size="0"), "data"),
    (_with(LOSS, data_size="1.5"), "data"),
    (_with(LOSS, data_size="1"), "batch"),
    (_with(LOSS, sampling="epochs"), "sampling"),
    (_with(LOSS, record="every:0"), "record"),
    (_with(LOSS, record="log:-1"), "record"),
    (_with(LOSS, record="at:5,1000"), "record"),
    (_with(LOSS, record="bogus"), "record"),
    (_with(LOSS, record="at:"), "record"),
    (_with(LOSS, route="exact-data"), "rows"),
    (_with(LOSS, route="q4"), "rows"),
    # -- schedules
    (_with(LOSS, alpha="cosine(-0.1)"), "alpha"),
    (_with(LOSS, alpha="cosine(0.1"), "alpha"),
    (_with(LOSS, alpha="bogus(0.1)"), "bogus"),
    (_with(LOSS, alpha="step(0.1,milestones=[100],factor=-1)"), "alpha"),
    (_with(LOSS, alpha="__import__('os')"), "alpha"),
    (_with(LOSS, alpha="warmup(-5)+cosine(0.1)"), "warmup"),
    (_with(LOSS, alpha="alpha.csv"), "alpha.csv"),
    (_with(LOSS, alpha="alpha_nan.npy"), "alpha"),
    (_with(LOSS, alpha="alpha_short.npy"), "alpha"),
    (_with(LOSS, alpha="alpha2d.npy"), "alpha"),
    (_with(LOSS, alpha="missing.npy"), "missing.npy"),
    (_with(LOSS, beta="linear(0.5,1.2)"), "beta"),
    (_with(LOSS, batch="linear(2,0.1)"), "batch"),
    (_with(LOSS, batch="linear(2,-3)"), "batch"),
    (_with(LOSS, alpha="exp(0.1,gamma=2)"), "alpha"),
    # -- methods
    (_with(LOSS, method="bogus"), "bogus"),
    (_with(LOSS, method="w' = w +"), "method"),
    (_with(LOSS, method="w' = w*w - alpha*g(w)"), "linear"),
    (_with(LOSS, method="v' = v; u' = u; x' = x; y' = y; w' = w - alpha*g(w)"), "state"),
    (_with(LOSS, method="qhm", param="nu=2"), "nu"),
    (_with(LOSS, method="qhm", param="nu"), "param"),
    (_with(LOSS, method="qhm", param="nu=abc"), "nu"),
    (_with(LOSS, param="bogus=1"), "bogus"),
    (_with(LOSS, method="sgd", beta="0.5"), "beta"),
    (_with(LOSS, method_file="missing.txt"), "missing.txt"),
    (_with(LOSS, method_file="m.txt"), "m.txt"),
    (_with(LOSS, method_file="m.json"), "m.json"),
    (_with(LOSS, method_file="mbad.json"), "mbad.json"),
    (_with(LOSS, method_file="dir.json"), "dir.json"),
    (_with(LOSS, method="ema-bogus"), "bogus"),
    # -- simulate and validate
    (_with(SIM, runs="0"), "runs"),
    (_with(SIM, runs="-5"), "runs"),
    (_with(SIM, runs="1e10"), "runs"),
    (_with(SIM, runs="2.5"), "runs"),
    (_with(SIM, steps="1e9", runs="1e6"), "steps"),
    (_with(SIM, seed="-1"), "seed"),
    (_with(SIM, seed="1.5"), "seed"),
    (_with(SIM, seed="9007199254740993.0"), "seed"),
    (_with(SIM, seed="18446744073709551616"), "seed"),
    (_with(SIM, seed="abc"), "seed"),
    (_with(SIM, every="0"), "every"),
    (_with(SIM, every="2", record="every:3"), "record"),
    (_with(SIM, sampler="projected", features="rademacher"), "sampler"),
    (_with(SIM, sampling="without-replacement"), "sampling"),
    (_with(SIM, synthetic="gaussian"), "synthetic"),
    (_with(SIM, data_size="5", synthetic="orthogonal"), "synthetic"),
    (_with(SIM, data_size="10", label_noise="0.1"), "synthetic"),
    (_with(SIM, data_size="50", synthetic="haar"), "synthetic"),
    (_with(VAL, data_size="50", synthetic="gaussian", label_noise="0.1"), "synthetic"),
    (_with(SIM, problem="powerlaw:nu=1.5,kappa=1,n=1e8"), "n"),
    (_with(VAL, runs="0"), "runs"),
    (_with(VAL, z_threshold="0"), "z"),
    (_with(VAL, z_threshold="nan"), "z"),
    (_with(VAL, route="exact-data"), "rows"),
    (_with(VAL, route="q4"), "rows"),
    # -- schedules through simulate, validate, plot loss-curves and sweep
    (_with(SIM, alpha="cosine(0.1"), "alpha"),
    (_with(SIM, beta="linear(0.5,1.5)"), "beta"),
    (_with(SIM, batch="linear(2,0.1)"), "batch"),
    (_with(SIM, alpha="alpha_short.npy"), "alpha"),
    (_with(VAL, alpha="bogus(0.1)"), "bogus"),
    (_with(VAL, batch="double(0.5,every=5)"), "batch"),
    (_with(VAL, alpha="alpha_nan.npy"), "alpha"),
    (_with(VAL, beta="cosine(-1.5)"), "beta"),
    (_with(PLL, alpha="cosine(0.1)") + ["--asymptotes"], "asymptotes"),
    (_with(PLL, beta="linear(0.5,1.5)"), "beta"),
    (_with(PLL, batch="2.5"), "batch"),
    (_with(PLL, alpha="warmup(5)+"), "alpha"),
    (_with(SW, axis="alpha=cosine(0.1);bogus(1)"), "bogus"),
    (_with(SW, axis="batch=2;linear(4,0.1)"), "batch"),
    (_with(SW, axis="peak=0.1,0.2", alpha="cosine({top})"), "{top}"),
    (_with(SW, axis="peak=0.1,nan", alpha="cosine({peak})"), "peak"),
    (_with(SW, axis="peak=0.1,0.2", alpha="cosine({peak})", quantity="singularities"),
     "singularities"),
    (_with(SW, axis="steps=cosine(1)"), "steps"),
    # -- thresholds, rates, optima
    (_with(CRIT, batch="0"), "batch"),
    (_with(CRIT, beta="1"), "beta"),
    (_with(CRIT, route="exact-data"), "rows"),
    (_with(CRIT, route="q4-closure"), "rows"),
    (_with(RATE, alpha="-1"), "alpha"),
    (_with(RATE, beta="-1.0"), "beta"),
    (_with(OPT, steps="0", objective="horizon"), "steps"),
    (_with(OPT, objective="horizon"), "steps"),
    (_with(OPT, batch="0"), "batch"),
    (_with(SCH, steps="1"), "steps"),
    (_with(SCH, knots="1"), "knots"),
    (_with(SCH, runs="-1"), "runs"),
    (_with(SCH, beta="1"), "beta"),
    (_with(SCH, beta_range="0.5"), "beta-range"),
    (_with(SCH, beta_range="0.9,0.1") + ["--momentum"], "--beta-range"),
    (_with(SCH, method="sgd") + ["--momentum"], "momentum"),
    (_with(SCH, out="fig.txt"), "out"),
    (_with(CB, alpha="0"), "alpha"),
    (_with(CB, beta="2"), "beta"),
    (_with(PH, max_deviation="-1"), "deviation"),
    (_with(PH, max_deviation="nan"), "deviation"),
    # -- momentum gap, adaptive batches
    (_with(GAP, eta="-1"), "eta"),
    (_with(GAP, beta="1"), "beta"),
    (_with(GAP, horizon="1e12"), "horizon"),
    (_with(GAP, etas="0.1,abc"), "etas"),
    (_with(GAP, out="outdir.png"), "out"),
    (_with(GAP, out="plain/x.png"), "out"),
    (_with(GAP, out="x.bogus"), "out"),
    (_with(ADA, max_batch=BIG), "max-batch"),
    (_with(ADA, batch="0"), "batch"),
    (_with(ADA, theta="-1"), "theta"),
    (_with(ADA, eta_test="nan"), "eta"),
    (_with(ADA, runs="0"), "runs"),
    (_with(ADA, steps="1e12"), "steps"),
    (_with(ADA, out="outdir.png"), "out"),
    # -- edges, EoS, lr sweeps
    (_with(SAM, eta="-1"), "eta"),
    (_with(SAM, rho="nan"), "rho"),
    (_with(SAM, grad_norm="-1"), "grad"),
    (_with(EDGE, lr="0"), "lr"),
    (_with(EDGE, beta="1"), "beta"),
    (_with(EDGE, sharpness="-1"), "sharpness"),
    (_with(EOS, eta="-0.1"), "eta"),
    (_with(EOS, steps="1e12"), "steps"),
    (_with(EOS, n="0"), "n"),
    (_with(EOS, width="1e9"), "width"),
    (_with(EOS, every="0"), "every"),
    (_with(EOS, out="outdir.png"), "out"),
    (_with(LRS, runs="0"), "runs"),
    (_with(LRS, ratios="abc"), "ratios"),
    (_with(LRS, width="1e9"), "width"),
    (_with(LRS, steps="1e12"), "steps"),
    # -- phase diagrams and plots
    (_with(PD, n_alpha="1e9"), "n-alpha"),
    (_with(PD, n_beta="0"), "n-beta"),
    (_with(PD, beta_range=None) + ["--beta-range", "0.9", "0.1"], "beta-range"),
    (_with(PD, beta_range=None) + ["--beta-range", "-1", "0.5"], "beta-range"),
    (_with(PD, out="outdir.png"), "out"),
    (_with(PD, out="plain/x.png"), "out"),
    (_with(PD, out="pd.bogus"), "out"),
    (_with(PLC, out="outdir.png"), "out"),
    (_with(PLL, runs="0"), "runs"),
    (_with(PLL, out="plain/l.png"), "out"),
    # -- data problems
    (["problem", "from-data", "missing.npy", "y.npy", "--out", "p.npz"], "missing.npy"),
    (["problem", "from-data", "X.npy", "y5.npy", "--out", "p.npz"], "y"),
    (["problem", "from-data", "Xstr.npy", "y.npy", "--out", "p.npz"], "X"),
    (["problem", "from-data", "Xnan.npy", "y.npy", "--out", "p.npz"], "X"),
    (["problem", "from-data", "X1d.npy", "y.npy", "--out", "p.npz"], "X"),
    (["problem", "from-data", "Xzero.npy", "y5.npy", "--out", "p.npz"], "X"),
    (["problem", "from-data", "X.csv", "y.npy", "--out", "p.npz"], "X.csv"),
    (["problem", "from-data", "X.npy", "y.npy", "--out", "outdir.png"], "out"),
    (["problem", "from-data", "X.npy", "y.npy", "--out", "plain/p.npz"], "out"),
    (["problem", "from-data", "X.npy", "y.npy", "--out", "p.bogus"], "out"),
    (["problem", "from-kernel", "Kasym.npy", "y.npy", "--out", "p.npz"], "K must be symmetric"),
    (["problem", "from-kernel", "Knpsd.npy", "y.npy", "--out", "p.npz"],
     "K must be positive semi-definite"),
    (["problem", "from-kernel", "Krect.npy", "y.npy", "--out", "p.npz"], "K must be a square"),
    (["problem", "from-kernel", "Knpsd.npy", "y5.npy", "--out", "p.npz"], "y file"),
    (["problem", "from-kernel", "Knpsd.npy", "y.npy", "--f0", "y5.npy", "--out", "p.npz"], "f0"),
    (["problem", "from-kernel", "Knpsd.npy", "y.npy", "--psd-tol", "2", "--out", "p.npz"],
     "--psd-tol"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y5.npy", "--depth", "1",
      "--width", "4", "--activation", "relu", "--out", "p.npz"], "--target"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y.npy", "--depth", "0",
      "--width", "4", "--activation", "relu", "--out", "p.npz"], "depth"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y.npy", "--depth", "1",
      "--width", "100000", "--activation", "relu", "--out", "p.npz"], "width"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y.npy", "--depth", "1",
      "--width", "4", "--activation", "gelu", "--out", "p.npz"], "activation"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y.npy", "--depth", "1",
      "--width", "4", "--activation", "relu", "--parametrization", "mup", "--out", "p.npz"],
     "parametrization"),
    (["problem", "from-network", "--data", "X.npy", "--target", "y.npy", "--depth", "1",
      "--width", "4", "--activation", "relu", "--weight-std", "0", "--out", "p.npz"],
     "--weight-std"),
    (["problem", "from-network", "--data", "Xnan.npy", "--target", "y.npy", "--depth", "1",
      "--width", "4", "--activation", "relu", "--out", "p.npz"], "--data"),
    (["problem", "show", "corrupt.npz"], "corrupt.npz"),
    (["problem", "show", "missing.npz"], "missing.npz"),
    (_with(CSE, problem=P), "rows"),
    (_with(CSE, batch="0"), "batch"),
    (_with(CSE, steps="0"), "steps"),
    # -- sweeps
    (_with(SW, axis="alpha="), "axis"),
    (_with(SW, axis="bogus=1,2"), "bogus"),
    (_with(SW, axis="alpha=abc"), "alpha"),
    (_with(SW, axis="alpha=-1,0.1"), "alpha"),
    (_with(SW, axis="batch=1e12"), "batch"),
    (_with(SW, store="plain/s.zarr"), "store"),
    (_with(SW, chunk="0"), "chunk"),
    (_with(SW, workers="0"), "workers"),
    # -- the remaining commands
    (["derive", "--method", "bogus"], "bogus"),
    (["derive", "--method", "qhm", "--param", "nu=5"], "nu"),
    (["methods", "--method", "bogus"], "bogus"),
    (["methods", "--method-file", "missing.txt"], "missing.txt"),
]
