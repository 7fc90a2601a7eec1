"""ml.table: the numbers in the table are the fits' own (read back from the numeric frame
exactly, and from the printed cells to the printed digits), empty cells where a model has no
such number, stars from the p-values, and well-formed LaTeX / HTML / Markdown. The LaTeX is
compiled with pdflatex in a slow test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError

from reference_data import load_data


@pytest.fixture(scope="module")
def fits():
    ss = load_data("sleepstudy")
    ss["Days_x"] = ss["Days"]  # a name LaTeX must escape
    return {
        "intercepts": ml.lmer("Reaction ~ Days_x + (1 | Subject)", ss),
        "slopes": ml.lmer("Reaction ~ Days_x + (Days_x | Subject)", ss),
        "cbpp & 100%": ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                load_data("cbpp"), family="binomial"),
        "lme": ml.lme("distance ~ age", load_data("Orthodont"), random="~ age | Subject"),
    }


@pytest.fixture(scope="module")
def table(fits):
    return ml.table(fits, stats=["aic", "bic", "loglik", "nobs", "ngroups", "icc", "r2"],
                    stars=True)


def test_numbers_are_the_fits(fits, table):
    num = table.to_frame(numeric=True)
    for name, fit in fits.items():
        ct = fit.coef_table()
        for term in ct.index:
            for stat in ("estimate", "std_error", "p_value"):
                assert num.loc[("fixed", term, stat), name] == pytest.approx(
                    ct.loc[term, stat], rel=1e-12)
        assert num.loc[("stats", "AIC", "estimate"), name] == pytest.approx(fit.aic)
        assert num.loc[("stats", "BIC", "estimate"), name] == pytest.approx(fit.bic)
        assert num.loc[("stats", "Log likelihood", "estimate"), name] == pytest.approx(
            fit.loglik)
        assert num.loc[("stats", "Num. obs.", "estimate"), name] == fit.nobs
        for group, n in fit.ngroups.items():
            assert num.loc[("stats", f"Num. groups: {group}", "estimate"), name] == n
        vc = fit.varcorr
        for _, row in vc[vc["term2"].isna() | (vc["term2"] == "")].iterrows():
            label = "SD: Residual" if row["group"] == "Residual" else \
                f"SD: {row['group']} {row['term1']}"
            assert num.loc[("random", label, "estimate"), name] == pytest.approx(row["sd"])
    slopes = fits["slopes"]
    assert num.loc[("random", "Cor: Subject (Intercept), Days_x", "estimate"), "slopes"] == \
        pytest.approx(slopes.varcorr["corr"].dropna().iloc[0])
    # lme: nlme orders a correlation's terms the other way; it lands on the same kind of line
    assert num.loc[("random", "Cor: Subject (Intercept), age", "estimate"), "lme"] == \
        pytest.approx(fits["lme"].varcorr["corr"].dropna().iloc[0])
    for name in ("intercepts", "slopes", "cbpp & 100%"):
        icc = ml.icc(fits[name])["adjusted"]
        assert num.loc[("stats", "ICC", "estimate"), name] == pytest.approx(icc)
        r2 = ml.r2(fits[name])
        assert num.loc[("stats", "R2 marginal", "estimate"), name] == pytest.approx(
            r2["marginal"])
        assert num.loc[("stats", "R2 conditional", "estimate"), name] == pytest.approx(
            r2["conditional"])


def test_empty_cells_where_a_model_has_no_number(table):
    num = table.to_frame(numeric=True)
    text = table.to_frame()
    # glmer has no Days_x, no residual SD; lme has no ICC (ml.icc takes lmer / glmer fits)
    assert np.isnan(num.loc[("fixed", "Days_x", "estimate"), "cbpp & 100%"])
    assert text.loc[("fixed", "Days_x", "estimate"), "cbpp & 100%"] == ""
    assert text.loc[("random", "SD: Residual", "estimate"), "cbpp & 100%"] == ""
    assert text.loc[("stats", "ICC", "estimate"), "lme"] == ""


def _parse(cell: str) -> float:
    return float(re.sub(r"[()*\[\]]", "", cell))


def test_printed_cells_round_the_fits(fits, table):
    text = table.to_frame()
    for name, fit in fits.items():
        ct = fit.coef_table()
        for term in ct.index:
            est = text.loc[("fixed", term, "estimate"), name]
            se = text.loc[("fixed", term, "std_error"), name]
            assert _parse(est) == pytest.approx(round(ct.loc[term, "estimate"], 3), abs=1e-9)
            assert se.startswith("(") and se.endswith(")")
            assert _parse(se) == pytest.approx(round(ct.loc[term, "std_error"], 3), abs=1e-9)
            p = ct.loc[term, "p_value"]
            stars = len(est) - len(est.rstrip("*"))
            assert stars == (3 if p < 0.001 else 2 if p < 0.01 else 1 if p < 0.05 else 0)
        assert _parse(text.loc[("stats", "AIC", "estimate"), name]) == pytest.approx(
            round(fit.aic, 1))
        assert text.loc[("stats", "Num. obs.", "estimate"), name] == str(fit.nobs)
    assert "* p < 0.05, ** p < 0.01, *** p < 0.001" in table.notes


def test_intervals_instead_of_standard_errors(fits):
    t = ml.table([fits["slopes"], fits["cbpp & 100%"]], ci=True, conf_level=0.9, digits=4)
    text = t.to_frame()
    num = t.to_frame(numeric=True)
    ct = fits["slopes"].coef_table(level=0.9)
    cell = text.loc[("fixed", "Days_x", "conf_int"), "(1)"]
    low, high = (float(x) for x in cell.strip("[]").split(","))
    assert [low, high] == pytest.approx([round(ct.loc["Days_x", "ci_lower"], 4),
                                         round(ct.loc["Days_x", "ci_upper"], 4)], abs=1e-9)
    assert num.loc[("fixed", "Days_x", "conf_low"), "(1)"] == pytest.approx(
        ct.loc["Days_x", "ci_lower"], rel=1e-10)
    z = fits["cbpp & 100%"].coef_table(level=0.9)
    assert num.loc[("fixed", "period2", "conf_high"), "(2)"] == pytest.approx(
        z.loc["period2", "ci_upper"], rel=1e-10)
    assert t.notes == ["90% confidence intervals in brackets"]


def test_ddf_reaches_the_linear_models_only(fits):
    t = ml.table([fits["slopes"], fits["cbpp & 100%"]], ddf="kenward-roger")
    num = t.to_frame(numeric=True)
    kr = fits["slopes"].coef_table(ddf="kenward-roger")
    assert num.loc[("fixed", "Days_x", "p_value"), "(1)"] == pytest.approx(
        kr.loc["Days_x", "p_value"], rel=1e-12)
    assert num.loc[("fixed", "period2", "p_value"), "(2)"] == pytest.approx(
        fits["cbpp & 100%"].coef_table().loc["period2", "p_value"], rel=1e-12)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_html_markdown_and_text(fits, table):
    parser = _Cells()
    parser.feed(table.to_html())
    body = [r for r in parser.rows if len(r) == len(fits) + 1]
    assert body[0] == ["", *fits]
    lines = table.lines()
    assert len(body) == len(lines) + 1
    assert body[1][2] == "".join(lines[0][2][1])  # (Intercept) of "slopes"
    assert table._repr_html_() == table.to_html()
    md = table.to_markdown().splitlines()
    rows = [line for line in md if line.startswith("|")]
    assert len(rows) == len(lines) + 2
    # every row has as many cells as the header (escaped pipes and stars do not split)
    assert {len(re.split(r"(?<!\\)\|", r)) for r in rows} == {len(fits) + 3}
    assert r"cbpp & 100%" in md[0] and r"\*\*\*" in md[2]
    assert str(table) == table.to_text()
    assert "251.405***" in table.to_text()


def test_latex_is_well_formed(fits, table):
    tex = table.to_latex(caption="Sleep & herds", label="tab:models")
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[htbp]" and lines[-1] == r"\end{table}"
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in lines
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"\begin{tabular}{lcccc}" in lines
    body = lines[lines.index(r"\toprule") + 1:lines.index(r"\bottomrule")]
    for line in body:
        if line.endswith(r"\\"):
            assert len(re.findall(r"(?<!\\)&", line)) == len(fits), line
    assert r"cbpp \& 100\%" in tex and r"Days\_x" in tex and r"\caption{Sleep \& herds}" in tex
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    assert "$251.405^{***}$" in tex


def test_nlme_and_gls_columns():
    orange = ml.nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))",
                     load_data("Orange"), fixed="Asym + xmid + scal ~ 1",
                     random="Asym ~ 1 | Tree", start={"Asym": 170, "xmid": 700, "scal": 350})
    gls = ml.gls("distance ~ age", load_data("Orthodont"))
    t = ml.table({"nlme": orange, "gls": gls}, stats=["aic", "nobs", "ngroups", "icc"])
    num = t.to_frame(numeric=True)
    assert num.loc[("fixed", "Asym", "estimate"), "nlme"] == pytest.approx(orange.fixef["Asym"])
    assert num.loc[("random", "SD: Tree Asym", "estimate"), "nlme"] == pytest.approx(
        orange.varcorr["sd"].iloc[0])
    assert num.loc[("random", "SD: Residual", "estimate"), "gls"] == pytest.approx(gls.sigma)
    assert num.loc[("stats", "Num. groups: Tree", "estimate"), "nlme"] == 5
    assert np.isnan(num.loc[("stats", "Num. groups: Tree", "estimate"), "gls"])
    # neither model has an ICC (ml.icc takes lmer and glmer fits): no line for it
    assert "ICC" not in num.index.get_level_values("term")


def test_arguments_are_checked(fits):
    fit = fits["slopes"]
    assert ml.table(fit).names == ["(1)"]
    with pytest.raises(ArgumentError, match="names"):
        ml.table([fit, fit], names=["a"])
    with pytest.raises(ArgumentError, match="names"):
        ml.table([fit, fit], names=["a", "a"])
    with pytest.raises(ArgumentError, match="'deviance'"):
        ml.table([fit], stats=["deviance"])
    with pytest.raises(ArgumentError, match="models\\[1\\]"):
        ml.table([fit, "fit"])
    with pytest.raises(ArgumentError, match="digits"):
        ml.table([fit], digits=-1)
    with pytest.raises(ArgumentError, match="empty"):
        ml.table([])


@pytest.mark.slow
def test_latex_compiles_with_pdflatex(table, tmp_path):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.fail("pdflatex is not installed (Debian: texlive-latex-base, "
                    "texlive-latex-recommended for booktabs)")
    doc = ("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
           + table.to_latex(caption="Models", label="tab:models")
           + "\\end{document}\n")
    (tmp_path / "table.tex").write_text(doc)
    run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "table.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert (tmp_path / "table.pdf").stat().st_size > 0
    assert not re.search(r"^! ", log, flags=re.M), log[-2000:]


@pytest.mark.slow
def test_bayesian_fit_in_a_mixed_table(fits):
    pytest.importorskip("jax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = ml.bayes("Reaction ~ Days_x + (Days_x | Subject)",
                     fits["slopes"].model.data, chains=2, draws=200, warmup=200, seed=1,
                     progress=False)
    t = ml.table({"lmer": fits["slopes"], "brms": b}, stats=["aic", "nobs", "ngroups"])
    num = t.to_frame(numeric=True)
    assert num.loc[("fixed", "Days_x", "estimate"), "brms"] == pytest.approx(
        b.fixef["Days_x"], rel=1e-12)
    assert num.loc[("fixed", "Days_x", "std_error"), "brms"] == pytest.approx(
        b.draws("b_Days_x").std(ddof=1), rel=1e-10)
    assert num.loc[("random", "SD: Residual", "estimate"), "brms"] == pytest.approx(b.sigma)
    assert np.isnan(num.loc[("stats", "AIC", "estimate"), "brms"])
    assert num.loc[("stats", "Num. groups: Subject", "estimate"), "brms"] == 18
    assert "posterior SDs for Bayesian fits" in t.notes[0]
