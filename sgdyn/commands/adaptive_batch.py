"""``sgdyn adaptive-batch``: Monte Carlo of adaptive batch-size tests against constant batches,
with the theory along each run's own realised schedule (``simulate.adaptive_check``) and the
theory's norm-test prediction."""
from __future__ import annotations

from sgdyn.cli import add_output_args, print_result, problem_from_args, seed_arg

COMMAND = "adaptive-batch"
HELP = ("simulate adaptive batch-size tests (norm, inner-product, orthogonality, augmented) "
        "against constant batches")
_METHOD = {"sgd": "sgd", "heavy-ball": "heavy-ball"}   # optimisers the moment theory covers
_GAP_NOTE = ("gap: mean over runs of (simulated loss - theory along the run's own realised "
             "schedule). The adaptive runs chose their schedule from the same noise that moved "
             "them, so the gap measures that selection effect; it is not a failure of the theory. "
             "replay: fresh runs along the same schedules fixed in advance, for which the theory "
             "is exact (Gaussian features): their gap must vanish within its standard errors. "
             "batch_bias: simulated mean schedule - mean-field schedule (the rule fed with the "
             "population request at the root-mean-square error), the bias of a running maximum "
             "of noisy requests. Where the loss is heavy-tailed (multiplicative noise, no label "
             "noise, near divergence) standard errors understate the spread.")


def register(sub):
    from sgdyn.simulate.adaptive import FEATURES, OPTIMIZERS, TESTS
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--problem", required=True,
                   help="file (.json/.npz with eigenvalues, initial[, label_noise]) "
                        "or powerlaw:nu=..,kappa=..,n=..")
    p.add_argument("--label-noise", type=float, default=None, help="label-noise variance sigma^2")
    p.add_argument("--alpha", type=float, required=True, help="learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--beta", type=float, default=0.0, help="momentum (heavy-ball only)")
    p.add_argument("--test", choices=TESTS, default="norm")
    p.add_argument("--batch", type=float, default=2, help="initial batch (>= 2)")
    p.add_argument("--max-batch", type=float, default=4096, help="largest batch")
    p.add_argument("--eta-test", type=float, default=0.1, help="norm test eta (default 0.1)")
    p.add_argument("--theta", type=float, default=0.1, help="inner-product test theta")
    p.add_argument("--nu", type=float, default=0.1, help="orthogonality test nu")
    p.add_argument("--features", choices=FEATURES, default="gaussian")
    p.add_argument("--steps", type=float, required=True, help="steps of the adaptive run")
    p.add_argument("--runs", type=float, default=200, help="independent runs (default 200)")
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--constant", default=None,
                   help="comma-separated constant batches to compare (default: the initial and "
                        "the maximum batch), each run for the adaptive run's mean sample budget")
    add_output_args(p)
    p.add_argument("--out", default=None, help="figure file (.png/.svg/.pdf)")
    p.set_defaults(func=run, data_size=None)


def _summary(run):
    loss, loss_se = run.mean_stderr("loss")
    batch, batch_se = run.mean_stderr("batch")
    return {"loss_mean": loss.tolist(), "loss_stderr": loss_se.tolist(),
            "batch_mean": batch.tolist(), "batch_stderr": batch_se.tolist(),
            "samples_mean": run.samples.mean(axis=0).tolist(), "diverged_runs": run.diverged_runs}


def run(args) -> int:
    import numpy as np
    from sgdyn.plots_equivalence import check_out, plot_adaptive
    from sgdyn.simulate.adaptive import ratio_of_means, simulate_adaptive
    from sgdyn.theory import checks
    from sgdyn.theory.batching import norm_test_prediction
    from sgdyn.theory.noise import GAUSSIAN
    out = check_out(args.out) if args.out else None
    problem = problem_from_args(args)
    steps = checks.integer("steps", args.steps, 1)
    runs = checks.integer("runs", args.runs, 2)
    seed = checks.integer("seed", args.seed, 0)
    b0 = checks.integer("batch", args.batch, 2)
    b_max = checks.integer("max_batch", args.max_batch, 2)
    common = dict(optimizer=args.optimizer, beta=args.beta, test=args.test, eta_test=args.eta_test,
                  theta=args.theta, nu=args.nu, features=args.features)
    adaptive = simulate_adaptive(problem, args.alpha, steps, runs, seed, batch=b0,
                                 max_batch=b_max, **common)
    budget = float(adaptive.samples[:, -1].mean() + adaptive.batch[:, -2].mean())
    if args.constant is None:
        constants = sorted({b0, b_max})
    else:
        try:
            constants = [checks.integer("constant", float(v), 2) for v in args.constant.split(",")]
        except ValueError as exc:
            raise ValueError(f"constant must be comma-separated integers >= 2 ({exc})") from None
    result = {"adaptive": {"test": args.test, **_summary(adaptive)}, "constant": []}
    curves = []
    predicted = None
    if args.test == "norm" and args.optimizer in _METHOD and args.features == "gaussian":
        pred = norm_test_prediction(problem, args.alpha, steps, beta=args.beta,
                                    method=_METHOD[args.optimizer], batch=b0, max_batch=b_max,
                                    eta_test=args.eta_test, noise=GAUSSIAN)
        predicted = pred.batch
        ratio, ratio_se = ratio_of_means(adaptive.norm_numerator, adaptive.grad_sq * args.eta_test ** 2)
        result["theory"] = {
            "mean_field_batch": pred.batch.tolist(), "loss": pred.loss.tolist(),
            "population_batch": pred.population_batch.tolist(), "test_batch": pred.test_batch.tolist(),
            "simulated_ratio_of_means": ratio.tolist(), "simulated_ratio_stderr": ratio_se.tolist(),
            "note": "ratio of expectations E[sum_j Var_i G_ij] / (eta^2 E||g||^2); the simulated "
                    "schedule is a running maximum of noisy requests and lies above the "
                    "mean-field schedule"}
    check = None
    if args.optimizer in _METHOD:
        from sgdyn.simulate.adaptive_check import check_adaptive
        check = check_adaptive(problem, adaptive)
        predicted = check.mean_field_batch
        result["along_schedules"] = {**check.to_dict(), "note": _GAP_NOTE}
    curves.append((f"adaptive ({args.test})", adaptive, predicted))
    for b in constants:
        n = int(min(max(1, np.ceil(budget / b)), 10 * steps))
        const = simulate_adaptive(problem, args.alpha, n, runs, seed, batch=b, adaptive=False,
                                  **common)
        result["constant"].append({"batch": b, "steps": n, **_summary(const)})
        curves.append((f"constant b = {b}", const, None))
    if out:
        plot_adaptive(curves, out, f"{problem.name}: {args.optimizer}, alpha {args.alpha:g}")
        result["figure"] = out
    if print_result(args, result):
        return 0
    print(f"problem {problem.name}: {args.optimizer}, alpha {args.alpha:g}, {args.test} test, "
          f"{runs} runs, seed {seed}")
    for label, r, _ in curves:
        loss, se = r.mean_stderr("loss")
        print(f"  {label:>24}: {r.steps} steps, {r.samples[:, -1].mean():.6g} samples, final loss "
              f"{loss[-1]:.6g} +- {se[-1]:.2g}, final batch {r.batch[:, -1].mean():.6g}")
    if "theory" in result:
        print(f"  theory (mean field) final batch {predicted[-1]}, "
              f"population norm-test batch {result['theory']['population_batch'][-1]:.6g}")
    if check is not None:
        _print_check(check, steps)
    if out:
        print(f"  figure: {out}")
    return 0


def _print_check(c, steps: int) -> None:
    verdict = "within 4 standard errors" if c.replay_max_z < 4 else \
        "NOT within 4 standard errors (a heavy-tailed loss, or a bug)"
    print(f"  theory along each run's own schedule ({c.distinct_schedules} distinct schedules; "
          f"{c.approximation})")
    print(f"    final loss: simulated {c.loss_mean[-1]:.6g} +- {c.loss_stderr[-1]:.2g}, theory "
          f"{c.theory_mean[-1]:.6g}")
    print(f"    replay (fresh noise, the same schedules fixed in advance, seed {c.replay_seed}): "
          f"max |z| {c.replay_max_z:.2f} at t = {c.replay_max_z_step} over {steps} steps: {verdict}")
    print(f"    adaptive gap (simulated - theory along its own schedule) at t = {steps}: "
          f"{c.gap[-1]:.3g} +- {c.gap_stderr[-1]:.2g} ({100 * c.relative_gap:.3g} % of the "
          f"theory), max |z| {c.gap_max_z:.2f} at t = {c.gap_max_z_step}: the selection effect of "
          f"choosing the batch from the same noise (measured, not a failure)")
    t = c.mean_field_batch.size - 1
    print(f"  running-max bias of the mean schedule at t = {t}: simulated {c.batch_mean[t]:.6g} +- "
          f"{c.batch_stderr[t]:.2g}, mean field {c.mean_field_batch[t]:.6g} ({c.test} test): bias "
          f"{c.batch_bias[t]:.3g} +- {c.batch_stderr[t]:.2g}")
