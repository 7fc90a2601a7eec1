"""ml.plot.growth and ml.plot.effects: the artists drawn, against the fits' own numbers.

growth: each panel holds its group's observed points, the group curve passes through
fitted() at the observed times, the population curve equals the level-0 prediction (lmer
sleepstudy and Orthodont, glmer on the response scale, lme, nlme Orange). effects: each line
is ml.predictions' estimate on the grid and each band (the PolyCollection) its interval, one
per moderator value (Orthodont by Sex, sleepstudy, cbpp glmer by period). ml.predictions
itself is checked against R in tests/test_predictions.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, ColumnNotFoundError, DataError

from reference_data import load_data

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from multilevel.plotting.curves import growth_curves  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sleep_fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"))


@pytest.fixture(scope="module")
def orthodont_fit():
    return ml.lmer("distance ~ age * Sex + (age | Subject)", load_data("Orthodont"))


@pytest.fixture(scope="module")
def orange_fit():
    return ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", load_data("Orange"),
                   random="Asym ~ 1 | Tree", fixed="Asym + xmid + scal ~ 1",
                   start={"Asym": 192, "xmid": 728, "scal": 353})


def lines(ax, gid):
    return [ln for ln in ax.get_lines() if ln.get_gid() == gid]


def check_panels(fig, rows, time, group, fitted, population_of, y=None, tol=1e-8):
    """Every visible panel: observed points = the group's rows, the group curve through the
    fitted values at the observed times, the population curve = ``population_of(frame)``."""
    axes = [a for a in fig.axes if a.get_visible() and a.get_title()]
    labels = rows[group].astype(str).to_numpy()
    assert axes
    for a in axes:
        idx = np.flatnonzero(labels == a.get_title())
        (obs,) = lines(a, "observed")
        (fit_line,) = lines(a, "fitted")
        (pop,) = lines(a, "population")
        t = rows[time].to_numpy(dtype=float)[idx]
        assert len(obs.get_xdata()) == idx.size
        order = np.argsort(t, kind="stable")
        assert obs.get_xdata() == pytest.approx(t[order])
        if y is not None:
            assert obs.get_ydata() == pytest.approx(y[idx][order], rel=1e-10)
        x = np.asarray(fit_line.get_xdata(), dtype=float)
        through = np.interp(t, x, np.asarray(fit_line.get_ydata(), dtype=float))
        assert through == pytest.approx(fitted[idx], rel=tol, abs=tol)
        frame = rows.iloc[np.repeat(idx[:1], x.size)].reset_index(drop=True)
        frame[time] = np.asarray(pop.get_xdata(), dtype=float)
        assert pop.get_ydata() == pytest.approx(population_of(frame), rel=1e-10)
    return axes


def test_growth_panels_sleepstudy(sleep_fit):
    rows = load_data("sleepstudy")
    fig = ml.plot.growth(sleep_fit, time="Days", group="Subject")
    axes = check_panels(fig, rows, "Days", "Subject", sleep_fit.fitted(),
                        lambda f: sleep_fit.predict(f, re_form="NA"),
                        y=rows["Reaction"].to_numpy())
    assert len(axes) == 18
    assert "Days" in fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else True


def test_growth_chosen_groups_and_max_panels(sleep_fit):
    fig = ml.plot.growth(sleep_fit, time="Days", group="Subject", groups=["308", "335"])
    assert sorted(a.get_title() for a in fig.axes if a.get_visible()) == ["308", "335"]
    fig = ml.plot.growth(sleep_fit, time="Days", group="Subject", max_panels=4)
    assert len([a for a in fig.axes if a.get_visible()]) == 4
    assert "first 4 of 18" in fig._suptitle.get_text()


def test_growth_spaghetti_orthodont_one_population_curve_per_sex(orthodont_fit):
    rows = load_data("Orthodont")
    ax = ml.plot.growth(orthodont_fit, time="age", group="Subject", panels=False)
    assert len(lines(ax, "observed")) == 27
    assert len(lines(ax, "fitted")) == 27
    assert len(lines(ax, "population")) == 2  # one per Sex: the covariate the fit has
    fitted = orthodont_fit.fitted()
    labels = rows["Subject"].astype(str).to_numpy()
    for obs, curve in zip(lines(ax, "observed"), lines(ax, "fitted"), strict=True):
        # the observed points identify the subject: match them to its rows
        x = np.asarray(curve.get_xdata(), dtype=float)
        cands = [s for s in np.unique(labels)
                 if np.allclose(np.sort(rows["distance"].to_numpy()[labels == s]),
                                np.sort(obs.get_ydata()))]
        idx = np.flatnonzero(labels == cands[0])
        through = np.interp(rows["age"].to_numpy()[idx], x, curve.get_ydata())
        assert through == pytest.approx(fitted[idx], rel=1e-8)


def test_growth_panels_nlme_orange(orange_fit):
    rows = load_data("Orange")
    fig = ml.plot.growth(orange_fit, time="age", group="Tree")
    axes = check_panels(fig, rows, "age", "Tree", orange_fit.fitted().to_numpy(),
                        lambda f: orange_fit.predict(f, level=0).to_numpy(),
                        y=rows["circumference"].to_numpy())
    assert len(axes) == 5


def test_growth_glmer_response_scale():
    d = load_data("cbpp").assign(time=lambda f: f["period"].astype(int).astype(float))
    fit = ml.glmer("cbind(incidence, size - incidence) ~ time + (1 | herd)", d,
                   family="binomial")
    fig = ml.plot.growth(fit, time="time", group="herd", groups=["1", "2", "3", "4"])
    check_panels(fig, d, "time", "herd", fit.fitted(type="response"),
                 lambda f: fit.predict(f, type="response", re_form="NA"),
                 y=(d["incidence"] / d["size"]).to_numpy())


def test_growth_lme(orthodont_fit):
    d = load_data("Orthodont")
    fit = ml.lme("distance ~ age * Sex", d, random="~ age | Subject")
    fig = ml.plot.growth(fit, time="age", group="Subject", groups=["M01", "F01"])
    check_panels(fig, d, "age", "Subject", fit.fitted(), lambda f: fit.predict(f, level=0),
                 y=d["distance"].to_numpy())


def test_growth_time_varying_covariate_joins_the_fitted_values():
    rng = np.random.default_rng(7)
    d = load_data("sleepstudy").assign(load=lambda f: rng.normal(size=len(f)))
    fit = ml.lmer("Reaction ~ Days + load + (1 | Subject)", d)
    curves = growth_curves(fit, "Days", "Subject", groups=["308"])
    (c,) = curves
    assert not c.smooth
    idx = np.flatnonzero(d["Subject"].astype(str).to_numpy() == "308")
    assert c.curve_time == pytest.approx(d["Days"].to_numpy()[idx])
    assert c.fitted == pytest.approx(fit.fitted()[idx], rel=1e-12)
    assert c.population == pytest.approx(fit.predict(d.iloc[idx], re_form="NA"), rel=1e-10)


def _band(ax):
    """(x, lower, upper) of each fill_between band (gid 'band'), from its polygon."""
    out = []
    for coll in ax.collections:
        if coll.get_gid() != "band":
            continue
        v = coll.get_paths()[0].vertices
        xs = np.unique(v[:, 0])
        out.append((xs, np.array([v[v[:, 0] == x, 1].min() for x in xs]),
                    np.array([v[v[:, 0] == x, 1].max() for x in xs])))
    return out


def test_effects_orthodont_by_sex(orthodont_fit):
    ax = ml.plot.effects(orthodont_fit, "age", by="Sex")
    effect, bands = lines(ax, "effect"), _band(ax)
    assert len(effect) == 2 and len(bands) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Male", "Female"]
    for line, (xs, low, high), sex in zip(effect, bands, ["Male", "Female"], strict=True):
        grid = pd.DataFrame({"age": np.asarray(line.get_xdata(), dtype=float),
                             "Sex": pd.Categorical([sex] * len(line.get_xdata()),
                                                   categories=["Male", "Female"])})
        assert len(grid) == 50
        assert grid["age"].min() == 8 and grid["age"].max() == 14
        ref = ml.predictions(orthodont_fit, grid)
        assert line.get_ydata() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
        assert xs == pytest.approx(grid["age"].to_numpy())
        assert low == pytest.approx(ref["conf_low"].to_numpy(), rel=1e-12)
        assert high == pytest.approx(ref["conf_high"].to_numpy(), rel=1e-12)


def test_effects_sleepstudy_and_numeric_moderator(sleep_fit, orthodont_fit):
    ax = ml.plot.effects(sleep_fit, "Days", level=0.9)
    (line,) = lines(ax, "effect")
    ref = ml.predictions(sleep_fit, pd.DataFrame({"Days": line.get_xdata()}), level=0.9)
    assert line.get_ydata() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
    ((_, low, high),) = _band(ax)
    assert low == pytest.approx(ref["conf_low"].to_numpy(), rel=1e-12)
    assert high == pytest.approx(ref["conf_high"].to_numpy(), rel=1e-12)
    assert "90 %" in ax.get_title()
    # a numeric moderator at mean - 1 SD, mean, mean + 1 SD; the other column held at Male
    ax = ml.plot.effects(orthodont_fit, "Sex", by="age")
    d = load_data("Orthodont")
    m, s = d["age"].mean(), d["age"].std()
    assert len(ax.containers) == 3
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[1] == f"mean ({m:.4g})" and labels[0].startswith("mean - 1 SD")
    for container, age in zip(ax.containers, [m - s, m, m + s], strict=True):
        grid = pd.DataFrame({"Sex": ["Male", "Female"], "age": [age, age]})
        ref = ml.predictions(orthodont_fit, grid)
        data_line, _, (bars,) = container.lines
        assert data_line.get_ydata() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
        seg = np.array(bars.get_segments())
        assert seg[:, 0, 1] == pytest.approx(ref["conf_low"].to_numpy(), rel=1e-12)
        assert seg[:, 1, 1] == pytest.approx(ref["conf_high"].to_numpy(), rel=1e-12)


def test_effects_glmer_factor_term_on_the_response_scale():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    ax = ml.plot.effects(fit, "period")
    (container,) = ax.containers
    data_line, _, (bars,) = container.lines
    ref = ml.predictions(fit, pd.DataFrame({"period": ["1", "2", "3", "4"]}))
    assert data_line.get_ydata() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
    seg = np.array(bars.get_segments())
    assert seg[:, 0, 1] == pytest.approx(ref["conf_low"].to_numpy(), rel=1e-12)
    assert seg[:, 1, 1] == pytest.approx(ref["conf_high"].to_numpy(), rel=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert ref["estimate"].between(0, 1).all()


def test_effects_title_names_the_held_values(orthodont_fit):
    ax = ml.plot.effects(orthodont_fit, "age")
    assert "held at Sex = Male" in ax.get_title()
    ax = ml.plot.effects(orthodont_fit, "age", at={"Sex": "Female"})
    assert "held at Sex = Female" in ax.get_title()
    (line,) = lines(ax, "effect")
    grid = pd.DataFrame({"age": line.get_xdata(), "Sex": ["Female"] * 50})
    assert line.get_ydata() == pytest.approx(
        ml.predictions(orthodont_fit, grid)["estimate"].to_numpy(), rel=1e-12)


def test_bad_input_raises_typed_errors(sleep_fit):
    with pytest.raises(ColumnNotFoundError, match="'days'.*Did you mean 'Days'"):
        ml.plot.growth(sleep_fit, time="days", group="Subject")
    with pytest.raises(ColumnNotFoundError, match="Subj"):
        ml.plot.growth(sleep_fit, time="Days", group="Subj")
    with pytest.raises(DataError, match="'Subject' is not numeric"):
        ml.plot.growth(sleep_fit, time="Subject", group="Subject")
    with pytest.raises(DataError, match="'999'"):
        ml.plot.growth(sleep_fit, time="Days", group="Subject", groups=["999"])
    with pytest.raises(ArgumentError, match="panels"):
        ml.plot.growth(sleep_fit, time="Days", group="Subject", panels="yes")
    with pytest.raises(ArgumentError, match="ax"):
        ml.plot.growth(sleep_fit, time="Days", group="Subject", panels=False, ax="axes")
    with pytest.raises(ArgumentError, match="2 panel"):
        ml.plot.growth(sleep_fit, time="Days", group="Subject", groups=["308", "309"],
                       ax=plt.figure().add_subplot())
    with pytest.raises(ColumnNotFoundError, match="Dys"):
        ml.plot.effects(sleep_fit, "Dys")
    with pytest.raises(ColumnNotFoundError, match="'Sex'"):
        ml.plot.effects(sleep_fit, "Days", by="Sex")
    with pytest.raises(ColumnNotFoundError, match="'x'"):
        ml.plot.effects(sleep_fit, "Days", at={"x": 1.0})
    with pytest.raises(ArgumentError, match="by"):
        ml.plot.effects(sleep_fit, "Days", by="Days")
    with pytest.raises(ArgumentError, match="level"):
        ml.plot.effects(sleep_fit, "Days", level=95)
    with pytest.raises(DataError, match="180"):
        ml.plot.growth(sleep_fit, time="Days", group="Subject",
                       data=load_data("sleepstudy").iloc[:10])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::multilevel.bayesian.result.SamplingWarning")
def test_bayes_predictions_growth_and_effects():
    # a short run (chains=2, 200 draws): what is checked is that the plots and intervals are
    # the draws' own summaries, not the posterior's convergence
    d = load_data("sleepstudy")
    fit = ml.bayes("Reaction ~ Days + (Days | Subject)", d, chains=2, draws=200, warmup=200,
                   seed=1, progress=False)
    nd = pd.DataFrame({"Days": [0.0, 4.5, 9.0]})
    out = ml.predictions(fit, nd)
    draws = fit.predict(nd, re_form="NA", summary=False)
    assert out["estimate"].to_numpy() == pytest.approx(draws.mean(axis=0), rel=1e-12)
    assert out["std_error"].to_numpy() == pytest.approx(draws.std(axis=0, ddof=1), rel=1e-12)
    assert out["conf_low"].to_numpy() == pytest.approx(
        np.quantile(draws, 0.025, axis=0), rel=1e-12)
    with pytest.raises(ml.errors.NotApplicableError, match="df"):
        ml.predictions(fit, nd, df=10)
    fig = ml.plot.growth(fit, time="Days", group="Subject", groups=["308", "309", "310"])
    check_panels(fig, d, "Days", "Subject", fit.fitted(),
                 lambda f: fit.predict(f, re_form="NA"), y=d["Reaction"].to_numpy(), tol=1e-6)
    ax = ml.plot.effects(fit, "Days")
    (line,) = lines(ax, "effect")
    ref = ml.predictions(fit, pd.DataFrame({"Days": line.get_xdata()}))
    assert line.get_ydata() == pytest.approx(ref["estimate"].to_numpy(), rel=1e-12)
