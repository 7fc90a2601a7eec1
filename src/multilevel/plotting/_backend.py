"""matplotlib, imported on first use (the ``plot`` extra).

Nothing in :mod:`multilevel.plotting` imports matplotlib at module level, so that
``import multilevel`` and ``ml.plot`` stay cheap and work without the extra; a plotting
function that is called without matplotlib installed raises :class:`MissingExtraError`
naming the ``pip install`` to run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from multilevel.errors import ArgumentError, MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = 'pip install "multilevel[plot]"  (matplotlib)'


def _headless() -> bool:
    """No display to open a window on (a server, CI, a container)."""
    if sys.platform in ("darwin", "win32"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pyplot() -> Any:
    """``matplotlib.pyplot``, with the file-only Agg backend chosen when there is no display
    and the user has chosen none (pyplot not yet imported, no ``MPLBACKEND``)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(
            f"plots need matplotlib, which is not installed: run {INSTALL_HINT}") from None
    if ("matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND")
            and _headless()):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def check_axes(ax: Any, needed: int, what: str) -> list[Axes]:
    """``ax`` as a list of ``needed`` matplotlib Axes: one Axes (when one panel is drawn) or a
    sequence of them, one per panel."""
    from matplotlib.axes import Axes
    axes = [ax] if isinstance(ax, Axes) else list(ax) if isinstance(ax, Sequence) else None
    if axes is None or not all(isinstance(a, Axes) for a in axes):
        raise ArgumentError(f"ax must be a matplotlib Axes or a list of them, got "
                            f"{type(ax).__name__}")
    if len(axes) != needed:
        raise ArgumentError(
            f"this {what} has {needed} panel(s) but ax gave {len(axes)} Axes: pass "
            f"{needed} Axes (a list), or leave ax out to get a new figure")
    return axes


def figure_of(ax: Axes) -> Figure:
    """The top-level figure an Axes is drawn on (not a subfigure)."""
    fig = ax.get_figure()
    while fig is not None and not isinstance(fig, _figure_class()):
        fig = fig.get_figure()
    if fig is None:
        raise ArgumentError("ax is not on a figure: pass Axes made by figure.add_subplot")
    return cast("Figure", fig)


def _figure_class() -> type:
    from matplotlib.figure import Figure
    return Figure


def check_figure(fig: Any) -> Figure | None:
    """``fig`` if it is a matplotlib Figure (or None); a typed error otherwise."""
    if fig is None:
        return None
    from matplotlib.figure import Figure
    if not isinstance(fig, Figure):
        raise ArgumentError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    return fig


def panel_grid(n: int, fig: Figure | None, ncols: int = 3, width: float = 3.6,
               height: float = 3.0) -> tuple[Figure, list[Axes]]:
    """``n`` panels on a grid of at most ``ncols`` columns (on ``fig`` when given); the
    unused cells are hidden."""
    plt = pyplot()
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    if fig is None:
        fig = plt.figure(figsize=(width * ncols, height * nrows), layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    cells = [a for row in grid for a in row]
    for a in cells[n:]:
        a.set_visible(False)
    return fig, cells[:n]


def check_level(level: Any, name: str = "level") -> float:
    """A coverage probability strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ArgumentError(f"{name} must be a probability between 0 and 1 (e.g. 0.95), "
                            f"got {level!r:.60}")
    return float(level)
