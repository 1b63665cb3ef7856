#!/usr/bin/env python3
"""Benchmark: tapped-indicator driver importance against DuckDB over the same Parquet files.

Logistic importance of the 14 tapped indicators (7 topic sets, 128 fits per group) on trust by
service type x fiscal quarter through `cxlake query` (a whole process: plan, one pass building
the pattern table, IRLS fits, dominance, lift, JSON out), beside DuckDB computing only the same
pattern-count GROUP BY (service type, fiscal quarter, scale, trust, offered bits, tapped bits)
in SQL. Then the same query with 200 bootstrap replicates. Prints the best of --repeat runs and
the ratios (goals: <= 2x, bootstrap <= 4x).

    cargo build --release && .venv/bin/python benches/tapped_vs_duckdb.py --lake /tmp/g10
"""
import argparse
from pathlib import Path

import duckdb

from benchlib import ROOT, best, cxlake_query, ensure_lake

TOPICS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]
INDICATORS = [f"positive_{t}" for t in TOPICS] + [f"negative_{t}" for t in TOPICS]
GQL = """query($b: Int) { tappedDriverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE], period: FISCAL_QUARTER, bootstrap: $b) {
  serviceType period n events mcfadden drivers { topic importance share shareLow shareHigh rank }
  coefficients { indicator estimate stdError } lift { indicator difference low high } } }"""


def sql(lake):
    shown = " + ".join(f"(CASE WHEN {c} IS NOT NULL THEN {1 << j} ELSE 0 END)" for j, c in enumerate(INDICATORS))
    tapped = " + ".join(f"(CASE WHEN {c} THEN {1 << j} ELSE 0 END)" for j, c in enumerate(INDICATORS))
    return (
        f"SELECT service_type, fiscal_year, fiscal_quarter, scale = 'likert5' AS likert, trust, "
        f"{shown} AS shown, {tapped} AS tapped, count(*) "
        f"FROM read_parquet('{lake}/responses/**/*.parquet', hive_partitioning = true) "
        f"WHERE trust IS NOT NULL GROUP BY ALL"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "lake")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "cxlake")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lake = args.lake.resolve()
    ensure_lake(args.bin, lake, args.rows)

    def cx(b):
        return cxlake_query(args.bin, lake, GQL, {"b": b})["tappedDriverImportance"]

    def db():
        con = duckdb.connect()
        con.execute("SET threads = 2")
        return con.execute(sql(lake)).fetchall()

    td, drows = best(db, args.repeat)
    groups = {(r[0], r[1], r[2]) for r in drows}
    print(f"lake: {lake}  repeat: best of {args.repeat}  pattern cells: {len(drows)}  groups: {len(groups)}")
    print(f"{'case':58} {'cxlake s':>9} {'duckdb s':>9} {'ratio':>6}")
    for name, b in [("tapped logistic importance, trust by service type x FQ", None), ("same with bootstrap: 200", 200)]:
        tc, rows = best(lambda: cx(b), args.repeat)
        assert len(rows) == len(groups), (len(rows), len(groups))
        print(f"{name:58} {tc:9.3f} {td:9.3f} {tc / td:6.2f}")


if __name__ == "__main__":
    main()
