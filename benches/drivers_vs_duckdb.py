#!/usr/bin/env python3
"""Benchmark: driver importance against DuckDB over the same Parquet files, in one run.

Shapley importance of the six drivers on trust by service type x fiscal quarter through
`cxlake query` (a whole process: plan, one pass over the lake, correlation matrices, exact
Shapley over 64 subsets per group, JSON out), beside DuckDB computing only the same sums of
cross-products in SQL (listwise complete Likert rows). Then the same query with 200 bootstrap
replicates. Prints the best of --repeat runs and the ratios (goals: <= 1.5x, bootstrap <= 3x).

    cargo build --release && .venv/bin/python benches/drivers_vs_duckdb.py --lake /tmp/g10
"""
import argparse
from pathlib import Path

import duckdb

from benchlib import ROOT, best, cxlake_query, ensure_lake

VARS = ["trust", "effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"]
GQL = """query($b: Int) { driverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE], period: FISCAL_QUARTER, bootstrap: $b) {
  serviceType period n r2 drivers { driver shapley shapleyShare shapleyLow shapleyHigh } } }"""


def sql(lake):
    sums = [f"sum({v}::DOUBLE)" for v in VARS]
    sums += [f"sum({a}::DOUBLE * {b}::DOUBLE)" for i, a in enumerate(VARS) for b in VARS[i:]]
    complete = " AND ".join(f"{v} IS NOT NULL" for v in VARS)
    return (
        f"SELECT service_type, fiscal_year, fiscal_quarter, count(*), {', '.join(sums)} "
        f"FROM read_parquet('{lake}/responses/**/*.parquet', hive_partitioning = true) "
        f"WHERE scale = 'likert5' AND {complete} GROUP BY ALL"
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
        return cxlake_query(args.bin, lake, GQL, {"b": b})["driverImportance"]

    def db():
        con = duckdb.connect()
        con.execute("SET threads = 2")
        return con.execute(sql(lake)).fetchall()

    td, drows = best(db, args.repeat)
    print(f"lake: {lake}  repeat: best of {args.repeat}")
    print(f"{'case':52} {'cxlake s':>9} {'duckdb s':>9} {'ratio':>6}")
    for name, b in [("Shapley, trust by service type x fiscal quarter", None), ("same with bootstrap: 200", 200)]:
        tc, rows = best(lambda: cx(b), args.repeat)
        assert len(rows) == len(drows), (len(rows), len(drows))
        print(f"{name:52} {tc:9.3f} {td:9.3f} {tc / td:6.2f}")


if __name__ == "__main__":
    main()
