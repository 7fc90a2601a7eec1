"""What every model kind's ``replace(...)`` shares: the marker for an argument left out, the
new design a changed formula, data, weights or offset builds, and a checked new response.

Each model class keeps its own ``replace`` (the settings differ), built on these, so that
"which parts change, and what must be rebuilt" is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from multilevel.data.design import ModelDesign, build_design
from multilevel.errors import ArgumentError, DataError
from multilevel.formula.parser import ParsedFormula


class _Keep:
    """Marks an argument of ``replace`` left out (None has a meaning there: no weights, no
    data, the default start)."""

    def __repr__(self) -> str:
        return "<keep>"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class DesignChange:
    """The data, weights and offset a replaced model keeps, and its new design (None when
    the design is the old one)."""

    design: ModelDesign | None
    data: Any
    weights: Any
    offset: Any


def changed_design(model: Any, formula: str | ParsedFormula | None, data: Any,
                   design: ModelDesign | None, weights: Any, offset: Any, y: Any,
                   glm: bool = False) -> DesignChange:
    """The design of ``model`` with the named parts replaced (arguments left out are
    :data:`KEEP`): a new ``formula``, ``data``, ``weights`` or ``offset`` builds the design
    again from the data (the model's own unless ``data`` is given); ``design`` is taken as it
    is; ``y`` replaces the response of whichever design results.

    Raises
    ------
    ArgumentError
        ``design`` together with a part that builds one, or a design to build when the
        model keeps no data.
    DataError
        A response ``y`` of the wrong length.
    """
    builders = [name for name, named in (("formula", formula is not None),
                                         ("weights", weights is not KEEP),
                                         ("offset", offset is not KEEP)) if named]
    if design is not None and builders:
        raise ArgumentError(f"replace() takes design= or {'= and '.join(builders)}= "
                            "(which build a design from the data), not both")
    new_data = model.data if data is KEEP else data
    new_weights = model.weights_source if weights is KEEP else weights
    new_offset = model.offset_source if offset is KEEP else offset
    if builders or (data is not KEEP and design is None):
        if new_data is None:
            raise ArgumentError("this model keeps no data (it was built from a design): "
                                "give data= to build a new formula, weights or offset on")
        design = build_design(model.design.formula if formula is None else formula,
                              new_data, new_weights, new_offset, glm=glm)
    if y is not None:
        base = model.design if design is None else design
        design = replace(base, y=checked_response(y, base))
    return DesignChange(design=design, data=new_data, weights=new_weights, offset=new_offset)


def checked_response(y: Any, design: ModelDesign) -> np.ndarray:
    """A new response for ``design``: one float per observation it uses."""
    out = np.asarray(y, dtype=float)
    if out.shape != design.y.shape:
        raise DataError(f"the new response must have {design.nobs} values, got {out.shape}")
    return out
