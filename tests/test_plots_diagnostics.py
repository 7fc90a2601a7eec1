"""ml.plot's diagnostic and inference plots: the artists drawn carry the fit's numbers.

Each plot is checked on two or more data sets by reading back what matplotlib holds (the
points' coordinates, the interval segments, the histogram bars) and comparing it with the
numbers the fit reports (ranef, ranef_condvar, fitted, residuals, profile, power_curve,
bootstrap), computed here independently where the plot transforms them (normal quantiles at
R's ``ppoints``, mode +- z sqrt(condvar), Clopper-Pearson intervals from the beta
distribution, posterior quantiles of the draws), and with what lme4 draws
(tests/reference/make_plot_refs.R: dotplot(ranef(fit, condVar = TRUE)) and qqnorm). One
figure of each function is also written to PNG and SVG.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from multilevel.errors import ArgumentError, MissingExtraError, NotApplicableError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

Z95 = stats.norm.ppf(0.975)
LME4_PLOTS = json.loads(
    (Path(__file__).parent / "reference" / "plots" / "lme4_plots.json").read_text())["fits"]
LOGIS = "circumference ~ SSlogis(age, Asym, xmid, scal)"


# -- fits shared by the module ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sleep():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def cbpp():
    return ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    ml.datasets.load("cbpp"), family="binomial")


@pytest.fixture(scope="module")
def penicillin():
    return ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", ml.datasets.load("Penicillin"))


@pytest.fixture(scope="module")
def orthodont_lme():
    return ml.lme("distance ~ age", ml.datasets.load("Orthodont"), random="~ age | Subject")


@pytest.fixture(scope="module")
def orthodont_gls():
    return ml.gls("distance ~ age", ml.datasets.load("Orthodont"))


@pytest.fixture(scope="module")
def orange_nlme():
    return ml.nlme(LOGIS, ml.datasets.load("Orange"), fixed="Asym + xmid + scal ~ 1",
                   random="Asym ~ 1 | Tree", start={"Asym": 192.0, "xmid": 728.0, "scal": 353.0})


@pytest.fixture(scope="module")
def dyestuff():
    return ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff"))


@pytest.fixture(scope="module")
def bayes_sleep():
    pytest.importorskip("numpyro")
    with warnings.catch_warnings():  # short chains: low ESS warnings are expected here
        warnings.simplefilter("ignore")
        return ml.bayes("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"),
                        chains=2, draws=200, warmup=200, seed=1, progress=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def saved(fig, tmp_path, name):
    """Write ``fig`` as PNG and SVG; both files must be non-empty."""
    for ext in ("png", "svg"):
        path = tmp_path / f"{name}.{ext}"
        fig.savefig(path)
        assert path.stat().st_size > 500, path


def by_gid(ax, gid):
    found = [a for a in [*ax.lines, *ax.collections] if a.get_gid() == gid]
    assert found, f"no artist with gid {gid!r} on {ax.get_title()!r}"
    return found


def r_ppoints(n):
    """R's ppoints(n), written out from its definition (?ppoints)."""
    a = 3 / 8 if n <= 10 else 1 / 2
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


# -- import time ---------------------------------------------------------------------------------
def test_import_multilevel_does_not_import_matplotlib():
    code = ("import sys, multilevel as ml\n"
            "assert 'matplotlib' not in sys.modules, 'import multilevel imported matplotlib'\n"
            "assert 'multilevel.plotting' not in sys.modules\n"
            "plot = ml.plot\n"
            "assert 'matplotlib' not in sys.modules, 'ml.plot imported matplotlib'\n"
            "assert plot.caterpillar is ml.plot.caterpillar and 'plot' in ml.__all__\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_r_ppoints_values():
    # R 4.2.2: ppoints(5) and ppoints(12)[1:2]
    assert r_ppoints(5) == pytest.approx([0.1190476, 0.3095238, 0.5, 0.6904762, 0.8809524],
                                         abs=1e-7)
    assert r_ppoints(12)[:2] == pytest.approx([0.04166667, 0.125], abs=1e-8)


# -- caterpillar ---------------------------------------------------------------------------------
def check_caterpillar(fig, fit, z=Z95, groups=None):
    """Every panel: one point per level at the mode, sorted by the group's first term, and an
    interval mode +- z sqrt(condvar) from ranef_condvar."""
    ranef, condvar = fit.ranef, fit.ranef_condvar
    panels = [(g, j) for g in (groups or ranef) for j in range(ranef[g].shape[1])]
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == len(panels)
    for ax, (g, j) in zip(axes, panels, strict=True):
        frame = ranef[g]
        order = np.argsort(frame.iloc[:, 0].to_numpy(), kind="stable")
        term = frame.columns[j]
        assert ax.get_title() == f"{g}: {term}"
        (points,) = by_gid(ax, "modes")
        x, y = points.get_xdata(), points.get_ydata()
        assert len(x) == frame.shape[0]  # one point per level
        np.testing.assert_allclose(x, frame[term].to_numpy()[order], rtol=1e-12)
        np.testing.assert_array_equal(y, np.arange(frame.shape[0]))
        if j == 0:
            assert np.all(np.diff(x) >= 0)  # sorted
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [str(v) for v in frame.index[order]]
        sd = np.sqrt(np.asarray(condvar[g])[:, j, j])[order]
        (segments,) = by_gid(ax, "intervals")
        seg = np.asarray(segments.get_segments())
        assert seg.shape == (frame.shape[0], 2, 2)
        np.testing.assert_allclose(seg[:, 0, 0], x - z * sd, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(seg[:, 1, 0], x + z * sd, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(seg[:, 0, 1], np.arange(frame.shape[0]))


@pytest.mark.parametrize("name", ["sleep", "cbpp", "penicillin"])
def test_caterpillar_points_and_intervals_are_the_conditional_modes(name, request, tmp_path):
    fit = request.getfixturevalue(name)
    fig = ml.plot.caterpillar(fit)
    check_caterpillar(fig, fit)
    if name == "sleep":  # drawing a file is slow; one per plot function and file format
        saved(fig, tmp_path, f"caterpillar_{name}")


@pytest.mark.parametrize("name", ["sleep", "cbpp", "penicillin"])
def test_caterpillar_draws_what_lme4s_dotplot_draws(name, request):
    # tests/reference/make_plot_refs.R: lme4 1.1-31's dotplot(ranef(fit, condVar = TRUE)),
    # levels in its order, segments mode -+ 1.96 condsd (ours: qnorm(0.975) = 1.959964)
    ref = LME4_PLOTS[{"sleep": "sleepstudy"}.get(name, name)]["caterpillar"]
    fig = ml.plot.caterpillar(request.getfixturevalue(name))
    panels = [(g, t, r) for g, terms in ref.items() for t, r in terms.items()]
    assert [a.get_title() for a in fig.axes] == [f"{g}: {t}" for g, t, _ in panels]
    for ax, (_, _, r) in zip(fig.axes, panels, strict=True):
        scale = np.max(np.abs(r["mode"]))
        # the same order up to ties (Penicillin's balanced plates share modes; R breaks the
        # tie by level, we by rounding): each row's level has R's mode of that row
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sorted(labels) == sorted(r["levels"])
        r_mode = dict(zip(r["levels"], r["mode"], strict=True))
        np.testing.assert_allclose([r_mode[v] for v in labels], r["mode"], atol=1e-3 * scale)
        (points,) = by_gid(ax, "modes")
        # conditional modes depend on the variance parameters: their tolerance (1e-3) relative
        # to the panel's scale (a GLMM's optimum differs from lme4's by about 4e-4 here)
        np.testing.assert_allclose(points.get_xdata(), r["mode"], rtol=1e-3, atol=1e-3 * scale)
        seg = np.asarray(by_gid(ax, "intervals")[0].get_segments())
        half = (seg[:, 1, 0] - seg[:, 0, 0]) / 2
        # conditional SDs: the variance parameters' tolerance
        np.testing.assert_allclose(half / Z95, r["condsd"], rtol=1e-3)
        np.testing.assert_allclose(seg[:, 0, 0], r["lower"], rtol=1e-3, atol=1e-3 * scale)
        np.testing.assert_allclose(seg[:, 1, 0], r["upper"], rtol=1e-3, atol=1e-3 * scale)


def test_caterpillar_level_group_and_given_axes(sleep, penicillin):
    z90 = stats.norm.ppf(0.95)
    fig = ml.plot.caterpillar(sleep, level=0.9)
    check_caterpillar(fig, sleep, z=z90)
    assert "90%" in fig.axes[0].get_xlabel()
    fig = ml.plot.caterpillar(penicillin, group="sample")
    check_caterpillar(fig, penicillin, groups=["sample"])
    assert len(fig.axes) == 1
    given = plt.figure().subplots(1, 2)
    fig = ml.plot.caterpillar(sleep, ax=list(given))
    assert fig is given[0].figure
    check_caterpillar(fig, sleep)


def test_caterpillar_unsorted_keeps_the_fits_order(cbpp):
    fig = ml.plot.caterpillar(cbpp, sort=False)
    (points,) = by_gid(fig.axes[0], "modes")
    np.testing.assert_allclose(points.get_xdata(), cbpp.ranef["herd"].iloc[:, 0].to_numpy())


def test_caterpillar_of_lme_uses_its_linear_mixed_models_condvar(orthodont_lme, tmp_path):
    inner = orthodont_lme.fit
    for g, frame in orthodont_lme.ranef.items():
        pd.testing.assert_frame_equal(frame, inner.ranef[g])
    fig = ml.plot.caterpillar(orthodont_lme)
    # the lme's own conditional modes with the inner fit's conditional variances
    check_caterpillar(fig, inner)


def test_caterpillar_of_nlme_maps_the_linearized_fits_condvar(orange_nlme, tmp_path):
    fig = ml.plot.caterpillar(orange_nlme)
    modes = orange_nlme.ranef["Tree"]["Asym"]
    # the last linearization's model names its group nlme_g0 and orders the trees itself
    inner_modes = orange_nlme.lme.ranef["nlme_g0"].iloc[:, 0]
    inner_sd = pd.Series(np.sqrt(orange_nlme.lme.ranef_condvar["nlme_g0"][:, 0, 0]),
                         index=inner_modes.index.astype(str))
    order = np.argsort(modes.to_numpy(), kind="stable")
    (ax,) = fig.axes
    (points,) = by_gid(ax, "modes")
    np.testing.assert_allclose(points.get_xdata(), modes.to_numpy()[order])
    sd = inner_sd.loc[modes.index.astype(str)[order]].to_numpy()
    seg = np.asarray(by_gid(ax, "intervals")[0].get_segments())
    np.testing.assert_allclose(seg[:, 0, 0], modes.to_numpy()[order] - Z95 * sd)
    np.testing.assert_allclose(seg[:, 1, 0], modes.to_numpy()[order] + Z95 * sd)


def test_caterpillar_without_conditional_variances_draws_points_and_says_so():
    class ModesOnly:  # a result that reports conditional modes and nothing more
        ranef = {"g": pd.DataFrame({"(Intercept)": [0.3, -1.0, 0.5]},
                                   index=pd.Index(["a", "b", "c"], name="g"))}

    fig = ml.plot.caterpillar(ModesOnly())
    (ax,) = fig.axes
    (points,) = by_gid(ax, "modes")
    np.testing.assert_allclose(points.get_xdata(), [-1.0, 0.3, 0.5])
    assert not [c for c in ax.collections if c.get_gid() == "intervals"]
    assert "no conditional variances" in ax.get_xlabel()


def test_caterpillar_bad_input_names_it(sleep, orthodont_gls):
    with pytest.raises(ArgumentError, match="fit must be a fitted multilevel model"):
        ml.plot.caterpillar("Reaction ~ Days")
    with pytest.raises(ArgumentError, match=r"'Subjct'.*'Subject'"):
        ml.plot.caterpillar(sleep, group="Subjct")
    with pytest.raises(NotApplicableError, match="no random effects"):
        ml.plot.caterpillar(orthodont_gls)
    with pytest.raises(ArgumentError, match="level"):
        ml.plot.caterpillar(sleep, level=95)
    with pytest.raises(ArgumentError, match="2 panel"):
        ml.plot.caterpillar(sleep, ax=plt.figure().add_subplot())


def test_missing_matplotlib_names_the_extra(sleep, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r'multilevel\[plot\]'):
        ml.plot.caterpillar(sleep)


# -- residuals -------------------------------------------------------------------------------------
def scatter(ax, gid="points"):
    found = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == gid]
    assert len(found) == 1
    return np.asarray(found[0].get_offsets())


def check_qq(offsets, sample):
    x = np.sort(np.asarray(sample, dtype=float))
    np.testing.assert_allclose(offsets[:, 1], x, rtol=1e-12)
    np.testing.assert_allclose(offsets[:, 0], stats.norm.ppf(r_ppoints(x.size)), rtol=1e-10)


def standardized(fit):
    """The Pearson residuals over sigma, in each kind's own vocabulary."""
    if isinstance(fit, ml.LinearMixedModelResult | ml.GeneralizedLinearMixedModelResult):
        return fit.residuals("pearson", scaled=True)
    return np.asarray(fit.residuals(type="pearson"), dtype=float)


@pytest.mark.parametrize("name", ["sleep", "cbpp", "penicillin", "orthodont_lme",
                                  "orthodont_gls", "orange_nlme"])
def test_residual_panels_hold_fitted_residuals_and_normal_quantiles(name, request, tmp_path):
    fit = request.getfixturevalue(name)
    fig = ml.plot.residuals(fit)
    a1, a2, a3, a4 = fig.axes
    fitted = np.asarray(fit.fitted(), dtype=float)
    raw = np.asarray(fit.residuals(), dtype=float)
    std = standardized(fit)
    np.testing.assert_allclose(scatter(a1), np.column_stack([fitted, raw]), rtol=1e-12)
    assert by_gid(a1, "zero")[0].get_ydata()[0] == 0
    np.testing.assert_allclose(scatter(a2), np.column_stack([fitted, np.sqrt(np.abs(std))]),
                               rtol=1e-12)
    check_qq(scatter(a3), std)
    if name in ("sleep", "cbpp", "penicillin"):  # R's qqnorm (make_plot_refs.R)
        ref = LME4_PLOTS[{"sleep": "sleepstudy"}.get(name, name)]["qq"]
        np.testing.assert_allclose(scatter(a3)[:, 0], ref["x"], rtol=1e-10)
        np.testing.assert_allclose(scatter(a3)[:, 1], ref["y"], rtol=1e-3, atol=1e-3)
    ranef = getattr(fit, "ranef", {})
    if ranef:
        series = {c.get_label(): np.asarray(c.get_offsets()) for c in a4.collections
                  if isinstance(c, PathCollection)}
        expected = {f"{g}: {t}": frame[t].to_numpy() for g, frame in ranef.items()
                    for t in frame.columns}
        assert set(series) == set(expected)
        for label, b in expected.items():
            check_qq(series[label], b / np.std(b, ddof=1))
        assert {t.get_text() for t in a4.get_legend().get_texts()} == set(expected)
    else:
        assert "no random effects" in a4.texts[0].get_text()
    if name in ("sleep", "orthodont_gls"):
        saved(fig, tmp_path, f"residuals_{name}")


def test_residuals_glmm_uses_deviance_residuals(cbpp):
    fig = ml.plot.residuals(cbpp)
    np.testing.assert_allclose(scatter(fig.axes[0])[:, 1], cbpp.residuals("deviance"))
    assert fig.axes[0].get_ylabel() == "deviance residuals"


def test_residuals_on_a_given_figure_and_bad_input(sleep):
    given = plt.figure()
    assert ml.plot.residuals(sleep, fig=given) is given
    assert len(given.axes) == 4
    with pytest.raises(ArgumentError, match="fit must be a fitted multilevel model"):
        ml.plot.residuals(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ArgumentError, match="fig must be a matplotlib Figure"):
        ml.plot.residuals(sleep, fig="figure.png")


# -- Bayesian fits ---------------------------------------------------------------------------------
@pytest.mark.slow  # compiling and sampling take 10-20 s
def test_bayes_caterpillar_and_residuals(bayes_sleep, tmp_path):
    fit = bayes_sleep
    fig = ml.plot.caterpillar(fit)
    r = fit.draws("r_Subject")  # (chains, draws, levels, terms)
    r = r.reshape(-1, *r.shape[2:])
    frame = fit.ranef["Subject"]
    order = np.argsort(frame.iloc[:, 0].to_numpy(), kind="stable")
    for j, ax in enumerate(fig.axes):
        (points,) = by_gid(ax, "modes")
        np.testing.assert_allclose(points.get_xdata(), r[:, order, j].mean(axis=0), rtol=1e-9)
        seg = np.asarray(by_gid(ax, "intervals")[0].get_segments())
        np.testing.assert_allclose(seg[:, 0, 0], np.quantile(r[:, order, j], 0.025, axis=0))
        np.testing.assert_allclose(seg[:, 1, 0], np.quantile(r[:, order, j], 0.975, axis=0))
        assert "posterior interval" in ax.get_xlabel()
    saved(fig, tmp_path, "caterpillar_bayes")
    fig = ml.plot.residuals(fit)
    np.testing.assert_allclose(scatter(fig.axes[0]),
                               np.column_stack([fit.fitted(), fit.residuals()]))
    check_qq(scatter(fig.axes[2]), fit.residuals() / fit.sigma)
    saved(fig, tmp_path, "residuals_bayes")


# -- profiles --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def profiles(dyestuff):
    intercept = ml.lmer("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"))
    return {"dyestuff": dyestuff.profile(), "sleepstudy": intercept.profile()}


@pytest.mark.parametrize("name", ["dyestuff", "sleepstudy"])
def test_profile_lines_are_the_profile_and_its_levels(name, profiles, tmp_path):
    prof = profiles[name]
    levels = (0.5, 0.8, 0.9, 0.95, 0.99)
    fig = ml.plot.profile(prof)
    names = list(dict.fromkeys(prof["parameter"]))
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == len(names)
    zs = [stats.norm.ppf(0.5 + p / 2) for p in levels]
    for ax, p in zip(axes, names, strict=True):
        rows = prof[prof["parameter"] == p].sort_values("value")
        (line,) = by_gid(ax, "zeta")
        np.testing.assert_allclose(line.get_xdata(), rows["value"])
        np.testing.assert_allclose(line.get_ydata(), rows["zeta"])
        heights = sorted(ln.get_ydata()[0] for ln in by_gid(ax, "level"))
        np.testing.assert_allclose(heights, sorted([-z for z in zs] + zs))
        # each interval end sits where the profile line crosses -z or +z
        (ends,) = by_gid(ax, "interval-ends")
        seg = np.asarray(ends.get_segments())
        x_end = seg[:, 0, 0]
        tip = np.where(np.abs(seg[:, 0, 1]) > np.abs(seg[:, 1, 1]), seg[:, 0, 1], seg[:, 1, 1])
        # (a profile may stop short of +-z by its root finder's tolerance, 1e-4 here)
        np.testing.assert_allclose(np.interp(x_end, rows["value"], rows["zeta"]), tip,
                                   atol=1e-4)
        reached = [s for z in zs for s in (-z, z)
                   if rows["zeta"].min() - 1e-4 <= s <= rows["zeta"].max() + 1e-4]
        np.testing.assert_allclose(sorted(tip), sorted(reached), atol=1e-12)
    if name == "dyestuff":
        saved(fig, tmp_path, f"profile_{name}")


def test_profile_95_ends_are_the_profile_interval(dyestuff):
    # fit.profile(level=0.95) runs from the lower to the upper profile limit, so the plot's
    # 95% ends must be confint(method="profile")
    ci = dyestuff.confint(method="profile")
    fig = ml.plot.profile(dyestuff.profile(level=0.95), level=0.95)
    for ax, (name, row) in zip(fig.axes, ci.iterrows(), strict=False):
        assert ax.get_title() == name
        seg = np.asarray(by_gid(ax, "interval-ends")[0].get_segments())
        np.testing.assert_allclose(sorted(seg[:, 0, 0]), [row["lower"], row["upper"]],
                                   rtol=1e-6)


def test_profile_bad_input(profiles):
    with pytest.raises(ArgumentError, match="prof must be a profile"):
        ml.plot.profile(pd.DataFrame({"x": [1]}))
    with pytest.raises(ArgumentError, match="'sd_Batch'"):
        ml.plot.profile(profiles["dyestuff"], parameters="sd_Batch")
    with pytest.raises(ArgumentError, match="level"):
        ml.plot.profile(profiles["dyestuff"], level=[0.9, 2])


# -- power -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def curves(sleep):
    sleep_i = ml.lmer("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"))
    orth = ml.lmer("distance ~ age + (1 | Subject)", ml.datasets.load("Orthodont"))
    return {
        "sleepstudy": ml.power_curve(sleep_i, "Days", n_groups=[3, 6], nsim=12, seed=1,
                                     progress=False, n_jobs=1),
        "orthodont": ml.power_curve(orth, "age", n_per_group=[2, 4], nsim=10, seed=2,
                                    progress=False, n_jobs=1),
    }


def clopper_pearson(k, n, level=0.95):
    a = (1 - level) / 2
    lo = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return lo, hi


@pytest.mark.parametrize("name", ["sleepstudy", "orthodont"])
def test_power_error_bars_are_the_binomial_intervals(name, curves, tmp_path):
    curve = curves[name]
    ax = ml.plot.power(curve)
    (points,) = by_gid(ax, "power")
    np.testing.assert_allclose(points.get_xdata(), curve.index.to_numpy(dtype=float))
    np.testing.assert_allclose(points.get_ydata(), curve["power"])
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    seg = np.asarray(bars[0].get_segments())
    expected = [clopper_pearson(round(p * n), n) for p, n in zip(curve["power"], curve["nsim"],
                                                                 strict=True)]
    np.testing.assert_allclose(seg[:, 0, 1], [e[0] for e in expected], atol=1e-9)
    np.testing.assert_allclose(seg[:, 1, 1], [e[1] for e in expected], atol=1e-9)
    np.testing.assert_allclose(seg[:, 0, 0], curve.index.to_numpy(dtype=float))
    assert by_gid(ax, "target")[0].get_ydata()[0] == 0.8
    assert ax.get_xlabel() == curve.index.name
    if name == "sleepstudy":
        saved(ax.figure, tmp_path, f"power_{name}")


def test_power_with_two_sizes_draws_a_line_per_second_size():
    curve = pd.DataFrame({"n_groups": [10, 20, 10, 20], "n_per_group": [5, 5, 10, 10],
                          "power": [0.4, 0.7, 0.6, 0.9], "ci_lower": [0.3, 0.6, 0.5, 0.8],
                          "ci_upper": [0.5, 0.8, 0.7, 0.95], "nsim": 100}
                         ).set_index(["n_groups", "n_per_group"])
    ax = ml.plot.power(curve, target=None)
    lines = by_gid(ax, "power")
    assert [list(ln.get_ydata()) for ln in lines] == [[0.4, 0.7], [0.6, 0.9]]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"n_per_group = 5",
                                                                  "n_per_group = 10"}
    assert not [ln for ln in ax.lines if ln.get_gid() == "target"]


def test_power_bad_input(curves):
    with pytest.raises(ArgumentError, match="curve must be the table ml.power_curve returns"):
        ml.plot.power([0.8, 0.9])
    with pytest.raises(ArgumentError, match="target"):
        ml.plot.power(curves["sleepstudy"], target=80)


# -- bootstrap -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boots(sleep, cbpp):
    return {"sleepstudy": ml.bootstrap(sleep, n=20, seed=1, progress=False, n_jobs=1),
            "cbpp": ml.bootstrap(cbpp, n=10, seed=2, progress=False, n_jobs=1)}


@pytest.mark.parametrize("name", ["sleepstudy", "cbpp"])
def test_bootstrap_histograms_hold_every_replicate(name, boots, tmp_path):
    boot = boots[name]
    fig = ml.plot.bootstrap(boot)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == boot.replicates.shape[1]
    intervals = boot.intervals(0.95)
    for ax, p in zip(axes, boot.replicates.columns, strict=True):
        x = boot.replicates[p].dropna().to_numpy()
        heights = [bar.get_height() for bar in ax.patches]
        assert sum(heights) == len(x) == len(boot.replicates) - boot.n_failed
        left = min(bar.get_x() for bar in ax.patches)
        right = max(bar.get_x() + bar.get_width() for bar in ax.patches)
        assert left == pytest.approx(x.min()) and right == pytest.approx(x.max())
        assert by_gid(ax, "estimate")[0].get_xdata()[0] == pytest.approx(boot.estimate[p])
        ends = sorted(ln.get_xdata()[0] for ln in by_gid(ax, "interval"))
        np.testing.assert_allclose(ends, [np.quantile(x, 0.025), np.quantile(x, 0.975)])
        np.testing.assert_allclose(ends, intervals.loc[p, ["lower", "upper"]].to_numpy())
    if name == "sleepstudy":
        saved(fig, tmp_path, f"bootstrap_{name}")


def test_bootstrap_parameters_and_bad_input(boots):
    fig = ml.plot.bootstrap(boots["sleepstudy"], parameters=["Days"], level=0.8)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    x = boots["sleepstudy"].replicates["Days"].to_numpy()
    ends = sorted(ln.get_xdata()[0] for ln in by_gid(ax, "interval"))
    np.testing.assert_allclose(ends, np.quantile(x, [0.1, 0.9]))
    with pytest.raises(ArgumentError, match="boot must be the result of ml.bootstrap"):
        ml.plot.bootstrap({"Days": [1, 2]})
    with pytest.raises(ArgumentError, match=r"'days'.*'Days'"):
        ml.plot.bootstrap(boots["sleepstudy"], parameters="days")
