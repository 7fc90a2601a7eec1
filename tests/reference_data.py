"""Loading the R reference fits in tests/reference/ and the exact data they were fitted on."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REF = Path(__file__).parent / "reference"


def _float(text: str) -> float:
    return float("nan") if text == "NA" else float(text)  # correctly rounded, exact round trip


@cache
def _load(dataset: str) -> pd.DataFrame:
    meta = json.loads((REF / "data" / f"{dataset}.levels.json").read_text())
    raw = pd.read_csv(REF / "data" / f"{dataset}.csv", dtype=str, keep_default_na=False)
    out: dict[str, Any] = {}
    for col in meta["columns"]:
        kind = meta["column_types"][col]
        text = raw[col].to_numpy(dtype=object)
        if col in meta["levels"]:
            dtype = pd.CategoricalDtype(meta["levels"][col], ordered=meta["ordered"][col])
            out[col] = pd.Categorical(list(text), dtype=dtype)
        elif kind in ("double", "integer"):
            out[col] = np.array([_float(v) for v in text])
        else:
            out[col] = text
    return pd.DataFrame(out)


def load_data(dataset: str) -> pd.DataFrame:
    """The data set exactly as R held it (factors as Categoricals in R's level order)."""
    return _load(dataset).copy()


def load_ref(path: Path) -> dict[str, Any]:
    """One reference JSON file."""
    return json.loads(path.read_text())


def lmm_reference_files() -> list[Path]:
    """Every lme4 LMM reference: the shared cases and the ones made by make_lme4_refs.R."""
    files = sorted((REF / "lme4_shared").glob("*.json")) + sorted(
        (REF / "lme4_extra").glob("*.json"))
    return [f for f in files if f.name != "cases.json"]
