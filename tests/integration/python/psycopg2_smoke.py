#!/usr/bin/python3
"""psycopg2 through pgshift: connect, transaction, server-side cursor, error, rollback.

Usage: psycopg2_smoke.py CONNINFO   (run by session_relay_test with /usr/bin/python3)
Exits non-zero with a traceback on the first failed check.
"""
import sys

import psycopg2
import psycopg2.errors


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main(dsn):
    conn = psycopg2.connect(dsn)
    check(conn.server_version >= 150000, "server_version %r" % conn.server_version)

    # A transaction that commits.
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS py_smoke")
        cur.execute("CREATE TABLE py_smoke (id int PRIMARY KEY, label text)")
        cur.executemany("INSERT INTO py_smoke VALUES (%s, %s)",
                        [(i, "row %d" % i) for i in range(1, 1001)])
    conn.commit()

    # A server-side (named) cursor fetching in batches.
    batches = []
    with conn.cursor(name="py_smoke_cursor") as cur:
        cur.itersize = 100
        cur.execute("SELECT id, label FROM py_smoke ORDER BY id")
        while True:
            rows = cur.fetchmany(250)
            if not rows:
                break
            batches.append(rows)
    check([len(b) for b in batches] == [250, 250, 250, 250], "batches %r" % [len(b) for b in batches])
    check(batches[0][0] == (1, "row 1") and batches[-1][-1] == (1000, "row 1000"), "cursor rows")
    conn.commit()

    # An error, then rollback: the transaction's work is gone, the connection still works.
    cur = conn.cursor()
    cur.execute("INSERT INTO py_smoke VALUES (1001, 'rolled back')")
    try:
        cur.execute("SELECT 1 / 0")
        raise AssertionError("division by zero did not fail")
    except psycopg2.errors.DivisionByZero as e:
        check(e.pgcode == "22012", "pgcode %r" % e.pgcode)
    try:
        cur.execute("SELECT 1")
        raise AssertionError("aborted transaction accepted a query")
    except psycopg2.errors.InFailedSqlTransaction as e:
        check(e.pgcode == "25P02", "pgcode %r" % e.pgcode)
    conn.rollback()
    cur.execute("SELECT count(*), max(id) FROM py_smoke")
    check(cur.fetchone() == (1000, 1000), "rollback did not undo the insert")
    conn.rollback()

    # Parameters with awkward values round-trip.
    cur.execute("SELECT %s::text, %s::bytea, %s::int[]", ("quote ' and \u00e9", b"\x00\xff", [1, 2]))
    text, blob, arr = cur.fetchone()
    check(text == "quote ' and \u00e9" and bytes(blob) == b"\x00\xff" and arr == [1, 2], "params")

    cur.execute("DROP TABLE py_smoke")
    conn.commit()
    conn.close()
    print("psycopg2 smoke: ok")


if __name__ == "__main__":
    main(sys.argv[1])
