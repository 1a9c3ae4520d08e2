"""Category accuracy of hindsight.diagnose on the labelled corpus in tests/diagnose/corpus.

Run: .venv/bin/python benchmarks/diagnose_accuracy.py [--json]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hindsight.diagnose.corpus import evaluate_corpus, load_corpus

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "diagnose" / "corpus"


def main() -> int:
    cases = load_corpus(CORPUS)
    t0 = time.perf_counter()
    report = evaluate_corpus(cases)
    elapsed = time.perf_counter() - t0
    if "--json" in sys.argv:
        print(json.dumps({**report.to_dict(), "seconds": elapsed}, indent=2))
        return 0
    print(f"diagnose() on {report.total} labelled cases: {report.correct} correct, "
          f"accuracy {report.accuracy:.1%} (target >= 90%), {elapsed / report.total * 1e3:.2f} ms/case")
    print(f"{'category':<22}{'correct':>8}{'total':>7}")
    for cat, (ok, total) in report.per_category.items():
        print(f"{cat:<22}{ok:>8}{total:>7}")
    for name, expected, got in report.misses:
        print(f"  miss: {name}: labelled {expected}, got {got}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
