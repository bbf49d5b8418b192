"""The explorer's user interface: Panel widgets and Bokeh figures over ``sgdyn.explore.views``.

Every number comes from the compute layer (``views``); this module only reads the controls into
a ``Settings``, asks ``views.stale`` which views changed, draws them, and keeps the page alive:

* served (``sgdyn explore``), a burst of control changes is coalesced into one update (the latest
  settings win), the region is drawn first on ``views.COARSE_GRID`` without the optimum and then,
  in a later tick with a spinner and a status line, on ``views.FINE_GRID`` with the optimum; the
  Monte Carlo button runs in a later tick too, so the busy state reaches the page first;
* in a notebook or a test (no server session) every update is computed at once;
* any error of a view (bad input, a divergent point, an unreadable problem file) is shown in the
  page's error box and that view is retried on the next change; the other views stay.
"""
from __future__ import annotations

import html
import json
import os
import sys
import tempfile

import numpy as np
import panel as pn
from bokeh.events import Tap
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure
from bokeh.plotting.contour import contour_data

from sgdyn.explore import views
from sgdyn.explore.views import Settings
from sgdyn.plots import OKABE_ITO

COALESCE_MS = 30        # control changes within this window become one update (served page)
SOURCES = ("power law", "spec or file")
ALPHA_STEPS = 1000      # slider resolution over [0, 1.05 max alpha_crit]


def _number_or_none(name: str, text: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number or empty (the default), got {text!r}") from None


def _power_law_fields(spec: str):
    """(nu, kappa, n) of a plain ``powerlaw:nu=..,kappa=..,n=..`` spec, else None."""
    if not spec.startswith("powerlaw:"):
        return None
    try:
        items = dict(item.split("=", 1) for item in spec[len("powerlaw:"):].split(","))
        if set(items) != {"nu", "kappa", "n"}:
            return None
        return float(items["nu"]), float(items["kappa"]), int(float(items["n"]))
    except ValueError:
        return None


class Explorer:
    """The explorer for one user: ``layout`` is the page (displays itself in Jupyter),
    ``settings`` what it shows, ``values`` the numbers it displays (the readout)."""

    def __init__(self, settings: Settings | None = None):
        s = settings or Settings()
        self.settings: Settings | None = None
        self.failed: set[str] = set()
        self.values: dict = {}
        self.errors: dict = {}
        self._pending: Settings | None = None
        self._build_widgets(s)
        self._build_figures()
        self._build_layout()
        for w in self._inputs:
            w.param.watch(self._on_control, "value")
        self.mc_button.on_click(self._on_monte_carlo)
        self.upload.param.watch(self._on_upload, "value")
        self.region_fig.on_event(Tap, self._on_tap)
        self.apply(self.read())

    # -- construction ------------------------------------------------------------------------
    def _build_widgets(self, s: Settings) -> None:
        pl = _power_law_fields(s.problem)
        self.source = pn.widgets.RadioButtonGroup(options=list(SOURCES),
                                                  value=SOURCES[0] if pl else SOURCES[1])
        nu, kappa, n = pl or (1.5, 3.0, 1000)
        self.nu = pn.widgets.FloatInput(label="nu", value=nu, step=0.1, width=95)
        self.kappa = pn.widgets.FloatInput(label="kappa", value=kappa,
                                           step=0.1, width=95)
        self.n = pn.widgets.IntInput(label="modes n", value=n, step=100, width=95)
        self.spec = pn.widgets.TextInput(label="problem spec or file (.json / .npz on the server)",
                                         value="" if pl else s.problem)
        self.upload = pn.widgets.FileInput(accept=".json,.npz")
        from sgdyn.theory.catalogue import METHODS
        methods = list(METHODS) + ([s.method] if s.method not in METHODS else [])
        self.method = pn.widgets.Select(label="method", options=methods, value=s.method)
        self.alpha = pn.widgets.FloatSlider(label="alpha (learning rate)", start=0.0,
                                            end=max(1.0, 2 * s.alpha), value=s.alpha,
                                            step=max(1.0, 2 * s.alpha) / ALPHA_STEPS,
                                            format="0.[0000]")
        self.beta = pn.widgets.FloatSlider(label="beta (momentum)", start=-0.99, end=0.99,
                                           value=s.beta, step=0.01)
        self.batch = pn.widgets.IntInput(label="batch b", value=s.batch, start=1, width=95)
        self.data_size = pn.widgets.IntInput(label="data size N (0: i.i.d.)", start=0,
                                             value=s.data_size or 0, width=95)
        self.steps = pn.widgets.IntInput(label="horizon T", value=s.steps, start=1, width=95)
        self.tau1 = pn.widgets.TextInput(label="tau1 (empty: default)", width=95,
                                         value="" if s.tau1 is None else repr(s.tau1))
        self.tau2 = pn.widgets.TextInput(label="tau2 (empty: default)", width=95,
                                         value="" if s.tau2 is None else repr(s.tau2))
        self.mc_button = pn.widgets.Button(label=f"Monte Carlo ({views.MC_RUNS} runs)", color="primary")
        self.download = pn.widgets.FileDownload(callback=self._settings_file,
                                                filename="sgdyn-explore.json",
                                                label="settings as JSON")
        self._inputs = (self.source, self.nu, self.kappa, self.n, self.spec, self.method,
                        self.alpha, self.beta, self.batch, self.data_size, self.steps,
                        self.tau1, self.tau2)

    def _build_figures(self) -> None:
        tools = "pan,wheel_zoom,box_zoom,reset,save"
        self.region_fig = figure(width=560, height=420, tools="tap," + tools,
                                 x_axis_label="learning rate alpha (heavy ball: PyTorch lr)",
                                 y_axis_label="momentum beta",
                                 title="convergence region: log10(1 - rho), L_t ~ rho^t")
        self.mapper = LinearColorMapper(palette=Viridis256, nan_color=(0, 0, 0, 0))
        self.region_image = ColumnDataSource(dict(image=[np.full((2, 2), np.nan)], x=[0.0],
                                                  y=[0.0], dw=[1.0], dh=[1.0]))
        self.region_fig.image("image", x="x", y="y", dw="dw", dh="dh", source=self.region_image,
                              color_mapper=self.mapper)
        self.region_fig.add_layout(ColorBar(color_mapper=self.mapper, width=10), "right")
        self.contours = self.region_fig.contour(
            [0.0, 1.0], [0.0, 1.0], np.zeros((2, 2)), levels=[0.5], fill_color=None,
            line_color="black", line_alpha=0.35, line_width=0.6)
        self.contours.fill_renderer.visible = False     # lines only: the image is the shading
        self.edge_src = ColumnDataSource(dict(x=[], y=[]))
        self.boundary_src = ColumnDataSource(dict(x=[], y=[]))
        self.optimum_src = ColumnDataSource(dict(x=[], y=[]))
        self.point_src = ColumnDataSource(dict(x=[], y=[]))
        self.region_fig.line("x", "y", source=self.edge_src, color=OKABE_ITO["black"],
                             line_dash="dashed", line_width=1.5,
                             legend_label="noiseless mode edge (Schur-Cohn)")
        self.region_fig.line("x", "y", source=self.boundary_src, color=OKABE_ITO["vermillion"],
                             line_width=2.5, legend_label="noise boundary U(1) = 1")
        self.region_fig.scatter("x", "y", source=self.optimum_src, marker="star", size=18,
                                color=OKABE_ITO["orange"], line_color="black",
                                legend_label="rate optimum")
        self.region_fig.scatter("x", "y", source=self.point_src, marker="circle", size=11,
                                fill_color="white", line_color="black", line_width=2,
                                legend_label="current point (click to move)")
        self.region_fig.legend.location = "bottom_left"
        self.region_fig.legend.label_text_font_size = "8pt"
        self.region_fig.legend.background_fill_alpha = 0.7

        self.curve_fig = figure(width=560, height=360, x_axis_type="log", y_axis_type="log",
                                tools=tools, x_axis_label="step t",
                                y_axis_label="expected loss L_t", title="loss curve")
        self.band_src = ColumnDataSource(dict(x=[], lo=[], hi=[], mean=[]))
        self.curve_fig.varea("x", "lo", "hi", source=self.band_src, color=OKABE_ITO["sky"],
                             alpha=0.5, legend_label="Monte Carlo mean +- 2 s.e.")
        self.curve_fig.line("x", "mean", source=self.band_src, color=OKABE_ITO["blue"],
                            line_width=1.0)
        self.curve_src = ColumnDataSource(dict(x=[], y=[]))
        self.curve_fig.line("x", "y", source=self.curve_src, color="black", line_width=2,
                            legend_label="theory (SE recursion)")
        self.asym_src = {name: ColumnDataSource(dict(x=[], y=[])) for name in ("signal", "noise")}
        for (name, src), (dash, colour) in zip(self.asym_src.items(),
                                               (("dashed", "vermillion"), ("dashdot", "green"))):
            self.curve_fig.line("x", "y", source=src, line_dash=dash, color=OKABE_ITO[colour],
                                line_width=1.5, legend_label=f"{name} asymptote")
        self.transition = Span(dimension="height", line_color=OKABE_ITO["grey"], line_width=1.5,
                               location=1.0, visible=False)
        self.curve_fig.add_layout(self.transition)
        self.curve_fig.legend.location = "bottom_left"
        self.curve_fig.legend.label_text_font_size = "8pt"

        self.critical_fig = figure(width=460, height=330, x_axis_type="log", y_axis_type="log",
                                   tools=tools, x_axis_label="batch size b",
                                   y_axis_label="alpha_crit / (1 - beta)",
                                   title="critical learning rate against the batch")
        self.critical_src = ColumnDataSource(dict(x=[], y=[]))
        self.critical_now = ColumnDataSource(dict(x=[], y=[]))
        self.critical_fig.line("x", "y", source=self.critical_src, color=OKABE_ITO["blue"],
                               line_width=2)
        self.critical_fig.scatter("x", "y", source=self.critical_src, color=OKABE_ITO["blue"],
                                  size=4)
        self.critical_fig.scatter("x", "y", source=self.critical_now, marker="circle", size=11,
                                  fill_color="white", line_color="black", line_width=2,
                                  legend_label="current batch")
        self.critical_edge = Span(dimension="width", line_color="black", line_dash="dotted",
                                  location=1.0)
        self.critical_fig.add_layout(self.critical_edge)
        self.critical_fig.legend.location = "bottom_right"

    def _build_layout(self) -> None:
        self.error_box = pn.pane.HTML("", visible=False, sizing_mode="stretch_width",
                                      styles={"background": "#f8d7da", "color": "#721c24",
                                              "border-radius": "4px", "padding": "0 8px"})
        self.spinner = pn.indicators.LoadingSpinner(value=False, size=22)
        self.status = pn.pane.Markdown("ready", margin=(0, 8))
        self.readout = pn.pane.HTML("", sizing_mode="stretch_width")
        self.conditions = pn.pane.LaTeX("", renderer="katex", sizing_mode="stretch_width")
        self.feedback = pn.pane.LaTeX("", renderer="katex", sizing_mode="stretch_width")
        self.update_text = pn.pane.Markdown("")
        self.mc_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.export = pn.pane.Markdown("", sizing_mode="stretch_width")
        controls = pn.Column(
            "### problem", self.source, pn.Row(self.nu, self.kappa, self.n), self.spec,
            self.upload, "### method and hyperparameters", self.method, self.alpha, self.beta,
            pn.Row(self.batch, self.data_size, self.steps), pn.Row(self.tau1, self.tau2),
            self.mc_button, self.download, width=330)
        self.layout = pn.Column(
            pn.Row(pn.pane.Markdown("## sgdyn explore"), self.spinner, self.status),
            self.error_box,
            pn.Row(controls,
                   pn.Column(pn.pane.Bokeh(self.region_fig), pn.pane.Bokeh(self.curve_fig)),
                   pn.Column(self.readout, pn.pane.Bokeh(self.critical_fig), self.mc_text)),
            pn.Row(pn.Column("### the method's conditions", self.update_text, self.conditions,
                             self.feedback,
                             width=620),
                   pn.Column("### the same in the terminal", self.export, width=620)))

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.layout._repr_mimebundle_(include, exclude)

    # -- reading the controls ----------------------------------------------------------------
    def read(self) -> Settings:
        """The settings the controls hold (ValueError naming the control at fault)."""
        if self.source.value == SOURCES[0]:
            if self.nu.value is None or self.kappa.value is None or self.n.value is None:
                raise ValueError("nu, kappa and n must be numbers")
            problem = views.power_law_spec(self.nu.value, self.kappa.value, self.n.value)
        else:
            problem = (self.spec.value or "").strip()
        for name in ("batch", "steps", "data_size"):
            if getattr(self, name).value is None:
                raise ValueError(f"{name} must be a whole number")
        return Settings(problem=problem, method=self.method.value, alpha=float(self.alpha.value),
                        beta=float(self.beta.value), batch=int(self.batch.value),
                        data_size=int(self.data_size.value) or None, steps=int(self.steps.value),
                        tau1=_number_or_none("tau1", self.tau1.value),
                        tau2=_number_or_none("tau2", self.tau2.value))

    @property
    def served(self) -> bool:
        doc = pn.state.curdoc
        return doc is not None and doc.session_context is not None

    def _later(self, callback, ms: int = 0) -> None:
        """Run ``callback`` after the current one has returned (its model changes, e.g. a busy
        state, reach the page first); at once when not served."""
        if self.served:
            pn.state.curdoc.add_timeout_callback(callback, ms)
        else:
            callback()

    # -- events --------------------------------------------------------------------------------
    def _on_control(self, event) -> None:
        try:
            new = self.read()
        except ValueError as exc:
            self._show_errors({"controls": str(exc)})
            return
        first = self._pending is None
        self._pending = new
        if first:
            self._later(self._apply_pending, COALESCE_MS)

    def _apply_pending(self) -> None:
        new, self._pending = self._pending, None
        if new is not None:
            self.apply(new)

    def _on_tap(self, event) -> None:
        if event.x is None or event.y is None:
            return
        from sgdyn.theory.methods import get_method
        self.alpha.value = float(np.clip(event.x, self.alpha.step, self.alpha.end))
        try:
            momentum = get_method(self.method.value).has_momentum
        except ValueError:
            momentum = True      # the method's own error shows once the views update
        if momentum:             # a method without momentum keeps beta = 0 (its one-row region)
            self.beta.value = float(np.clip(round(event.y, 2), self.beta.start, self.beta.end))

    def _on_upload(self, event) -> None:
        if self.upload.value is None:
            return
        name = os.path.basename(self.upload.filename or "problem.json")
        folder = tempfile.mkdtemp(prefix="sgdyn-explore-")
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(self.upload.value)
        self.spec.value = path
        self.source.value = SOURCES[1]

    def _settings_file(self):
        import io
        return io.StringIO(json.dumps(json.loads((self.settings or Settings()).to_json()),
                                      indent=1))

    # -- updating ----------------------------------------------------------------------------
    def _compute(self, name: str, f, *args):
        """``f(*args)``, or None with the error recorded under ``name`` (shown in the page)."""
        try:
            out = f(*args)
        except ValueError as exc:
            self.errors[name] = str(exc)
            self.failed.add(name)
            return None
        except Exception as exc:     # a page must never die: show it, keep the rest alive
            self.errors[name] = f"internal error ({type(exc).__name__}: {exc})"
            self.failed.add(name)
            print(f"sgdyn explore: {name}: {self.errors[name]}", file=sys.stderr)
            return None
        self.errors.pop(name, None)
        self.failed.discard(name)
        return out

    def apply(self, new: Settings) -> None:
        """Recompute the views that ``new`` invalidates (and those that failed last time)."""
        todo = views.stale(self.settings, new) | self.failed
        self.errors.pop("controls", None)
        if "curve" in todo:
            self._clear_monte_carlo()
        self.settings = new
        if "conditions" in todo:
            self._draw_conditions(self._compute("conditions", views.conditions_view, new))
        if "critical" in todo:
            self._draw_critical(self._compute("critical", views.critical_view, new))
        if "point" in todo:
            self.values.update(self._point_values(self._compute("point", views.point_view, new)))
        if "curve" in todo:
            self._draw_curve(self._compute("curve", views.curve_view, new))
        if "region" in todo:
            self._draw_region(self._compute("region", views.region_view, new, views.COARSE_GRID,
                                            False))
            self._busy(f"computing the region on a {views.FINE_GRID[0]} x {views.FINE_GRID[1]} "
                       "grid and the rate optimum ...")
            self._later(lambda: self._fine_region(new))
        self.point_src.data = dict(x=[new.alpha], y=[new.beta])
        self._finish()

    def _fine_region(self, s: Settings) -> None:
        if "region" in views.stale(s, self.settings):
            return      # superseded: the newer settings have scheduled their own
        self._draw_region(self._compute("region", views.region_view, self.settings))
        self._busy(None)
        self._finish()

    def _busy(self, what: str | None) -> None:
        self.spinner.value = what is not None
        self.status.object = what or "ready"

    def _finish(self) -> None:
        self.values.update(alpha=self.settings.alpha, beta=self.settings.beta,
                           batch=self.settings.batch, steps=self.settings.steps)
        self._show_errors(self.errors)
        self.readout.object = self._readout_html()
        self.export.object = (
            "Loss curve:\n\n```\n" + views.command_line(self.settings) + "\n```\n\n"
            "Monte Carlo check:\n\n```\n" + views.command_line(self.settings, "validate") +
            "\n```\n\nSettings (JSON; `sgdyn explore --settings FILE` restores them):\n\n```json\n" +
            self.settings.to_json() + "\n```")

    def _show_errors(self, errors: dict) -> None:
        views_of = {}                       # one line per message, naming the views it stops
        for view, message in errors.items():
            views_of.setdefault(message, []).append(view)
        self.error_box.object = "".join(
            f'<p data-error="{html.escape(", ".join(names))}"><b>{html.escape(", ".join(names))}'
            f"</b>: {html.escape(message)}</p>" for message, names in views_of.items())
        self.error_box.visible = bool(errors)

    # -- drawing -----------------------------------------------------------------------------
    def _draw_conditions(self, c) -> None:
        if c is None:
            return
        self.update_text.object = (f"**{c.method}**: `{c.update}` (lambda_k = k^-nu, "
                                   "lambda_k c_k = k^-(kappa+1) for a power law)\n\n"
                                   "Converges iff every mode is stable (each expression > 0) and "
                                   "the noise feedback U(1), the sum of u(1; lambda_k) over the "
                                   "modes, is below 1:")
        self.conditions.object = c.mode_stability
        self.feedback.object = c.noise_feedback

    def _draw_critical(self, c) -> None:
        if c is None:
            self.critical_src.data = dict(x=[], y=[])
            self.critical_now.data = dict(x=[], y=[])
            self._forget("alpha_crit", "alpha_eff_crit", "limited_by")
            return
        self.critical_src.data = dict(x=c.batches.astype(float), y=c.alpha_eff_crit)
        cur = c.current
        self.critical_now.data = dict(x=[float(cur.batch)], y=[cur.alpha_eff_crit])
        self.critical_edge.location = c.mode_edge if np.isfinite(c.mode_edge) else None
        self.values.update(alpha_crit=cur.alpha_crit, alpha_eff_crit=cur.alpha_eff_crit,
                           limited_by=cur.limited_by)

    def _draw_curve(self, c) -> None:
        if c is None:
            for src in (self.curve_src, *self.asym_src.values()):
                src.data = dict(x=[], y=[])
            self.transition.visible = False
            self._forget("final_loss", "final_step", "curve_reason", "phase", "transition")
            return
        keep = c.steps >= 1
        t = c.steps[keep].astype(float)
        self.curve_src.data = dict(x=t, y=c.loss[keep])
        shown = dict(c.asymptotes)
        for name, src in self.asym_src.items():
            src.data = dict(x=t, y=shown[name][keep]) if name in shown else dict(x=[], y=[])
        self.transition.visible = c.transition is not None
        if c.transition is not None:
            self.transition.location = c.transition
        self.curve_fig.title.text = (f"loss curve: L_{c.final_step} = {c.final:.6g}" +
                                     (" (diverges)" if c.diverges else ""))
        self.values.update(final_loss=c.final, final_step=c.final_step, curve_reason=c.reason,
                           phase=c.phase, transition=c.transition)

    def _draw_region(self, r) -> None:
        if r is None:
            self._forget("optimum_alpha", "optimum_beta", "optimum_rate", "region_grid")
            return
        d = r.data
        a, b = d.alphas, d.betas
        self.region_image.data = dict(image=[r.shade], x=[float(a[0])], y=[float(b[0])],
                                      dw=[float(a[-1] - a[0])], dh=[float(b[-1] - b[0]) or 0.01])
        finite = r.shade[np.isfinite(r.shade)]
        if finite.size > 1:
            self.mapper.low, self.mapper.high = float(finite.min()), float(finite.max())
            levels = np.linspace(finite.min(), finite.max(), 10)[1:-1]
            if b.size > 1:
                self.contours.set_data(contour_data(a, b, r.shade, levels))
        shown = np.isfinite(d.mode_edge) & (d.mode_edge <= a[-1])
        self.edge_src.data = dict(x=d.mode_edge[shown], y=b[shown])
        self.boundary_src.data = dict(x=d.noise_boundary[:, 0], y=d.noise_boundary[:, 1])
        if np.isfinite(d.optimum[0]):
            self.optimum_src.data = dict(x=[d.optimum[0]], y=[d.optimum[1]])
            self.values.update(optimum_alpha=d.optimum[0], optimum_beta=d.optimum[1],
                               optimum_rate=d.optimum_value)
        else:
            self.optimum_src.data = dict(x=[], y=[])
            self._forget("optimum_alpha", "optimum_beta", "optimum_rate")
        self.values["region_grid"] = f"{r.grid[0]} x {r.grid[1]}"
        end = float(a[-1])
        self.alpha.param.update(end=max(end, float(self.alpha.value)),
                                step=max(end, float(self.alpha.value)) / ALPHA_STEPS)
        self.region_fig.x_range.start, self.region_fig.x_range.end = 0.0, end
        self.region_fig.y_range.start, self.region_fig.y_range.end = float(b[0]), float(b[-1])

    def _forget(self, *keys) -> None:
        """A view that failed shows no stale numbers."""
        for k in keys:
            self.values.pop(k, None)

    def _point_values(self, p) -> dict:
        if p is None:
            return {"rate": None, "point": None}
        return {"rate": p.rate, "point": p.reason}

    # -- Monte Carlo ---------------------------------------------------------------------------
    def _clear_monte_carlo(self) -> None:
        self.band_src.data = dict(x=[], lo=[], hi=[], mean=[])
        self.mc_text.object = ""
        self.values.pop("verdict", None)

    def _on_monte_carlo(self, event=None) -> None:
        s = self.settings
        self._busy(f"running the Monte Carlo ({views.MC_RUNS} runs) and the validation ...")
        self._later(lambda: self._monte_carlo(s))

    def _monte_carlo(self, s: Settings) -> None:
        rep = self._compute("monte carlo", views.monte_carlo_view, s)
        self._busy(None)
        if rep is not None and self.settings == s:
            live = (rep.steps >= 1) & np.isfinite(rep.mean)
            lo = rep.mean - 2 * rep.stderr
            self.band_src.data = dict(x=rep.steps[live].astype(float),
                                      lo=np.where(lo > 0, lo, rep.mean / 10)[live],
                                      hi=(rep.mean + 2 * rep.stderr)[live], mean=rep.mean[live])
            self.values["verdict"] = rep.verdict
            self.mc_text.object = f"**Monte Carlo: {rep.verdict}**. {rep.evidence}"
        self._finish()

    # -- the readout -------------------------------------------------------------------------
    READOUT = (("alpha", "alpha"), ("beta", "beta"), ("batch", "batch b"),
               ("alpha_crit", "critical learning rate alpha_crit"),
               ("alpha_eff_crit", "alpha_crit / (1 - beta)"), ("limited_by", "limited by"),
               ("rate", "asymptotic rate rho"), ("final_loss", "loss at the horizon"),
               ("final_step", "at step"), ("transition", "signal/noise transition t"),
               ("optimum_alpha", "rate optimum alpha*"), ("optimum_beta", "rate optimum beta*"),
               ("optimum_rate", "optimal rate rho*"), ("region_grid", "region grid"),
               ("verdict", "Monte Carlo verdict"))

    def _readout_html(self) -> str:
        rows = []
        for key, label in self.READOUT:
            if key not in self.values or self.values[key] is None:
                continue
            v = self.values[key]
            exact = repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)
            shown = f"{v:.8g}" if isinstance(v, (float, np.floating)) else str(v)
            rows.append(f'<tr><td>{label}</td><td><span data-key="{key}" data-value="{exact}">'
                        f"{shown}</span></td></tr>")
        return ('<table style="font-size: 13px">' + "".join(rows) + "</table>" +
                "".join(f'<p style="font-size: 12px">{self.values[k]}</p>'
                        for k in ("phase", "point") if self.values.get(k)))
