"""Figures built with matplotlib's object-oriented API, never through pyplot.

A :class:`matplotlib.figure.Figure` made here is not registered with pyplot, so
library code leaves no global state behind: the backend is never switched, no
figure stays open in a loop, and the caller (a notebook, a report) decides how
to show or save it (``fig.savefig`` works without pyplot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["figure_and_axes", "new_figure"]


def new_figure(*, figsize: tuple[float, float]) -> Figure:
    """A new Figure of ``figsize`` inches, not registered with pyplot.

    Examples
    --------
    >>> fig = new_figure(figsize=(4, 3))
    >>> fig.get_size_inches().tolist()
    [4.0, 3.0]
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def figure_and_axes(ax: Any, *, figsize: tuple[float, float]) -> tuple[Figure | Any, Axes]:
    """The caller's ``ax`` and its figure, or a new Figure of ``figsize`` with one Axes.

    Parameters
    ----------
    ax
        Axes to draw on, or ``None`` to make a new figure.
    figsize
        Size in inches of the new figure (unused when ``ax`` is given).

    Returns
    -------
    tuple
        ``(figure, axes)``.
    """
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize=figsize)
    return fig, fig.subplots()
