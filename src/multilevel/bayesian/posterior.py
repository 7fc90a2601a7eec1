"""From the sampler's unconstrained draws to the model's parameters under brms's names, and to
ArviZ's ``InferenceData`` (posterior, sample_stats, log_likelihood, observed_data).

Names (as brms's ``variables(fit)``): ``b_Intercept``, ``b_Days``, ``b_Asym_Intercept``;
``sd_Subject__Intercept``, ``sd_Tree__Asym_Intercept``; ``cor_Subject__Intercept__Days``;
``sigma`` / ``shape``; ``Intercept`` (the centred design's intercept); and the random effects
``r_Subject`` / ``r_Tree__Asym`` as arrays (chain, draw, level, term).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

from multilevel.bayesian.density import Density
from multilevel.bayesian.sampler import Draws

# draws per vectorised call when evaluating functions of the posterior (memory: n rows each)
_BATCH = 500


def map_draws(f: Any, z: dict[str, np.ndarray], batch: int = _BATCH) -> Any:
    """``f`` (a jax function of one unconstrained draw) over every draw, in batches;
    returns its outputs with leading (chains, draws) axes."""
    chains, draws = next(iter(z.values())).shape[:2]
    total = chains * draws
    flat = {k: v.reshape(total, *v.shape[2:]) for k, v in z.items()}
    g = jax.jit(jax.vmap(f))
    batch = min(batch, total)
    pieces = []
    for start in range(0, total, batch):
        part = {k: v[start:start + batch] for k, v in flat.items()}
        n = next(iter(part.values())).shape[0]
        if n < batch:  # pad the last batch: one compiled shape for every batch
            part = {k: np.concatenate([v, np.repeat(v[-1:], batch - n, axis=0)])
                    for k, v in part.items()}
        pieces.append(jax.tree_util.tree_map(lambda a, n=n: np.asarray(a)[:n], g(part)))
    joined = jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=0), *pieces)
    return jax.tree_util.tree_map(lambda a: a.reshape(chains, draws, *a.shape[1:]), joined)


def posterior_draws(density: Density, z: dict[str, np.ndarray], loglik: bool = True,
                    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The named parameters and (with ``loglik``) the log density of each observation at
    each draw, shape (chains, draws, n), from one compiled map over the draws."""
    model = density.model

    def one(u: dict[str, Any]) -> dict[str, Any]:
        c = density.constrain(u)
        out: dict[str, Any] = {"c": c, "r": density.random_effects(c)}
        if loglik:
            out["ll"] = density.pointwise_loglik(c)
        return out

    mapped = map_draws(one, z)
    c, r = mapped["c"], mapped["r"]
    out = population_parameters(density, c)
    for i, part in enumerate(model.parts):
        if part.centred:
            out["Intercept" if not part.nlpar else f"{part.nlpar}_Intercept"] = \
                c[f"Intercept{i}"]
    for name in model.group_variables():
        out[name] = np.concatenate([r[j] for j, b in enumerate(model.blocks)
                                    if b.r_variable == name], axis=-1)
    return out, (np.asarray(mapped["ll"]) if loglik else None)


def population_parameters(density: Density, c: dict[str, Any]) -> dict[str, np.ndarray]:
    """brms's population-level parameters (b_, sd_, cor_, sigma / shape) from the
    constrained ones, for any leading shape of draws (none for a single point)."""
    model = density.model
    c = {k: np.asarray(v) for k, v in c.items()}
    out: dict[str, np.ndarray] = {}
    for i, part in enumerate(model.parts):
        b = c[f"b{i}"]
        if part.centred:
            intercept = c[f"Intercept{i}"]
            out[part.variable("Intercept")] = intercept - b @ part.means
        for j, name in enumerate(part.b_names):
            out[part.variable(name)] = b[..., j]
    for j, block in enumerate(model.blocks):
        for t in range(block.k):
            out[block.sd_variable(block.terms[t])] = c[f"sd{j}"][..., t]
    for j, block in enumerate(model.blocks):
        if block.k > 1:
            L = c[f"L{j}"]
            R = np.einsum("...ik,...jk->...ij", L, L)
            for a in range(block.k):
                for b_ in range(a + 1, block.k):
                    out[block.cor_variable(block.terms[a], block.terms[b_])] = \
                        R[..., b_, a]
    if model.family.extra is not None:
        out[model.family.extra] = c["extra"]
    return out


def inference_data(density: Density, draws: Draws, named: dict[str, np.ndarray],
                   loglik: np.ndarray) -> Any:
    """ArviZ ``InferenceData`` of a run."""
    import arviz as az

    model = density.model
    coords: dict[str, Any] = {"obs": np.arange(model.nobs)}
    dims: dict[str, list[str]] = {"y": ["obs"]}
    for name, (group, terms) in model.group_variables().items():
        block = next(b for b in model.blocks if b.r_variable == name)
        level_dim, term_dim = f"{group}_level", f"{name}_term"
        coords[level_dim] = list(block.levels)
        coords[term_dim] = list(terms)
        dims[name] = [level_dim, term_dim]
    stats = {
        "diverging": draws.stats["diverging"].astype(bool),
        "n_steps": draws.stats["n_steps"],
        "tree_depth": draws.stats["tree_depth"],
        "acceptance_rate": draws.stats["acceptance_rate"],
        "energy": draws.stats["energy"],
        "lp": draws.stats["lp"],
        "step_size": draws.stats["step_size"],
    }
    with warnings.catch_warnings():
        # ArviZ warns about conventions we follow on purpose (e.g. few chains in tests)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(
            posterior=named, sample_stats=stats, log_likelihood={"y": loglik},
            observed_data={"y": model.y}, coords=coords, dims=dims,
            attrs={"inference_library": "numpyro", "creator": "multilevel"})

