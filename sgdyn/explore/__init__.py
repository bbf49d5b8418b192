"""An interactive explorer of the SE theory: the (alpha, beta) convergence region you can click,
the loss curve with its asymptotes, the critical learning rate against the batch, the method's
conditions, a Monte Carlo check and the equivalent ``sgdyn`` command, all updated live.

In a notebook: ``from sgdyn.explore import explorer; explorer("powerlaw:nu=1.5,kappa=3,n=1000")``
(the returned ``Explorer`` displays itself); in a browser: ``sgdyn explore [--problem P]``.
Both need the optional extra (``pip install -e ".[explore]"``: Panel, on Bokeh). The numbers
come from ``sgdyn.explore.views``, which imports no widget library (docs/explore.md).
"""
from __future__ import annotations

from sgdyn.explore.views import Settings

EXTRA_HINT = 'the explorer needs the optional extra: pip install -e ".[explore]" (Panel)'


def _panel():
    try:
        import panel as pn
    except ImportError:
        raise ValueError(EXTRA_HINT) from None
    return pn


def explorer(problem: str | None = None, settings: Settings | None = None, **values):
    """The explorer for ``problem`` (a ``powerlaw:`` spec or a problem file) and initial
    ``values`` (any ``Settings`` field: method, alpha, beta, batch, data_size, tau1, tau2,
    steps), or for saved ``settings``. Returns a ``sgdyn.explore.app.Explorer``: in Jupyter it
    displays itself; ``.layout`` is the Panel object, ``.values`` the numbers it shows."""
    pn = _panel()
    s = settings or Settings()
    if problem is not None:
        values["problem"] = problem
    s = s.replace(**values) if values else s
    pn.extension("katex")
    from sgdyn.explore.app import Explorer
    return Explorer(s)


def free_port(address: str = "127.0.0.1") -> int:
    """A port that nothing listens on at ``address`` now (the OS picks it)."""
    import socket
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def serve(settings: Settings | None = None, *, port: int = 0, address: str = "127.0.0.1",
          show: bool = True, threaded: bool = False):
    """Serve the explorer (one ``Explorer`` per browser session) on ``address:port`` (port 0:
    a free one). ``threaded``: start in a background thread and return it (``.stop()`` ends
    it); otherwise return the started, not yet running, Bokeh server (the caller runs its
    ``io_loop``)."""
    pn = _panel()
    from sgdyn.explore.app import Explorer
    pn.extension("katex")

    def page():
        return Explorer(settings).layout
    port = port or free_port(address)
    origins = [f"{host}:{port}" for host in (address, "localhost", "127.0.0.1")]
    if threaded:
        return pn.serve({"/": page}, port=port, address=address, show=False, threaded=True,
                        websocket_origin=origins, title="sgdyn explore")
    server = pn.serve({"/": page}, port=port, address=address, show=False, start=False,
                      websocket_origin=origins, title="sgdyn explore")
    server.start()
    if show:
        server.io_loop.add_callback(server.show, "/")
    return server
