"""Posterior predictions of the linear predictor, on the fitted rows or on new data.

Every draw of the coefficients and group effects gives one prediction per row. Levels not in
the fit get, with ``allow_new_levels=True``, effects drawn from the population model at each
draw (r ~ N(0, diag(sd) R diag(sd)) with that draw's SDs and correlations: brms's
``sample_new_levels = "gaussian"``), so their predictions carry the between-group spread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from multilevel.data.design import formula_offset
from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, ColumnNotFoundError, DataError, FormulaError
from multilevel.results.prediction import _level_codes, replay_matrix

if TYPE_CHECKING:
    from multilevel.bayesian.model_spec import LinearPart, RandomBlock
    from multilevel.bayesian.result import BayesResult


def _population(re_form: str | None) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("NA", "~0", "~1"):
        return True
    raise FormulaError(f"re_form must be None (with the group effects) or 'NA' / '~0' (the "
                       f"population level) for Bayesian fits; got {re_form!r}")


def _coefficients(result: BayesResult, part: LinearPart) -> np.ndarray:
    """Draws of the part's coefficients on R's columns, shape (D, p)."""
    cols = [result.draws(part.variable(n)).ravel() for n in part.names]
    return np.stack(cols, axis=1) if cols else np.zeros((result.ndraws, 0))


def _group_draws(result: BayesResult, block: RandomBlock, codes: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Effects of each row's level at each draw, shape (D, n, k); rows of new levels (code
    -1) get effects drawn from the population model."""
    r = result.draws(block.r_variable)[..., block.columns]
    r = r.reshape(-1, *r.shape[2:])  # (D, levels, k)
    out = r[:, np.maximum(codes, 0), :]
    new = codes < 0
    if new.any():
        D, k = r.shape[0], block.k
        sd = np.stack([result.draws(block.sd_variable(t)).ravel() for t in block.terms],
                      axis=1)
        R = np.broadcast_to(np.eye(k), (D, k, k)).copy()
        for a in range(k):
            for b in range(a + 1, k):
                c = result.draws(block.cor_variable(block.terms[a], block.terms[b])).ravel()
                R[:, a, b] = R[:, b, a] = c
        L = np.linalg.cholesky(R + 1e-12 * np.eye(k))
        # one draw per new row; the caller makes rows of one new level share theirs
        u = rng.standard_normal((D, int(new.sum()), k))
        out[:, new, :] = np.einsum("dij,dnj->dni", L, u) * sd[:, None, :]
    return out


def _new_level_groups(frame: pd.DataFrame, block: RandomBlock) -> np.ndarray:
    """For new levels: rows of the same new level share one drawn effect."""
    key = frame[list(block.group_factors)].astype(str).agg(":".join, axis=1)
    return pd.factorize(key)[0]


def predict_draws(result: BayesResult, newdata: Any, re_form: str | None,
                  allow_new_levels: bool, seed: int | None) -> np.ndarray:
    """Draws of the linear predictor, shape (D, n)."""
    import jax
    import jax.numpy as jnp

    model = result.model
    population = _population(re_form)
    if not isinstance(allow_new_levels, bool):
        raise ArgumentError(f"allow_new_levels must be True or False, got {allow_new_levels!r}")
    rng = np.random.default_rng(seed)
    frame = None if newdata is None else to_pandas(newdata).reset_index(drop=True)
    if frame is not None and len(frame) == 0:
        raise DataError("newdata has no rows")
    parts_eta = []
    for part in model.parts:
        if frame is None:
            X = part.X
        else:
            X, cols = replay_matrix(part.fixed_spec, _fixed_text(part), frame,
                                    "fixed-effects matrix")
            missing = [n for n in part.r_names if n not in cols]
            if missing:
                raise DataError(f"newdata does not give the fixed-effects columns {missing}")
            X = X[:, [cols.index(n) for n in part.r_names]]
        eta = _coefficients(result, part) @ X.T  # (D, n)
        if not population:
            for block in part.blocks:
                if frame is None:
                    Z, codes = block.Z, block.codes
                else:
                    Z = replay_matrix(block.term.spec, block.term.lhs, frame,
                                      f"random-effects term ({block.term.lhs} | "
                                      f"{block.group})")[0]
                    codes = _level_codes(frame, block.group_factors, block.match_levels,
                                         allow_new_levels, block.group)
                r = _group_draws(result, block, codes, rng)
                if frame is not None and (codes < 0).any():
                    # rows of one new level share its effect
                    new = np.flatnonzero(codes < 0)
                    groups = _new_level_groups(frame.iloc[new], block)
                    first = {g: new[i] for i, g in reversed(list(enumerate(groups)))}
                    r[:, new, :] = r[:, [first[g] for g in groups], :]
                eta = eta + np.einsum("nk,dnk->dn", Z, r)
        parts_eta.append(eta)
    if model.nonlinear is None:
        out = parts_eta[0]
    else:
        nl = model.nonlinear
        if frame is None:
            columns = nl.columns
        else:
            for c in nl.columns:
                if c not in frame.columns:
                    raise ColumnNotFoundError(c, [str(x) for x in frame.columns], "newdata")
            columns = {c: frame[c].to_numpy(dtype=float) for c in nl.columns}
        f = result.density.expression
        assert f is not None
        arrays = {k: jnp.asarray(v) for k, v in columns.items()}
        phi = {p.nlpar: jnp.asarray(e) for p, e in zip(model.parts, parts_eta, strict=True)}
        out = np.asarray(jax.vmap(lambda ph: f(arrays, ph))(phi))
    if model.offset is not None:
        out = out + _offset(result, frame)
    return out


def _fixed_text(part: LinearPart) -> str:
    if part.design is not None:
        return part.design.formula.fixed
    return part.formula


def _offset(result: BayesResult, frame: pd.DataFrame | None) -> np.ndarray:
    model = result.model
    if frame is None:
        assert model.offset is not None
        return model.offset
    design = model.parts[0].design
    assert design is not None
    value = formula_offset(frame, design.formula.offsets, design.formula.text,
                           np.arange(len(frame)))
    if value is None:
        raise DataError("the model has an offset given outside the formula; write it in the "
                        "formula as offset(...) to predict on new data")
    return np.asarray(value)
