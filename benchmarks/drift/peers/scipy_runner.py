"""Plain SciPy baseline: one two-sample test per column, flagged at p < 0.05.

Numeric columns: ``scipy.stats.ks_2samp(ref[c].dropna(), cur[c].dropna())`` (default
``method="auto"``: asymptotic p-values at these sizes). Categorical (string) columns:
``scipy.stats.chi2_contingency`` on the 2 x k table of the reference and current value
counts, aligned on the union of the values (0 where a value is absent). A column is
flagged at plain p < 0.05, as the issue states; the columns still flagged after a
Bonferroni correction (p < 0.05 / 25) are reported beside it. Timed: the tests and the
value counts they need. Data: pandas DataFrames made before the clock starts.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _harness import main, measured, on_pandas

ALPHA = 0.05


def compute(ref: Any, cur: Any) -> dict[str, float]:
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    p_values: dict[str, float] = {}
    for col in ref.columns:
        if pd.api.types.is_numeric_dtype(ref[col]):
            p_values[col] = float(ks_2samp(ref[col].dropna(), cur[col].dropna()).pvalue)
        else:
            counts = pd.concat([ref[col].value_counts(), cur[col].value_counts()], axis=1)
            p_values[col] = float(chi2_contingency(counts.fillna(0).to_numpy().T).pvalue)
    return p_values


def body(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pandas as pd
    import scipy
    import scipy.stats

    import_s = time.perf_counter() - t0

    def flag(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
        p_values = compute(ref, cur)
        bonferroni = [c for c, p in p_values.items() if p < ALPHA / len(p_values)]
        return [c for c, p in p_values.items() if p < ALPHA], {
            "flagged_bonferroni": sorted(bonferroni), "p_values": p_values,
        }

    meter, base, data_bytes, flagged, extra = on_pandas(args, flag)
    return measured(
        meter, base, data_bytes, flagged,
        version=f"scipy {scipy.__version__}, pandas {pd.__version__}", import_seconds=import_s,
        config="ks_2samp (numeric, dropna) / chi2_contingency (categorical), p < 0.05",
        **extra,
    )

if __name__ == "__main__":
    raise SystemExit(main(body))
