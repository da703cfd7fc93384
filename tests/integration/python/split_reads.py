#!/usr/bin/python3
"""Keyed reads through pgshift, for split_routing_test.

Usage: split_reads.py CONNINFO FIRST LAST STEP REPEAT CONNECTIONS

For every key in range(FIRST, LAST + 1, STEP), REPEAT times, runs (autocommit, simple
protocol, the key in a sqlcommenter comment as an application would send it)

    SELECT side FROM marker /* user_id='<key>' */

over CONNECTIONS connections, and prints one line per read: "<key> <side>". The repeats of
a key go over a different connection each time (round robin shifted per repeat), so a key
that keeps its side does so across connections. Exits non-zero with a traceback on the
first error: a read that fails through pgshift is a test failure.
"""
import sys

import psycopg2


def main(dsn, first, last, step, repeat, connections):
    conns = [psycopg2.connect(dsn) for _ in range(connections)]
    for conn in conns:
        conn.autocommit = True
    cursors = [conn.cursor() for conn in conns]
    out = []
    for r in range(repeat):
        for i, key in enumerate(range(first, last + 1, step)):
            cur = cursors[(i + r) % len(cursors)]
            cur.execute("SELECT side FROM marker /* user_id='%d' */" % key)
            rows = cur.fetchall()
            if len(rows) != 1:
                raise AssertionError("key %d: expected one row, got %r" % (key, rows))
            out.append("%d %s" % (key, rows[0][0]))
    for conn in conns:
        conn.close()
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
