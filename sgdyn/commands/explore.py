"""``sgdyn explore``: the interactive explorer in the browser (``sgdyn.explore``; needs the
optional extra ``explore``). The settings are checked before the server starts, so bad input
is one line and exit 2 as everywhere else."""
from __future__ import annotations

COMMAND = "explore"
HELP = "interactive explorer in the browser: region, loss curve, critical lr (extra 'explore')"


def register(sub):
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--problem", default=None,
                   help="powerlaw:nu=..,kappa=..,n=.. or a .json/.npz problem file "
                        "(default powerlaw:nu=1.5,kappa=3,n=1000)")
    p.add_argument("--settings", default=None,
                   help="a settings JSON file saved by the explorer (the flags below override it)")
    p.add_argument("--method", default=None, help="a shipped method (default heavy-ball)")
    for name, kind in (("alpha", float), ("beta", float), ("batch", int), ("data-size", int),
                       ("tau1", float), ("tau2", float), ("steps", int)):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"initial {name}")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--stop-after", type=float, default=None,
                   help="stop the server after this many seconds (scripts, tests)")
    p.set_defaults(func=run)


def settings_from_args(args):
    from sgdyn.explore.views import Settings, problem_of, run_of
    s = Settings()
    if args.settings is not None:
        try:
            with open(args.settings, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"--settings {args.settings!r} cannot be read: "
                             f"{exc.strerror or exc}") from None
        s = Settings.from_json(text)
    changes = {k: v for k, v in (("problem", args.problem), ("method", args.method),
                                 ("alpha", args.alpha), ("beta", args.beta),
                                 ("batch", args.batch), ("data_size", args.data_size),
                                 ("tau1", args.tau1), ("tau2", args.tau2),
                                 ("steps", args.steps)) if v is not None}
    s = s.replace(**changes)
    problem_of(s)
    run_of(s)            # every hyperparameter checked by the run description
    return s


def run(args) -> int:
    from sgdyn.theory import checks
    port = checks.integer("port", args.port, 0)
    if port > 65535:
        raise ValueError(f"--port must be at most 65535, got {port}")
    if args.stop_after is not None:
        checks.positive("stop_after", args.stop_after)
    s = settings_from_args(args)
    from sgdyn.explore import serve
    server = serve(s, port=port, address=args.address, show=not args.no_browser)
    print(f"sgdyn explore: serving http://{args.address}:{server.port}/ (Ctrl-C stops)",
          flush=True)
    if args.stop_after is not None:
        server.io_loop.call_later(args.stop_after, server.io_loop.stop)
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0
