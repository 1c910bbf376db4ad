"""Runs the Athena named queries of infra/athena/ in DuckDB over Tollgate's Parquet output
(the local stand-in for Athena's view of the Glue table) and prints each result as JSON.

Usage: python athena_views.py USAGE_DIR SQL_DIR
"""

import json
import pathlib
import sys

import duckdb


def main() -> None:
    usage_dir, sql_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    connection = duckdb.connect()
    # The Glue table: every Parquet file under usage/, partitioned by dt=YYYY-MM-DD. Athena
    # reads Parquet columns by name, so a file written before a column existed reads it as
    # NULL: union_by_name does the same here.
    pattern = str(usage_dir / "*" / "*.parquet").replace("'", "''")
    connection.execute(
        "CREATE VIEW usage_events AS SELECT * REPLACE (CAST(dt AS VARCHAR) AS dt) "
        f"FROM read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"
    )
    results = {}
    for query in sorted(sql_dir.glob("*.sql")):
        cursor = connection.execute(query.read_text())
        columns = [description[0] for description in cursor.description]
        results[query.stem] = [
            {column: (value if isinstance(value, (int, str)) or value is None else float(value))
             for column, value in zip(columns, row)}
            for row in cursor.fetchall()
        ]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
