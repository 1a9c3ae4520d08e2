"""Write the festive-sale fraud scenario's generated logs as one Parquet file per day."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hindsight.demo.monitoring import DAY, fraud_during_sale


def main(out: str = "logs") -> None:
    scenario = fraud_during_sale()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    table = scenario.table
    days = np.floor(table.column("ts").to_numpy() / DAY).astype(np.int64)
    for day in np.unique(days):
        part = table.filter(pc.equal(days, day))
        pq.write_table(part, folder / f"day-{int(day)}.parquet")
    print(f"wrote {table.num_rows:,} rows in {len(np.unique(days))} files to {folder}/")


if __name__ == "__main__":
    main(*sys.argv[1:])
