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
    results["_statistics"] = footer_statistics(connection, usage_dir)
    print(json.dumps(results))


def footer_statistics(connection, usage_dir: pathlib.Path) -> list:
    """Each file's footer statistics as DuckDB reads them, beside the file's own values:
    Athena skips files and row groups by these, so they must be right."""
    checks = []
    for path in sorted(usage_dir.glob("*/*.parquet")):
        name = str(path).replace("'", "''")
        for column in ("customer_id", "occurred_at", "input_tokens", "api", "upstream_request_id"):
            footer = connection.execute(
                "SELECT count(*), min(stats_min_value), max(stats_max_value), "
                f"sum(stats_null_count) FROM parquet_metadata('{name}') "
                "WHERE path_in_schema = ?",
                [column],
            ).fetchone()
            values = connection.execute(
                f"SELECT 1, CAST(min({column}) AS VARCHAR), CAST(max({column}) AS VARCHAR), "
                f"count(*) - count({column}) FROM read_parquet('{name}')"
            ).fetchone()
            checks.append({
                "file": path.name,
                "column": column,
                "footer": [None if value is None else str(value) for value in footer],
                "values": [None if value is None else str(value) for value in values],
            })
    return checks


if __name__ == "__main__":
    main()
