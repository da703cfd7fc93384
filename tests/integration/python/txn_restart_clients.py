#!/usr/bin/python3
"""Short transactions from several psycopg2 connections while the upstream restarts.

Usage: txn_restart_clients.py CONNINFO WORKERS AFTER
Run by transaction_pool_state_test with /usr/bin/python3 and a pipe on stdin.

Each worker opens ONE connection through pgshift and loops on short transactions (INSERT,
SELECT, COMMIT), never reconnecting. Handshake with the test:
  1. once every worker has committed 5 transactions, prints "ready";
  2. the test writes "restarting"; this prints "restarting: noted";
  3. the test restarts PostgreSQL (pg_ctl restart -m fast -w) and writes "restarted";
  4. every worker must then commit AFTER more transactions on its same connection.
A transaction that fails is rolled back and the loop goes on. Only transactions caught by the
restart may fail: none before step 2, none that started after step 3, at most two per worker
(the one in flight, and one that got its server as the server was being shut down), each with
SQLSTATE class 08 or 57P0x. Prints one "worker ..." line each, then "restart clients: ok" when
every worker recovered within those rules on a connection that never closed; otherwise
explains and exits 1.
"""
import sys
import threading
import time

import psycopg2


class Worker(threading.Thread):
    def __init__(self, dsn, index):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.index = index
        self.before = 0  # committed before the test said "restarted"
        self.after = 0   # committed after
        self.errors = []  # (sqlstate, message, phase at the start, phase at the error)
        self.closed = False
        self.fatal = None
        self.stop = False
        self.phase = None  # set by main: [0] before, [1] restarting, [2] restarted

    def run(self):
        try:
            conn = psycopg2.connect(self.dsn)
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.fatal = "connect: %r" % e
            return
        n = 0
        while not self.stop:
            start_phase = self.phase[0]
            n += 1
            try:
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO restart_log (worker, n) VALUES (%s, %s)",
                                (self.index, n))
                    cur.execute("SELECT count(*) FROM restart_log WHERE worker = %s",
                                (self.index,))
                    cur.fetchone()
                conn.commit()
                if start_phase == 2:
                    self.after += 1
                else:
                    self.before += 1
            except psycopg2.Error as e:
                self.errors.append((e.pgcode, str(e).strip().splitlines()[0] if str(e) else "",
                                    start_phase, self.phase[0]))
                if conn.closed:
                    self.closed = True
                    return
                try:
                    conn.rollback()
                except psycopg2.Error as e2:
                    self.errors.append((e2.pgcode, "rollback: " + str(e2).strip(),
                                        start_phase, self.phase[0]))
                    if conn.closed:
                        self.closed = True
                        return
        conn.close()


def allowed(sqlstate):
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate.startswith("57P0"))


def main(dsn, workers, after):
    phase = [0]
    pool = [Worker(dsn, i) for i in range(workers)]
    for w in pool:
        w.phase = phase
        w.start()

    def wait_for(condition, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)  # polling a condition with a deadline
        return condition()

    def broken():
        return any(w.fatal or w.closed for w in pool)

    if not wait_for(lambda: broken() or all(w.before >= 5 for w in pool), 60):
        print("workers did not get going: %r" % [w.before for w in pool])
    print("ready", flush=True)
    line = sys.stdin.readline().strip()
    if line != "restarting":
        print("expected 'restarting' on stdin, got %r" % line)
    phase[0] = 1
    print("restarting: noted", flush=True)
    line = sys.stdin.readline().strip()
    if line != "restarted":
        print("expected 'restarted' on stdin, got %r" % line)
    phase[0] = 2
    wait_for(lambda: broken() or all(w.after >= after for w in pool), 60)
    for w in pool:
        w.stop = True
    for w in pool:
        w.join(30)

    problems = []
    for w in pool:
        print("worker %d: before=%d after=%d closed=%s fatal=%s errors=%r"
              % (w.index, w.before, w.after, w.closed, w.fatal, w.errors))
        if w.fatal:
            problems.append("worker %d: %s" % (w.index, w.fatal))
        if w.closed:
            problems.append("worker %d: its connection was closed" % w.index)
        if w.after < after:
            problems.append("worker %d: only %d transactions after the restart" % (w.index, w.after))
        if len(w.errors) > 2:
            problems.append("worker %d: %d errors (only transactions caught by the restart "
                            "may fail)" % (w.index, len(w.errors)))
        for sqlstate, message, start_phase, error_phase in w.errors:
            if not allowed(sqlstate):
                problems.append("worker %d: error %s %s" % (w.index, sqlstate, message))
            if error_phase == 0:
                problems.append("worker %d: error before the restart: %s %s"
                                % (w.index, sqlstate, message))
            if start_phase == 2:
                problems.append("worker %d: a transaction started after the restart failed: %s %s"
                                % (w.index, sqlstate, message))
    if problems:
        print("\n".join(problems))
        return 1
    print("restart clients: ok errors=%d" % sum(len(w.errors) for w in pool))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
