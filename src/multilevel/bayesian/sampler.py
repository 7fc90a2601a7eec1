"""NUTS through numpyro, run in chunks: chains in parallel, a progress bar, Ctrl-C, one compile.

numpyro's ``MCMC`` runs warmup and sampling as one compiled loop; that cannot show progress
without host callbacks, cannot be interrupted until it ends, and (measured here) recompiles
when sampling is continued. So we drive numpyro's NUTS kernel (``numpyro.infer.hmc.hmc``)
ourselves: one compiled function runs ``chunk`` NUTS transitions of every chain (``pmap``
over CPU devices when there are as many as chains, else ``vmap``), called again and again with
the same shapes — warmup (step size and diagonal mass matrix adapted by numpyro's windowed
schedule, which runs on the iteration counter inside the state) and sampling alike. Between
chunks the progress bar moves and Ctrl-C stops the run, keeping the draws made so far.

Compiled code is also kept on disk (JAX's persistent compilation cache, under the user's
cache directory), so that refitting a model of the same shapes skips compilation.

Initial values are Stan's: uniform(-2, 2) on the unconstrained scale, drawn again (up to 100
times) where the log density or its gradient is not finite.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from multilevel.errors import ArgumentError, MultilevelWarning, NumericalError

# CPU "devices" for chains in parallel: set before jax initialises its backend (numpyro's
# set_host_device_count does the same); without effect once jax is running.
_DEVICES = max(4, os.cpu_count() or 1)


def prepare_jax() -> None:
    """Configure jax before first use: double precision (sums over many rows and brms's
    numbers need it), CPU devices for parallel chains, the persistent compilation cache."""
    import sys
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_force_host_platform_device_count={_DEVICES}").strip()
    import jax
    jax.config.update("jax_enable_x64", True)
    if os.environ.get("MULTILEVEL_JAX_CACHE", "1") != "0" and \
            not getattr(jax.config, "jax_compilation_cache_dir", None):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        jax.config.update("jax_compilation_cache_dir",
                          os.path.join(base, "multilevel", "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@dataclass(frozen=True)
class NutsSettings:
    """How to sample.

    Attributes
    ----------
    chains, draws, warmup : int
        Chains, kept draws per chain, warmup iterations per chain (brms: 4, 1000, 1000).
    seed : int
        Reproduces the draws exactly (same seed, same machine, same chunk size).
    target_accept : float
        NUTS's target acceptance rate during warmup (brms's adapt_delta, default 0.8).
    max_tree_depth : int
        Limit of the trajectory's doubling (brms's max_treedepth, default 10).
    thin : int
        Keep every ``thin``-th draw.
    progress : bool
        Show a progress bar.
    chunk : int
        Transitions per compiled call (progress and Ctrl-C granularity).
    """

    chains: int = 4
    draws: int = 1000
    warmup: int = 1000
    seed: int = 1
    target_accept: float = 0.8
    max_tree_depth: int = 10
    thin: int = 1
    progress: bool = True
    chunk: int = 100


def check_settings(chains: Any, draws: Any, warmup: Any, seed: Any, target_accept: Any,
                   max_tree_depth: Any, thin: Any, progress: Any) -> NutsSettings:
    """Validated :class:`NutsSettings` (typed errors naming the argument)."""
    def whole(name: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ArgumentError(f"{name} must be a whole number >= {low}, got {value!r}")
        return int(value)
    if not isinstance(target_accept, float | int) or isinstance(target_accept, bool) \
            or not 0.0 < float(target_accept) < 1.0:
        raise ArgumentError(f"target_accept must be a number between 0 and 1 (brms's "
                            f"adapt_delta, e.g. 0.95), got {target_accept!r}")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    return NutsSettings(chains=whole("chains", chains, 1), draws=whole("draws", draws, 1),
                        warmup=whole("warmup", warmup, 0), seed=whole("seed", seed, 0),
                        target_accept=float(target_accept),
                        max_tree_depth=whole("max_tree_depth", max_tree_depth, 1),
                        thin=whole("thin", thin, 1), progress=bool(progress))


@dataclass(frozen=True)
class Draws:
    """What a run returns: unconstrained draws and per-draw statistics, shape (chains, draws).

    Attributes
    ----------
    z : dict of numpy arrays, shape (chains, draws, ...)
    stats : dict of numpy arrays, shape (chains, draws)
        ``diverging``, ``n_steps``, ``tree_depth``, ``acceptance_rate``, ``energy``,
        ``lp`` (log density), ``step_size``.
    compile_s, sampling_s : float
        Seconds spent compiling (the first chunk's call less a later chunk's time) and
        sampling.
    interrupted : bool
        Ctrl-C stopped the run; the draws are those finished before it.
    """

    z: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    compile_s: float
    sampling_s: float
    interrupted: bool


def _initial_state(start_fn: Callable[..., Any], keys: Any, data: Any, dim: int, chains: int,
                   rng: np.random.Generator) -> Any:
    """The chains' initial NUTS states from Stan's random starts, uniform(-2, 2) on the
    unconstrained scale, drawn again (up to 100 times) for a chain whose log density or
    gradient is not finite there — a start where exp() overflows may have a finite density
    and a NaN gradient, and its chain would never move. The initialiser computes both, so no
    separate function is compiled for the check."""
    import jax.numpy as jnp

    init = rng.uniform(-2.0, 2.0, size=(chains, dim))
    for _attempt in range(100):
        state = start_fn(keys, jnp.asarray(init), data)
        energy = np.asarray(state.potential_energy)
        grad = np.asarray(state.z_grad).reshape(chains, -1)
        bad = ~(np.isfinite(energy) & np.isfinite(grad).all(axis=1))
        if not bad.any():
            return state
        init[bad] = rng.uniform(-2.0, 2.0, size=(int(bad.sum()), dim))
    raise NumericalError(
        "no starting point with a finite log posterior and gradient was found in 100 random "
        "draws (uniform(-2, 2) on the unconstrained scale, as Stan): check the model "
        "expression and the priors' supports")

class _Flat:
    """The parameters as one vector: NUTS's tree bookkeeping then handles one array instead
    of one per parameter block (measured: a large share of the per-step cost on CPU)."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.layout = [(k, s, int(np.prod(s, dtype=np.int64))) for k, s in shapes.items()]
        self.dim = sum(n for _, _, n in self.layout)

    def unflatten(self, x: Any) -> dict[str, Any]:
        out = {}
        i = 0
        for k, s, n in self.layout:
            out[k] = x[..., i:i + n].reshape(*x.shape[:-1], *s)
            i += n
        return out

    def generator(self, potential_gen: Callable[..., Any]) -> Callable[..., Any]:
        def gen(data: Any) -> Callable[..., Any]:
            potential = potential_gen(data)
            return lambda x: potential(self.unflatten(x))
        return gen


# Compiled samplers by model structure (see ``run_nuts``'s ``key``): refits of a model of the
# same structure and shapes (bootstrap-like loops, simulation-based calibration, the research
# cycle) reuse them without tracing or compiling again. Small: each holds compiled code only.
_COMPILED: OrderedDict[Any, tuple[Any, Any]] = OrderedDict()
_COMPILED_MAX = 8


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, dropping the least recently used beyond the limit."""
    cache[key] = value
    while len(cache) > _COMPILED_MAX:
        cache.popitem(last=False)


def _compiled(potential_gen: Callable[..., Any], settings: NutsSettings, key: Any,
              ) -> tuple[Any, Any]:
    """(chain initialiser, chunk runner) for this model and settings."""
    import jax
    from numpyro.infer.hmc import hmc

    s = settings
    parallel = jax.local_device_count() >= s.chains and s.chains > 1
    full_key = None if key is None else (key, s.chains, s.warmup, s.target_accept,
                                         s.max_tree_depth, s.chunk, parallel)
    if full_key is not None and full_key in _COMPILED:
        _COMPILED.move_to_end(full_key)
        return _COMPILED[full_key]
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def start(key: Any, params: Any, data: Any) -> Any:
        return init_kernel(params, num_warmup=s.warmup, target_accept_prob=s.target_accept,
                           max_tree_depth=s.max_tree_depth, rng_key=key, model_args=(data,))

    def advance(state: Any, data: Any, n: int) -> Any:
        def step(st: Any, _: Any) -> Any:
            st = sample_kernel(st, model_args=(data,))
            return st, (st.z, st.diverging, st.num_steps, st.accept_prob, st.energy,
                        st.potential_energy, st.adapt_state.step_size)
        return jax.lax.scan(step, state, None, length=n)

    if parallel:
        start_fn = jax.pmap(start, in_axes=(0, 0, None))
        step_fn = jax.pmap(partial(advance, n=s.chunk), in_axes=(0, None))
    else:
        start_fn = jax.jit(jax.vmap(start, in_axes=(0, 0, None)))
        step_fn = jax.jit(jax.vmap(partial(advance, n=s.chunk), in_axes=(0, None)))
    out = (start_fn, step_fn)
    if full_key is not None:
        _remember(_COMPILED, full_key, out)
    return out


_AOT: OrderedDict[Any, Any] = OrderedDict()


def _ahead_of_time(step_fn: Any, state: Any, data: Any, key: Any) -> Any:
    """The chunk runner compiled for these argument shapes (kept with the model's key)."""
    cache_key = None if key is None else (key, id(step_fn))
    if cache_key is not None and cache_key in _AOT:
        return _AOT[cache_key]
    try:
        compiled = step_fn.lower(state, data).compile()
    except (AttributeError, NotImplementedError):  # no ahead-of-time path: compile on call
        return step_fn
    if cache_key is not None:
        _remember(_AOT, cache_key, compiled)
    return compiled


def run_nuts(potential_gen: Callable[..., Any], data: Any, shapes: dict[str, tuple[int, ...]],
             settings: NutsSettings, key: Any = None) -> Draws:
    """Sample the density ``exp(-potential_gen(data)(u))`` with NUTS (see the module
    docstring). The data travel as arguments of the compiled code, not as constants in it:
    compilation then does not grow with the data, and the compiled code is reused (and
    cached on disk) for any data of the same shapes. ``key``, hashable, names the model's
    structure (everything but the data that ``potential_gen`` depends on): runs with an equal
    key reuse the compiled sampler."""
    import jax

    s = settings
    rng = np.random.default_rng(s.seed)
    flat = _Flat(shapes)
    start_fn, step_fn = _compiled(flat.generator(potential_gen), s, key)
    keys = jax.random.split(jax.random.PRNGKey(s.seed), s.chains)
    total = s.warmup + s.draws * s.thin
    n_chunks = -(-total // s.chunk)
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc="warmup", unit="it", disable=not s.progress, leave=False)
    kept: list[Any] = []
    # compilation apart from sampling: the initialiser is compiled and run (its run is one
    # gradient), the chunk runner compiled ahead of time (once per model structure)
    t0 = time.perf_counter()
    bar.set_description("compiling")
    state = _initial_state(start_fn, keys, data, flat.dim, s.chains, rng)
    jax.block_until_ready(state)
    run = _ahead_of_time(step_fn, state, data, key)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    bar.set_description("warmup")
    interrupted = False
    done = 0
    try:
        for _c in range(n_chunks):
            state, out = run(state, data)
            jax.block_until_ready(out)
            first = done
            done += s.chunk
            if done > s.warmup:
                kept.append(jax.tree_util.tree_map(np.asarray, out)
                            if first >= s.warmup else
                            jax.tree_util.tree_map(lambda a, k=s.warmup - first:
                                                   np.asarray(a)[:, k:], out))
            bar.set_description("warmup" if done <= s.warmup else "sampling")
            bar.update(min(s.chunk, total - first))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    sampling_s = time.perf_counter() - t0
    if not kept:
        raise NumericalError("sampling was interrupted during warmup: no draws were kept")
    z = flat.unflatten(np.concatenate([c[0] for c in kept], axis=1))
    names = ("diverging", "n_steps", "acceptance_rate", "energy", "potential", "step_size")
    stats = {n: np.concatenate([c[i + 1] for c in kept], axis=1) for i, n in enumerate(names)}
    n_keep = min(s.draws * s.thin, next(iter(z.values())).shape[1])
    z = {k: v[:, :n_keep:s.thin] for k, v in z.items()}
    stats = {k: v[:, :n_keep:s.thin] for k, v in stats.items()}
    stats["lp"] = -stats.pop("potential")
    stats["tree_depth"] = np.floor(np.log2(stats["n_steps"])).astype(np.int64) + 1
    if interrupted:
        warnings.warn(f"sampling interrupted: {n_keep // s.thin} draws per chain were kept "
                      f"of the {s.draws} asked for", MultilevelWarning, stacklevel=3)
    return Draws(z=z, stats=stats, compile_s=compile_s, sampling_s=sampling_s,
                 interrupted=interrupted)
