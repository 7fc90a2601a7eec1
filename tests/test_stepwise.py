"""Stepwise selection against lmerTest 3.1-3's step() (tests/reference/lmertest_step/step.json,
made by tests/reference/make_lmertest_step_refs.R on sleepstudy plus a noise covariate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "lmertest_step" / "step.json").read_text())


@pytest.fixture(scope="module")
def data():
    d = pd.read_csv(HERE / "data" / "sleepstudy_noise.csv", dtype={"Subject": str})
    d["Subject"] = pd.Categorical(d["Subject"])
    return d


@pytest.fixture(scope="module")
def result(data):
    return ml.step(ml.lmer("Reaction ~ Days + noise + (Days | Subject)", data))


def test_random_part_matches_lmertest(result):
    ref = REF["random"]["table"]
    assert len(result.random) == 1
    row = result.random.iloc[0]
    assert row["term"] == "(Days | Subject)" and row["reduced_to"] == "(1 | Subject)"
    assert row["chisq"] == pytest.approx(ref["LRT"][1], rel=1e-4)
    assert row["df"] == ref["Df"][1]
    assert row["p_value"] == pytest.approx(ref["Pr(>Chisq)"][1], rel=1e-2)
    assert not row["eliminated"]


def test_fixed_part_matches_lmertest(result):
    ref = REF["fixed"]
    first = result.fixed[result.fixed["step"] == 1].set_index("term")
    noise = ref["rows"].index("noise")
    assert first.loc["noise", "eliminated"]
    assert first.loc["noise", "f_value"] == pytest.approx(ref["table"]["F value"][noise],
                                                          rel=1e-3)
    assert first.loc["noise", "den_df"] == pytest.approx(ref["table"]["DenDF"][noise],
                                                         rel=1e-3)
    last = result.fixed[result.fixed["step"] == result.fixed["step"].max()].set_index("term")
    days = ref["rows"].index("Days")
    assert not last.loc["Days", "eliminated"]
    assert last.loc["Days", "p_value"] == pytest.approx(ref["table"]["Pr(>F)"][days], rel=1e-2)


def test_final_model(result):
    # lmerTest: "Reaction ~ Days + (Days | Subject)"
    assert result.formula.replace("1 + ", "") == REF["final"]
    assert result.model.fixed_names == ["(Intercept)", "Days"]


def test_add_random_slopes_keeps_a_supported_slope(data):
    table, final = ml.inference.add_random_slopes(
        ml.lmer("Reaction ~ Days + noise + (1 | Subject)", data), ["Days", "noise"])
    assert list(table["candidate"]) == ["Days", "noise"]
    assert table["added"].tolist()[0] is True  # LRT 42.6 on 2 df (lmerTest, above)
    assert np.isfinite(table["p_value"]).all()
    assert "Days" in final.model.design.terms[0].columns


def test_step_reports(result):
    assert "Model found: Reaction ~ 1 + Days + (Days | Subject)" in str(result)
    assert result._repr_html_().count("<table") == 2


def test_step_keeps_r_names_and_formula_offsets(data):
    """Renaming columns to R names (a dotted predictor, a grouping factor with a space) and
    moving the offset into the formula changes nothing in step's tables: the refitted
    formulas carry the backticks and the offset term."""
    w = np.linspace(1.0, 2.0, len(data))  # any known offset; the same on both sides
    plain = ml.step(ml.lmer("Reaction ~ Days + noise + (Days | Subject)", data,
                            offset=np.log(w)))
    renamed = data.rename(columns={"Subject": "my subject", "Days": "Days.n"}).assign(w=w)
    r_named = ml.step(ml.lmer("Reaction ~ Days.n + noise + offset(log(w)) + "
                              "(Days.n | `my subject`)", renamed))
    assert "offset(log(w))" in r_named.formula and "`my subject`" in r_named.formula
    np.testing.assert_allclose(r_named.random["loglik"].to_numpy(),
                               plain.random["loglik"].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(r_named.fixed["f_value"].to_numpy(),
                               plain.fixed["f_value"].to_numpy(), rtol=1e-8)
