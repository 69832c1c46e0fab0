#!/usr/bin/python3
"""matviews from Python (psycopg2): plain SELECTs, jsonb responses read as dicts.

Also a test: it exits non-zero and prints "not ok" lines when a check fails. It connects with the
usual libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE), as `make test` sets up
through pg_virtualenv, and needs matviews installed in that database.
"""
import sys

import psycopg2

checks = []


def check(name, ok):
    """Records one check and prints it in TAP style."""
    checks.append(ok)
    print(("ok" if ok else "not ok") + f" {len(checks)} - {name}")


def call(cur, sql, *args):
    """Runs a matviews function and returns its response as a dict."""
    cur.execute(sql, args)
    return cur.fetchone()[0]


conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
cur.execute("CREATE EXTENSION IF NOT EXISTS matviews")
cur.execute("DROP TABLE IF EXISTS py_events CASCADE")
cur.execute("CREATE TABLE py_events (user_id int, kind text)")
cur.execute("INSERT INTO py_events SELECT g % 10, 'click' FROM generate_series(1, 1000) g")

created = call(cur, "SELECT matviews.create(%s, %s, refresh_strategy => 'concurrent', unique_index_columns => %s)",
               "py_user_activity", "SELECT user_id, count(*) AS events FROM py_events GROUP BY user_id",
               ["user_id"])
check("create answers created", created["status"] == "created")
check("the response names the view quoted and qualified", created["view"] == "public.py_user_activity")
check("the response lists the SQL run", any("CREATE MATERIALIZED VIEW" in s for s in created["response"]["sql"]))

refreshed = call(cur, "SELECT matviews.refresh(%s, row_count_strategy => 'exact')", "py_user_activity")
check("refresh answers updated", refreshed["status"] == "updated")
check("exact row count after refresh", refreshed["response"]["row_count_after"] == 10)

missing = call(cur, "SELECT matviews.refresh(%s)", "py_no_such_view")
check("a failure is a response, not an exception", missing["status"] == "error")
check("the error carries its SQLSTATE", missing["error"]["sqlstate"] == "42P01")

# A failed call inside a transaction leaves the transaction usable.
conn.autocommit = False
bad = call(cur, "SELECT matviews.create(%s, %s)", "py_bad", "SELECT 1/0")
cur.execute("SELECT 1")
conn.commit()
check("division by zero comes back as 22012 and the transaction goes on", bad["error"]["sqlstate"] == "22012")
conn.autocommit = True

deleted = call(cur, "SELECT matviews.delete(%s)", "py_user_activity")
check("delete answers deleted", deleted["status"] == "deleted")
cur.execute("DROP TABLE py_events")

print(f"{sum(checks)} passed, {len(checks) - sum(checks)} failed")
sys.exit(0 if all(checks) else 1)
