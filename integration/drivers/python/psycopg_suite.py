"""psycopg 3 suite: CLIENTS threads, one connection each, prepare_threshold=0 (every
statement is prepared server-side from its first execution, under psycopg's own names
_pg3_N, which differ from client to client because each worker runs its operations in its
own random order).

Per iteration each worker runs, in a shuffled order:
  insert_select   INSERT a row (several types), then SELECT it back (read-your-writes)
  scalars         a dozen distinct parametrized SELECTs with known answers, including an
                  aggregate over the worker's own rows and a failing one (division by zero)
  transfer        BEGIN, two UPDATE ... RETURNING, SELECT, COMMIT (conn.transaction() or
                  explicit BEGIN/COMMIT statements, which are then prepared too)
  rollback        a transaction rolled back on purpose (psycopg.Rollback or ROLLBACK),
                  and one aborted by a unique violation; nothing of either may remain
  executemany     executemany INSERT (plain and RETURNING; psycopg pipelines it), then
                  SELECT of those rows
  pipeline        a pipeline mixing reads and writes
Half of the workers use autocommit (single statements can go to a replica through
Switchyard), the other half psycopg's default implicit transactions with commit/rollback;
a third use prepared_max=6, so psycopg keeps deallocating and re-preparing statements.
At the end every worker's rows and balances are compared with what it wrote.
"""

import datetime
import decimal
import random
import threading
import time

import psycopg
from psycopg.types.json import Jsonb

from common import (CLIENTS, DB, HOST, ITERATIONS, PASSWORD, PORT, SEED, SKIP, TARGET, USER,
                    Failures, Mismatch, expect, start_watchdog, unique_prefix)

SUITE = "psycopg"
PREFIX = unique_prefix(SUITE)
ITEMS = PREFIX + "_items"
ACCT = PREFIX + "_accounts"
START_BALANCE = 1000

CONNINFO = psycopg.conninfo.make_conninfo(
    host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DB, sslmode="disable",
    connect_timeout=15, application_name="sy-drivers-psycopg")

failures = Failures(SUITE)
ops_done = [0]
ops_lock = threading.Lock()


class Worker:
    def __init__(self, k):
        self.k = k
        self.rng = random.Random(SEED * 1000 + k)
        self.autocommit = k % 2 == 0
        self.conn = psycopg.connect(CONNINFO, prepare_threshold=0, autocommit=self.autocommit)
        if k % 3 == 0:
            self.conn.prepared_max = 6
        self.seq = 0
        self.rows = {}  # id -> (val, n, payload, doc) committed rows of this worker
        self.balance = [START_BALANCE, START_BALANCE]
        self.ops = 0
        self.current = "connected"
        self.done = False

    # --- helpers

    def next_id(self):
        self.seq += 1
        return self.k * 1_000_000 + self.seq

    def end_txn(self):
        """Outside autocommit, psycopg opened a transaction: commit it."""
        if not self.autocommit:
            self.conn.commit()

    def new_row(self):
        rid = self.next_id()
        val = f"w{self.k}-r{self.seq}-{self.rng.randrange(10**9)}-é✓"
        n = self.rng.randrange(-10**6, 10**6)
        payload = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 40)))
        doc = {"k": self.k, "seq": self.seq, "tags": [self.rng.randrange(100) for _ in range(3)]}
        return rid, val, n, payload, doc

    # --- operations

    def op_insert_select(self):
        rid, val, n, payload, doc = self.new_row()
        with self.conn.cursor() as cur:
            cur.execute(f"INSERT INTO {ITEMS} (id, worker, val, n, payload, doc) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (rid, self.k, val, n, payload, Jsonb(doc)))
            expect(cur.rowcount, 1, "INSERT rowcount")
            self.end_txn()
            self.rows[rid] = (val, n, payload, doc)
            # Read-your-writes: this SELECT may go to a replica through Switchyard.
            cur.execute(f"SELECT val, n, payload, doc FROM {ITEMS} WHERE id = %s", (rid,))
            got = cur.fetchall()
            expect(got, [(val, n, payload, doc)], f"row {rid} read back after INSERT")
            self.end_txn()

    def op_scalars(self):
        r = self.rng
        a, b = r.randrange(-10**6, 10**6), r.randrange(-10**6, 10**6)
        s1, s2 = f"x{r.randrange(10**6)}", f"ÿ{r.randrange(10**6)}"
        with self.conn.cursor() as cur:
            checks = [
                ("SELECT %s::int + %s::int, %s::text || %s::text",
                 (a, b, s1, s2), [(a + b, s1 + s2)]),
                ("SELECT upper(%s::text), length(%s::text)", (s1, s2), [(s1.upper(), len(s2))]),
                ("SELECT %s::numeric * 2", (decimal.Decimal(f"{a}.125"),),
                 [(decimal.Decimal(f"{a}.125") * 2,)]),
                ("SELECT %s::date + %s::int", (datetime.date(2020, 2, 28), 2),
                 [(datetime.date(2020, 3, 1),)]),
                ("SELECT array_length(%s::int[], 1), %s::int[]", ([a, b, 7], [b, a]),
                 [(3, [b, a])]),
                ("SELECT %s::bigint * 3 AS v UNION ALL SELECT %s::bigint - 1 ORDER BY v",
                 (a, b), sorted([(a * 3,), (b - 1,)])),
                ("SELECT x, x * %s::int FROM generate_series(1, %s::int) AS x",
                 (a, 150), [(x, x * a) for x in range(1, 151)]),
                ("SELECT %s::jsonb -> 'k', %s::text IS NULL", (Jsonb({"k": a}), None),
                 [(a, True)]),
                ("SELECT %s::bool AND %s::bool, %s::float8 / 4", (True, False, float(b)),
                 [(False, b / 4)]),
            ]
            r.shuffle(checks)
            for q, params, want in checks:
                cur.execute(q, params)
                expect(cur.fetchall(), want, f"{q!r} with {params!r}")
            # Aggregate over this worker's own committed rows (read-your-writes).
            cur.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM {ITEMS} WHERE worker = %s",
                        (self.k,))
            expect(cur.fetchone(), (len(self.rows), sum(v[1] for v in self.rows.values())),
                   f"count/sum of worker {self.k}'s rows")
            # An execution error of a prepared statement; the connection must stay usable.
            try:
                cur.execute("SELECT 1 / %s::int", (0,))
                raise Mismatch("SELECT 1/0 did not fail")
            except psycopg.errors.DivisionByZero:
                pass
            if not self.autocommit:
                self.conn.rollback()
            cur.execute("SELECT 1 / %s::int", (1,))
            expect(cur.fetchone(), (1,), "SELECT 1/1 after the division by zero")
            self.end_txn()

    def transfer_sql(self, cur, amt):
        cur.execute(f"UPDATE {ACCT} SET balance = balance - %s WHERE worker = %s AND acct = 0 "
                    "RETURNING balance", (amt, self.k))
        expect(cur.fetchall(), [(self.balance[0] - amt,)], "UPDATE acct 0 RETURNING")
        cur.execute(f"UPDATE {ACCT} SET balance = balance + %s WHERE worker = %s AND acct = 1 "
                    "RETURNING balance", (amt, self.k))
        expect(cur.fetchall(), [(self.balance[1] + amt,)], "UPDATE acct 1 RETURNING")
        cur.execute(f"SELECT acct, balance FROM {ACCT} WHERE worker = %s ORDER BY acct", (self.k,))
        expect(cur.fetchall(), [(0, self.balance[0] - amt), (1, self.balance[1] + amt)],
               "balances inside the transaction")

    def check_balances(self, cur, what):
        cur.execute(f"SELECT acct, balance FROM {ACCT} WHERE worker = %s ORDER BY acct", (self.k,))
        expect(cur.fetchall(), [(0, self.balance[0]), (1, self.balance[1])], what)
        self.end_txn()

    def op_transfer(self):
        amt = self.rng.randrange(1, 50)
        with self.conn.cursor() as cur:
            if self.autocommit and self.rng.random() < 0.5:
                # Explicit statements: with prepare_threshold=0 psycopg prepares BEGIN and
                # COMMIT too.
                cur.execute("BEGIN")
                self.transfer_sql(cur, amt)
                cur.execute("COMMIT")
            else:
                with self.conn.transaction():
                    self.transfer_sql(cur, amt)
                self.end_txn()
            self.balance = [self.balance[0] - amt, self.balance[1] + amt]
            self.check_balances(cur, "balances after COMMIT")

    def op_rollback(self):
        amt = self.rng.randrange(1, 50)
        rid, val, n, payload, doc = self.new_row()
        with self.conn.cursor() as cur:
            # 1. Rolled back on purpose.
            mode = self.rng.randrange(3)
            if mode == 0:
                with self.conn.transaction():
                    self.transfer_sql(cur, amt)
                    cur.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) VALUES (%s, %s, %s, %s)",
                                (rid, self.k, val, n))
                    raise psycopg.Rollback()
                self.end_txn()
            elif mode == 1 and self.autocommit:
                cur.execute("BEGIN")
                self.transfer_sql(cur, amt)
                cur.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) VALUES (%s, %s, %s, %s)",
                            (rid, self.k, val, n))
                cur.execute("ROLLBACK")
            else:
                if self.autocommit:
                    cur.execute("BEGIN")
                self.transfer_sql(cur, amt)
                cur.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) VALUES (%s, %s, %s, %s)",
                            (rid, self.k, val, n))
                if self.autocommit:
                    cur.execute("ROLLBACK")
                else:
                    self.conn.rollback()
            self.check_balances(cur, "balances after ROLLBACK")
            cur.execute(f"SELECT count(*) FROM {ITEMS} WHERE id = %s", (rid,))
            expect(cur.fetchone(), (0,), f"row {rid} inserted in a rolled-back transaction")
            self.end_txn()

            # 2. Aborted by an error: a duplicate key after a successful UPDATE.
            if self.rows:
                dup = self.rng.choice(list(self.rows))
                try:
                    with self.conn.transaction():
                        self.transfer_sql(cur, amt)
                        cur.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) "
                                    "VALUES (%s, %s, %s, %s)", (dup, self.k, "dup", 0))
                    raise Mismatch(f"duplicate id {dup} was accepted")
                except psycopg.errors.UniqueViolation:
                    pass
                if not self.autocommit:
                    self.conn.rollback()
                self.check_balances(cur, "balances after a failed transaction")
                cur.execute(f"SELECT val FROM {ITEMS} WHERE id = %s", (dup,))
                expect(cur.fetchall(), [(self.rows[dup][0],)], f"row {dup} after a failed duplicate")
                self.end_txn()

    def op_executemany(self):
        rows = [self.new_row() for _ in range(self.rng.randrange(3, 8))]
        with self.conn.cursor() as cur:
            half = len(rows) // 2
            cur.executemany(f"INSERT INTO {ITEMS} (id, worker, val, n, payload, doc) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            [(rid, self.k, v, n, p, Jsonb(d)) for rid, v, n, p, d in rows[:half]])
            cur.executemany(f"INSERT INTO {ITEMS} (id, worker, val, n, payload, doc) "
                            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, n * 2",
                            [(rid, self.k, v, n, p, Jsonb(d)) for rid, v, n, p, d in rows[half:]],
                            returning=True)
            got = []
            while True:
                got.extend(cur.fetchall())
                if not cur.nextset():
                    break
            expect(got, [(rid, n * 2) for rid, _, n, _, _ in rows[half:]],
                   "executemany RETURNING results")
            self.end_txn()
            for rid, v, n, p, d in rows:
                self.rows[rid] = (v, n, p, d)
            ids = [r[0] for r in rows]
            cur.execute(f"SELECT id, val, n, payload, doc FROM {ITEMS} "
                        "WHERE worker = %s AND id = ANY(%s) ORDER BY id", (self.k, ids))
            expect(cur.fetchall(), [(rid, v, n, p, d) for rid, v, n, p, d in rows],
                   "rows inserted by executemany")
            self.end_txn()

    def op_pipeline(self):
        rid, val, n, payload, doc = self.new_row()
        a = self.rng.randrange(10**6)
        with self.conn.pipeline():
            c1, c2, c3, c4 = (self.conn.cursor() for _ in range(4))
            c1.execute("SELECT %s::int * 2", (a,))
            c2.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) VALUES (%s, %s, %s, %s) "
                       "RETURNING id", (rid, self.k, val, n))
            c3.execute(f"SELECT val, n FROM {ITEMS} WHERE id = %s", (rid,))
            c4.execute(f"SELECT count(*) FROM {ITEMS} WHERE worker = %s", (self.k,))
        expect(c1.fetchall(), [(a * 2,)], "pipeline SELECT")
        expect(c2.fetchall(), [(rid,)], "pipeline INSERT RETURNING")
        expect(c3.fetchall(), [(val, n)], "pipeline read of the row just inserted")
        expect(c4.fetchall(), [(len(self.rows) + 1,)], "pipeline count")
        self.end_txn()
        self.rows[rid] = (val, n, None, None)

    def run(self):
        # First a write: its read-your-writes position also covers the CREATE TABLE, so
        # the reads that follow cannot land on a replica that lacks the tables.
        self.current = "first op_insert_select"
        self.op_insert_select()
        ops = [self.op_insert_select, self.op_scalars, self.op_transfer, self.op_rollback,
               self.op_executemany, self.op_pipeline]
        ops = [op for op in ops if op.__name__[3:] not in SKIP]
        for it in range(ITERATIONS):
            self.rng.shuffle(ops)
            for op in ops:
                self.current = f"{op.__name__}, iteration {it}"
                try:
                    op()
                except Exception as e:
                    e.add_note(f"operation {op.__name__} of worker {self.k} "
                               f"(autocommit={self.autocommit}, iteration seq={self.seq})")
                    raise
                self.ops += 1

    def final_check(self):
        self.current = "final_check"
        with self.conn.cursor() as cur:
            if TARGET == "direct":
                # Proves the suite really uses named server-side statements.
                # (psycopg deallocates everything after each ROLLBACK, so use a new one.)
                cur.execute("SELECT %s::int + 41", (1,))
                expect(cur.fetchone(), (42,), "SELECT 1 + 41")
                cur.execute("SELECT count(*) FROM pg_prepared_statements "
                            "WHERE name LIKE %s AND statement = %s", ("_pg3_%", "SELECT $1::int + 41"))
                expect(cur.fetchone(), (1,), "_pg3_ statements on a direct connection")
                self.end_txn()
            # In a read-write transaction: on the primary, whatever the routing.
            with self.conn.transaction():
                cur.execute(f"SELECT id, val, n FROM {ITEMS} WHERE worker = %s ORDER BY id", (self.k,))
                expect(cur.fetchall(), sorted((rid, v[0], v[1]) for rid, v in self.rows.items()),
                       f"all rows of worker {self.k}")
                cur.execute(f"SELECT acct, balance FROM {ACCT} WHERE worker = %s ORDER BY acct",
                            (self.k,))
                expect(cur.fetchall(), [(0, self.balance[0]), (1, self.balance[1])],
                       "final balances")
            self.end_txn()

    def close(self):
        self.conn.close()


def main():
    print(f"[{SUITE}] psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq "
          f"{psycopg.pq.version()}), {HOST}:{PORT} ({TARGET}), {CLIENTS} connections x "
          f"{ITERATIONS} iterations, seed {SEED}, tables {PREFIX}_*"
          + (f", SKIPPING {sorted(SKIP)}" if SKIP else ""), flush=True)
    t0 = time.monotonic()
    with psycopg.connect(CONNINFO, autocommit=True) as c:
        c.execute(f"CREATE TABLE {ITEMS} (id bigint PRIMARY KEY, worker int NOT NULL, "
                  "val text NOT NULL, n int NOT NULL, payload bytea, doc jsonb)")
        c.execute(f"CREATE TABLE {ACCT} (worker int, acct int, balance bigint NOT NULL, "
                  "PRIMARY KEY (worker, acct))")
        c.execute(f"INSERT INTO {ACCT} SELECT w, a, %s FROM generate_series(0, %s) w, "
                  "generate_series(0, 1) a", (START_BALANCE, CLIENTS - 1))

    workers = [None] * CLIENTS
    barrier = threading.Barrier(CLIENTS)
    start_watchdog(SUITE, lambda: [
        f"worker {w.k} (autocommit={w.autocommit}): in {w.current}"
        for w in workers if w is not None and not w.done])

    def body(k):
        try:
            w = workers[k] = Worker(k)
        except Exception as e:
            failures.add(f"worker {k} connect", e)
            barrier.abort()
            return
        try:
            barrier.wait(timeout=60)  # all connections open before the load starts
            w.run()
            w.final_check()
        except Exception as e:
            failures.add(f"worker {k}", e)
        finally:
            w.done = True
            with ops_lock:
                ops_done[0] += w.ops
            w.close()

    threads = [threading.Thread(target=body, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    try:
        with psycopg.connect(CONNINFO, autocommit=True) as c:
            if not failures:
                with c.transaction():
                    total_rows = sum(len(w.rows) for w in workers)
                    got = c.execute(f"SELECT count(*) FROM {ITEMS}").fetchone()[0]
                    expect(got, total_rows, "total row count")
                    got = c.execute(f"SELECT sum(balance) FROM {ACCT}").fetchone()[0]
                    expect(got, 2 * START_BALANCE * CLIENTS, "total balance")
            c.execute(f"DROP TABLE IF EXISTS {ITEMS}, {ACCT}")
    except Exception as e:
        failures.add("final check / cleanup", e)
    failures.finish(f"{CLIENTS} connections, {ops_done[0]} operations, "
                    f"{time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    main()
