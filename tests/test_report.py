"""ml.report and ``multilevel report``: one self-contained HTML page per fit, for every model
kind. The page is parsed (html.parser) and checked for its sections, the fit's own numbers
(each table cell carries its exact value in data-value), embedded figures, and the absence of
anything fetched from elsewhere. The Bayesian kind and the real browser are slow tests
(tests/test_report_browser.py for the browser)."""

from __future__ import annotations

import base64
import math
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import multilevel as ml
from multilevel.cli.main import main
from multilevel.errors import ArgumentError
from multilevel.report.page import SECTIONS

SECTION_IDS = [ident for ident, _ in SECTIONS]


class Page(HTMLParser):
    """What the tests read from a page: element ids, attributes of img/script/link/iframe,
    table cells (with their data-value) by table id, and the text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.resources: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.images: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.cells: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.text_parts: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._value: str | None = None
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag not in ("meta", "link", "img", "br", "hr", "input"):
            self._open.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for key in ("src", "href", "srcset", "poster", "data"):
            if key in a:
                self.resources.append((tag, key, a[key]))
        if tag == "img":
            self.images.append(a)
        if tag == "table":
            self._table = a.get("id", "")
            self.cells[self._table] = []
        if tag == "tr" and self._table is not None:
            self.cells[self._table].append([])
        if tag in ("td", "th") and self._table is not None:
            self._cell, self._value = [], a.get("data-value")

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()
        else:
            raise AssertionError(f"</{tag}> closes {self._open[-1:] or 'nothing'}")
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.cells[self._table][-1].append(("".join(self._cell).strip(), self._value))
            self._cell = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text_parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def table(self, table_id: str) -> list[list[tuple[str, str | None]]]:
        return self.cells[table_id]


def check_self_contained(html_text: str, page: Page) -> None:
    assert "http://" not in html_text and "https://" not in html_text
    assert "<script" not in html_text.lower()
    for tag, key, value in page.resources:
        assert value.startswith("data:"), f"<{tag} {key}={value[:60]!r}> is not a data: URI"
    assert not page._open, f"unclosed elements: {page._open}"


def check_coefficients(page: Page, table: pd.DataFrame) -> None:
    rows = page.table("coefficient-table")
    header = [text for text, _ in rows[0]]
    assert header[0] == "Term"
    body = {r[0][0]: r[1:] for r in rows[1:]}
    assert list(body) == [str(i) for i in table.index]
    for name, cells in body.items():
        values = [float(v) for _, v in cells if v is not None]
        expected = [float(x) for c, x in table.loc[name].items()
                    if c in ("estimate", "std_error", "statistic", "df", "p_value",
                             "ci_lower", "ci_upper", "rhat", "ess_bulk", "ess_tail")
                    and math.isfinite(float(x))]
        assert values == pytest.approx(expected, rel=1e-12), name
        # the shown (rounded) estimate agrees with the exact one to its four decimals
        assert float(cells[0][0]) == pytest.approx(float(table.loc[name, "estimate"]),
                                                   abs=5.1e-5, rel=5e-4)


def check_page(html_text: str, fit, *, caterpillar: bool | None,
               coefficients: pd.DataFrame | None = None) -> Page:
    """Sections, coefficients, self-containment; the embedded SVG figures (caterpillar None:
    a page written without plots)."""
    page = Page(html_text)
    check_self_contained(html_text, page)
    for ident in SECTION_IDS:
        assert ident in page.ids, ident
    check_coefficients(page, fit.coef_table() if coefficients is None else coefficients)
    assert "residual-plot" in page.ids
    svgs = [img for img in page.images if img["src"].startswith("data:image/svg+xml;base64,")]
    if caterpillar is None:
        assert not page.images
        return page
    assert "caterpillar-plot" in page.ids
    assert len(svgs) == len(page.images) == (2 if caterpillar else 1)
    for img in svgs:
        assert img.get("alt")
        svg = base64.b64decode(img["src"].split(",", 1)[1]).decode("utf-8")
        assert "<svg" in svg and "</svg>" in svg
    return page


def statistics(page: Page) -> dict[str, float | str]:
    return {r[0][0]: (float(r[1][1]) if r[1][1] is not None else r[1][0])
            for r in page.table("statistics-table")[1:]}


# -- fits (module-scoped: each is fitted once) ------------------------------------------------

@pytest.fixture(scope="module")
def sleep_fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def sleep_page(sleep_fit):
    return ml.report(sleep_fit, data_name="sleepstudy")


@pytest.fixture(scope="module")
def orthodont():
    return ml.datasets.load("Orthodont")


# -- lmer ---------------------------------------------------------------------------------------

def test_lmer_page_has_every_section_and_the_fits_numbers(sleep_fit, sleep_page):
    page = check_page(sleep_page, sleep_fit, caterpillar=True)
    assert sleep_page.startswith("<!DOCTYPE html>")
    stats = statistics(page)
    assert stats["AIC"] == sleep_fit.aic and stats["BIC"] == sleep_fit.bic
    assert stats["log-likelihood (REML)"] == sleep_fit.loglik
    assert stats["observations"] == 180 and stats["groups: Subject"] == 18
    # the coefficient table has df and p-values (Satterthwaite, as lmerTest)
    header = [t for t, _ in page.table("coefficient-table")[0]]
    assert header == ["Term", "Estimate", "Std. error", "t value", "df", "p", "95 % CI lower",
                      "95 % CI upper"]
    assert "Satterthwaite" in page.text
    # variance components: the variances, SDs and the correlation of varcorr
    exact = [float(v) for row in page.table("variance-table")[1:] for _, v in row
             if v is not None]
    vc = sleep_fit.varcorr
    expected = []
    for _, row in vc.iterrows():
        expected += [row["corr"]] if isinstance(row["term2"], str) else [row["variance"],
                                                                           row["sd"]]
    assert exact == pytest.approx(expected, rel=1e-12)
    icc = {r[0][0].split(" ")[0]: float(r[1][1]) for r in page.table("icc-table")[1:]}
    assert icc == pytest.approx(ml.icc(sleep_fit).to_dict(), rel=1e-12)
    assert "The optimizer converged" in page.text and "not singular" in page.text
    assert "sleepstudy (180 observations used)" in page.text
    assert "REML criterion at convergence" in page.text  # the printed summary


def test_path_writes_the_same_page_and_returns_the_path(sleep_fit, tmp_path):
    out = ml.report(sleep_fit, tmp_path / "r.html", data_name="sleepstudy", plots=False)
    assert out == tmp_path / "r.html"
    text = out.read_text(encoding="utf-8")
    assert text == ml.report(sleep_fit, data_name="sleepstudy", plots=False)
    check_page(text, sleep_fit, caterpillar=None)
    assert "Plots were left out" in text
    assert isinstance(ml.report(sleep_fit, str(tmp_path / "s.html"), title="My <model>",
                                plots=False), Path)
    text = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<title>My &lt;model&gt;</title>" in text


def test_kenward_roger_and_z_tests(sleep_fit):
    kr = Page(ml.report(sleep_fit, ddf="kenward-roger", plots=False))
    check_coefficients(kr, sleep_fit.coef_table(ddf="kenward-roger"))
    assert "Kenward-Roger" in kr.text
    z = Page(ml.report(sleep_fit, ddf=None, plots=False))
    header = [t for t, _ in z.table("coefficient-table")[0]]
    assert "df" not in header and "z value" in header


def test_singular_fit_is_explained_in_plain_words():
    # every subject's mean removed: the subject variance is estimated as zero
    df = ml.datasets.load("sleepstudy").copy()
    df["Reaction"] = df["Reaction"] - df.groupby("Subject")["Reaction"].transform("mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.lmer("Reaction ~ 1 + (1 | Subject)", df)
    assert fit.is_singular
    page = Page(ml.report(fit, plots=False))
    assert "variance component is estimated as zero" in page.text
    assert "simplify it" in page.text


def test_unconverged_fit_says_so(monkeypatch, sleep_fit):
    # a fit that does not converge is hard to produce on purpose: the flag the note reads
    # (fit.converged) is set to False on the result class for this test only
    monkeypatch.setattr(type(sleep_fit), "converged", property(lambda self: False))
    page = Page(ml.report(sleep_fit, plots=False))
    note = next(t for t in page.text_parts if "did not report convergence" in t)
    assert "try another optimizer" in note and "simplify" in note


# -- the other kinds ---------------------------------------------------------------------------

def test_glmer_page_has_z_tests_and_latent_scale_icc():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   ml.datasets.load("cbpp"), family="binomial")
    text = ml.report(fit)
    page = check_page(text, fit, caterpillar=True)
    header = [t for t, _ in page.table("coefficient-table")[0]]
    assert "z value" in header and "df" not in header
    assert "binomial (logit link)" in page.text and "Laplace" in page.text
    icc = {r[0][0].split(" ")[0]: float(r[1][1]) for r in page.table("icc-table")[1:]}
    assert icc == pytest.approx(ml.icc(fit).to_dict(), rel=1e-12)
    assert statistics(page)["deviance"] == pytest.approx(fit.deviance, rel=1e-12)


def test_lme_page(orthodont):
    fit = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject")
    page = check_page(ml.report(fit), fit, caterpillar=True)
    icc = {r[0][0].split(" ")[0]: float(r[1][1]) for r in page.table("icc-table")[1:]}
    # one random intercept: the adjusted ICC is the group share of the two variances
    vc = fit.varcorr.set_index("group")["variance"]
    assert icc["adjusted"] == pytest.approx(vc["Subject"] / vc.sum(), rel=1e-8)
    assert "~ 1 | Subject" in page.text


def test_lme_with_a_correlation_structure_reports_no_icc(orthodont):
    fit = ml.lme("distance ~ age", orthodont, random="~ 1 | Subject",
                 correlation=ml.CorAR1(form="~ 1 | Subject"))
    page = Page(ml.report(fit, plots=False))
    assert "icc-table" not in page.ids and "Intraclass correlation: not reported" in page.text
    assert "CorAR1" in page.text


def test_gls_page_has_no_random_effects_and_no_caterpillar(orthodont):
    fit = ml.gls("distance ~ age", orthodont, correlation=ml.CorCompSymm(form="~ 1 | Subject"))
    page = check_page(ml.report(fit), fit, caterpillar=False)
    assert "variance-table" not in page.ids
    assert "No caterpillar plot: the model has no random effects" in page.text
    assert "CorCompSymm" in page.text


def test_nlme_page():
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", ml.datasets.load("Orange"),
                  fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree",
                  start={"Asym": 192, "xmid": 728, "scal": 353})
    page = check_page(ml.report(fit), fit, caterpillar=True)
    assert "not reported for nonlinear models" in page.text
    assert f"converged after {fit.iterations} iterations" in page.text
    assert statistics(page)["log-likelihood"] == fit.loglik


@pytest.mark.slow
def test_bayes_page():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.bayes("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"),
                       chains=2, draws=200, warmup=200, progress=False, seed=1)
    page = check_page(ml.report(fit, data_name="sleepstudy"), fit, caterpillar=True)
    header = [t for t, _ in page.table("coefficient-table")[0]]
    assert header[:3] == ["Term", "Posterior mean", "Posterior SD"] and "R-hat" in header
    assert "posterior means" in page.text  # the caterpillar's caption
    d = fit.diagnostics
    for message in d.messages:
        assert message in page.text
    if not d.messages:
        assert f"{d.divergences} divergent transitions" in page.text
    assert "NUTS: 2 chains" in page.text and "ml.loo" in page.text


@pytest.mark.slow
def test_bayes_nlme_page_names_the_nonlinear_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.bayes_nlme("circumference ~ SSlogis(age, Asym, xmid, scal)",
                            ml.datasets.load("Orange"),
                            params={"Asym": "1 + (1 | Tree)", "xmid": "1", "scal": "1"},
                            chains=2, draws=150, warmup=150, progress=False, seed=1)
    page = check_page(ml.report(fit), fit, caterpillar=True)
    assert "Bayesian nonlinear multilevel model" in page.text
    for message in fit.diagnostics.messages:  # short chains: R-hat and ESS warnings
        assert message in page.text


def test_dropped_rows_are_noted():
    df = ml.datasets.load("sleepstudy").copy()
    df.loc[[0, 5, 17], "Reaction"] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.lmer("Reaction ~ Days + (1 | Subject)", df)
    page = Page(ml.report(fit, plots=False))
    assert "177 observations used; 3 rows with missing values dropped" in page.text
    assert "3 rows with missing values in the model's columns were left out" in page.text


def test_boundary_rule_of_kinds_without_is_singular():
    from multilevel.report.notes import _boundary

    def varcorr(sds, corr):
        rows = [{"group": "g", "term1": f"t{i}", "term2": None, "variance": sd ** 2,
                 "sd": sd, "corr": float("nan")} for i, sd in enumerate(sds)]
        rows.append({"group": "g", "term1": "t0", "term2": "t1", "variance": float("nan"),
                     "sd": float("nan"), "corr": corr})
        rows.append({"group": "Residual", "term1": None, "term2": None, "variance": 1.0,
                     "sd": 1.0, "corr": float("nan")})
        return pd.DataFrame(rows)

    assert not _boundary(varcorr([2.0, 0.5], 0.3))
    assert _boundary(varcorr([2.0, 1e-9], 0.3))  # a zero SD
    assert _boundary(varcorr([2.0, 0.5], -1.0))  # a correlation at -1


# -- without matplotlib, bad arguments ---------------------------------------------------------

def test_without_matplotlib_the_page_says_what_to_install(sleep_fit, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # find_spec then reports it missing
    page = Page(ml.report(sleep_fit))
    assert not page.images
    assert 'pip install "multilevel[plot]"' in page.text
    for ident in SECTION_IDS:
        assert ident in page.ids


def test_bad_arguments_are_named(sleep_fit, tmp_path):
    with pytest.raises(ArgumentError, match="fit must be a fitted model"):
        ml.report("not a fit")
    with pytest.raises(ArgumentError, match="path"):
        ml.report(sleep_fit, 3)
    with pytest.raises(ArgumentError, match="is a folder"):
        ml.report(sleep_fit, tmp_path)
    with pytest.raises(ArgumentError, match="does not exist"):
        ml.report(sleep_fit, tmp_path / "missing" / "r.html")
    with pytest.raises(ArgumentError, match="title"):
        ml.report(sleep_fit, title=1)
    with pytest.raises(ArgumentError, match="ddf"):
        ml.report(sleep_fit, ddf="welch")
    with pytest.raises(ArgumentError, match="plots"):
        ml.report(sleep_fit, plots="no")


# -- the command line --------------------------------------------------------------------------

def test_cli_writes_the_report(tmp_path, capsys):
    data = tmp_path / "sleep.csv"
    ml.datasets.load("sleepstudy").to_csv(data, index=False)
    out = tmp_path / "report.html"
    code = main(["report", "Reaction ~ Days + (Days | Subject)", "--data", str(data),
                 "-o", str(out), "--ml", "--ddf", "residual", "--title", "Sleep"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"),
                  reml=False)
    text = out.read_text(encoding="utf-8")
    page = check_page(text, fit, caterpillar=True, coefficients=fit.coef_table(ddf="residual"))
    assert "sleep.csv (180 observations used)" in page.text and "<h1>Sleep</h1>" in text
    assert "maximum likelihood" in page.text
    assert statistics(page)["log-likelihood"] == pytest.approx(fit.loglik, rel=1e-10)


def test_cli_report_of_a_glmm_and_its_errors(tmp_path, capsys):
    out = tmp_path / "cbpp.html"
    code = main(["report", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 "--data", "cbpp", "--family", "binomial", "-o", str(out), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    page = Page(out.read_text(encoding="utf-8"))
    assert "binomial (logit link)" in page.text and not page.images
    capsys.readouterr()
    # --ml does not go with --family (the fit command's own check, shared)
    assert main(["report", "y ~ 1 + (1 | g)", "--data", "cbpp", "--family", "binomial",
                 "--ml", "-o", str(out)]) == 2
    assert "--ml does not go with --family" in capsys.readouterr().err
    assert main(["report", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy"]) == 2
    assert "-o/--output" in capsys.readouterr().err
    assert main(["report", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy",
                 "-o", str(tmp_path / "no" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
