"""The report's plots, drawn by ``ml.plot`` and embedded in the page as SVG data URIs.

A data URI keeps each figure's SVG ids apart from the page's (two inline matplotlib SVGs share
ids such as ``figure_1``) and needs no file beside the page. Text is drawn as paths
(matplotlib's default ``svg.fonttype``), so no font is fetched either.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from dataclasses import dataclass
from typing import Any

import multilevel
from multilevel.errors import MissingExtraError, MultilevelError

PLOT_EXTRA = 'pip install "multilevel[plot]"'


@dataclass(frozen=True)
class Figure:
    """One embedded figure: ``data_uri`` (None when it could not be drawn, and ``note`` says
    why), its element id, caption and alternative text."""

    element_id: str
    caption: str
    alt: str
    data_uri: str | None
    note: str = ""


def plotting_missing() -> str | None:
    """Why no figure can be drawn (matplotlib or ``ml.plot`` absent), else None."""
    if importlib.util.find_spec("matplotlib") is None:
        return f"The plots need matplotlib, which is not installed: run {PLOT_EXTRA}."
    if "plot" not in getattr(multilevel, "__all__", ()):
        return "The plots need multilevel's plotting module (ml.plot), which this version lacks."
    return None


def svg_data_uri(figure: Any) -> str:
    """``figure`` (a matplotlib Figure or Axes) as a base64 SVG data URI; the figure is then
    closed, so that a report does not leave figures open in a notebook."""
    fig = figure.get_figure() if hasattr(figure, "get_figure") and not hasattr(
        figure, "savefig") else figure
    import matplotlib  # only reached when matplotlib drew the figure
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        # no date in the metadata and a fixed salt for the ids: the same fit gives the same
        # page, byte for byte (reports can be compared and kept under version control)
        with matplotlib.rc_context({"svg.hashsalt": "multilevel-report"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def draw(element_id: str, caption: str, alt: str, plot: Any, fit: Any) -> Figure:
    """Draw ``plot(fit)`` into a :class:`Figure`; a plot that does not apply to this fit (a
    typed error) becomes a note instead of a picture."""
    try:
        return Figure(element_id, caption, alt, svg_data_uri(plot(fit)))
    except MissingExtraError as exc:
        return Figure(element_id, caption, alt, None, str(exc))
    except MultilevelError as exc:  # NotApplicableError and kin: say why, keep the report
        return Figure(element_id, caption, alt, None, f"Not drawn: {exc}")


RESIDUAL_CAPTION = ("Residual diagnostics: residuals against fitted values, scale-location, "
                    "and normal quantile plots of the residuals and of the group effects")
CATERPILLAR_CAPTION = ("Group effects (conditional modes) with 95 % intervals from their "
                       "conditional variances, sorted, one panel per term")
BAYES_CATERPILLAR_CAPTION = ("Group effects (posterior means) with 95 % posterior intervals, "
                             "sorted, one panel per term")


def figures_for(fit: Any, has_random_effects: bool) -> list[Figure]:
    """The residual diagnostics and, for models with random effects, the caterpillar plot
    (``ml.plot.residuals`` and ``ml.plot.caterpillar``)."""
    missing = plotting_missing()
    if missing is not None:
        return [Figure("residual-plot", RESIDUAL_CAPTION, "", None, missing)]
    # ml.plot is loaded on first use (matplotlib with it), by the package's __getattr__
    plot: Any = getattr(multilevel, "plot")  # noqa: B009 (typed from there, not here)
    out = [draw("residual-plot", RESIDUAL_CAPTION, "Residual diagnostic plots",
                plot.residuals, fit)]
    if has_random_effects:
        caption = (BAYES_CATERPILLAR_CAPTION if type(fit).__name__ == "BayesResult"
                   else CATERPILLAR_CAPTION)
        out.append(draw("caterpillar-plot", caption,
                        "Caterpillar plot of the group effects", plot.caterpillar, fit))
    else:
        out.append(Figure("caterpillar-plot", "Group effects", "", None,
                          "No caterpillar plot: the model has no random effects."))
    return out
