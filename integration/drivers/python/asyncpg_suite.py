"""asyncpg suite: a client-side pool of CLIENTS connections (min_size = max_size) shared by
CLIENTS tasks. asyncpg always uses named server-side statements (its statement cache, and
the statements of conn.prepare()), so every query here is a named prepared statement, and
connections change hands between tasks, with their cached statements, at every iteration.

Each iteration a task acquires a connection and runs, in a shuffled order after a first
INSERT (which makes its later reads safe under read-your-writes, which is per connection):
  insert_fetch   INSERT (several types), then fetchrow/fetchval/fetch of that row
  scalars        distinct parametrized fetchval/fetchrow/fetch with known answers
  prepared       conn.prepare() objects (prepared in a random order) reused across three
                 transactions (commit, commit, rollback), plus their parameter/attribute
                 descriptions
  failed_txn     a transaction aborted by a unique violation; nothing of it may remain
  executemany    executemany INSERT, then a SELECT of those rows
  copy           copy_records_to_table, then a SELECT of those rows
  cursor         a server-side cursor (portal fetched in chunks) inside a transaction
At the end each task's rows and balances are compared with what it wrote.
"""

import asyncio
import datetime
import decimal
import json
import random
import time

import asyncpg

from common import (CLIENTS, DB, HOST, ITERATIONS, PASSWORD, PORT, SEED, SKIP, TARGET, USER,
                    Failures, Mismatch, expect, start_watchdog, unique_prefix)

SUITE = "asyncpg"
PREFIX = unique_prefix(SUITE)
ITEMS = PREFIX + "_items"
ACCT = PREFIX + "_accounts"
START_BALANCE = 1000

failures = Failures(SUITE)


async def init_conn(conn):
    # jsonb as Python objects (asyncpg runs its type introspection for this).
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")


class Task:
    def __init__(self, k, pool):
        self.k = k
        self.pool = pool
        self.rng = random.Random(SEED * 1000 + k)
        self.seq = 0
        self.rows = {}  # id -> (val, n, payload, doc)
        self.balance = [START_BALANCE, START_BALANCE]
        self.ops = 0
        self.current = "not started"
        self.done = False

    def new_row(self):
        self.seq += 1
        rid = self.k * 1_000_000 + self.seq
        val = f"t{self.k}-r{self.seq}-{self.rng.randrange(10**9)}-é✓"
        n = self.rng.randrange(-10**6, 10**6)
        payload = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 40)))
        doc = {"k": self.k, "seq": self.seq, "tags": [self.rng.randrange(100) for _ in range(3)]}
        return rid, val, n, payload, doc

    async def check_balances(self, conn, what):
        got = await conn.fetch(f"SELECT acct, balance FROM {ACCT} WHERE worker = $1 ORDER BY acct",
                               self.k)
        expect([tuple(r) for r in got], [(0, self.balance[0]), (1, self.balance[1])], what)

    # --- operations

    async def op_insert_fetch(self, conn):
        rid, val, n, payload, doc = self.new_row()
        status = await conn.execute(
            f"INSERT INTO {ITEMS} (id, worker, val, n, payload, doc) VALUES ($1, $2, $3, $4, $5, $6)",
            rid, self.k, val, n, payload, doc)
        expect(status, "INSERT 0 1", "INSERT status")
        self.rows[rid] = (val, n, payload, doc)
        row = await conn.fetchrow(f"SELECT val, n, payload, doc FROM {ITEMS} WHERE id = $1", rid)
        expect(tuple(row) if row else None, (val, n, payload, doc), f"row {rid} after INSERT")
        expect(await conn.fetchval(f"SELECT n FROM {ITEMS} WHERE id = $1", rid), n, "fetchval n")
        got = await conn.fetch(f"SELECT id FROM {ITEMS} WHERE worker = $1 ORDER BY id", self.k)
        expect([r["id"] for r in got], sorted(self.rows), f"ids of task {self.k}")

    async def op_scalars(self, conn):
        r = self.rng
        a, b = r.randrange(-10**6, 10**6), r.randrange(-10**6, 10**6)
        s1, s2 = f"x{r.randrange(10**6)}", f"ÿ{r.randrange(10**6)}"
        d = decimal.Decimal(f"{a}.125")
        checks = [
            ("fetchval", "SELECT $1::int + $2::int", (a, b), a + b),
            ("fetchrow", "SELECT $1::text || $2::text AS s, length($2::text) AS l", (s1, s2),
             (s1 + s2, len(s2))),
            ("fetchval", "SELECT $1::numeric * 2", (d,), d * 2),
            ("fetchval", "SELECT $1::date + $2::int", (datetime.date(2020, 2, 28), 2),
             datetime.date(2020, 3, 1)),
            ("fetchrow", "SELECT array_length($1::int[], 1), $2::int[]", ([a, b, 7], [b, a]),
             (3, [b, a])),
            ("fetch", "SELECT x, x * $1::bigint FROM generate_series(1, $2::int) AS x", (a, 120),
             [(x, x * a) for x in range(1, 121)]),
            ("fetchval", "SELECT ($1::jsonb) -> 'k'", ({"k": a},), a),
            ("fetchrow", "SELECT $1::bool AND $2::bool, $3::float8 / 4, $4::text IS NULL",
             (True, False, float(b), None), (False, b / 4, True)),
            ("fetchval", "SELECT $1::bytea || '\\x00ff'::bytea", (b"ab",), b"ab\x00\xff"),
            ("fetchval", "SELECT $1::timestamptz + interval '1 day'",
             (datetime.datetime(2024, 2, 28, 12, tzinfo=datetime.timezone.utc),),
             datetime.datetime(2024, 2, 29, 12, tzinfo=datetime.timezone.utc)),
        ]
        r.shuffle(checks)
        for method, q, args, want in checks:
            got = await getattr(conn, method)(q, *args)
            if method == "fetchrow":
                got = tuple(got)
            elif method == "fetch":
                got = [tuple(x) for x in got]
            expect(got, want, f"{method} {q!r} {args!r}")
        got = await conn.fetchrow(
            f"SELECT count(*), coalesce(sum(n), 0) FROM {ITEMS} WHERE worker = $1", self.k)
        expect(tuple(got), (len(self.rows), sum(v[1] for v in self.rows.values())),
               f"count/sum of task {self.k}'s rows")
        try:
            await conn.fetchval("SELECT 1 / $1::int", 0)
            raise Mismatch("1/0 did not fail")
        except asyncpg.DivisionByZeroError:
            pass
        expect(await conn.fetchval("SELECT 10 / $1::int", 5), 2, "10/5 after a failed statement")

    async def op_prepared(self, conn):
        texts = {
            "upd0": f"UPDATE {ACCT} SET balance = balance - $1 WHERE worker = $2 AND acct = 0 "
                    "RETURNING balance",
            "upd1": f"UPDATE {ACCT} SET balance = balance + $1 WHERE worker = $2 AND acct = 1 "
                    "RETURNING balance",
            "sel": f"SELECT acct, balance FROM {ACCT} WHERE worker = $1 ORDER BY acct",
        }
        order = list(texts)
        self.rng.shuffle(order)  # the order of preparation must not matter
        stmts = {}
        for name in order:
            stmts[name] = await conn.prepare(texts[name])
        upd0, upd1, sel = stmts["upd0"], stmts["upd1"], stmts["sel"]
        expect([t.name for t in upd0.get_parameters()], ["int8", "int4"], "upd0 parameter types")
        expect([(a.name, a.type.name) for a in sel.get_attributes()],
               [("acct", "int4"), ("balance", "int8")], "sel attributes")
        for t in range(3):
            amt = self.rng.randrange(1, 50)
            tx = conn.transaction()
            await tx.start()
            expect(await upd0.fetchval(amt, self.k), self.balance[0] - amt, "upd0 RETURNING")
            expect(await upd1.fetchval(amt, self.k), self.balance[1] + amt, "upd1 RETURNING")
            expect([tuple(x) for x in await sel.fetch(self.k)],
                   [(0, self.balance[0] - amt), (1, self.balance[1] + amt)], "balances in txn")
            if t < 2:
                await tx.commit()
                self.balance = [self.balance[0] - amt, self.balance[1] + amt]
            else:
                await tx.rollback()
            # The same prepared statement outside a transaction (may go to a replica).
            expect([tuple(x) for x in await sel.fetch(self.k)],
                   [(0, self.balance[0]), (1, self.balance[1])],
                   "balances after " + ("commit" if t < 2 else "rollback"))

    async def op_failed_txn(self, conn):
        if not self.rows:
            return
        dup = self.rng.choice(list(self.rows))
        amt = self.rng.randrange(1, 50)
        try:
            async with conn.transaction():
                await conn.execute(f"UPDATE {ACCT} SET balance = balance - $1 "
                                   "WHERE worker = $2 AND acct = 0", amt, self.k)
                await conn.execute(f"INSERT INTO {ITEMS} (id, worker, val, n) VALUES ($1, $2, $3, $4)",
                                   dup, self.k, "dup", 0)
            raise Mismatch(f"duplicate id {dup} accepted")
        except asyncpg.UniqueViolationError:
            pass
        await self.check_balances(conn, "balances after a failed transaction")
        expect(await conn.fetchval(f"SELECT val FROM {ITEMS} WHERE id = $1", dup),
               self.rows[dup][0], f"row {dup} after a failed duplicate")

    async def op_executemany(self, conn):
        rows = [self.new_row() for _ in range(self.rng.randrange(3, 8))]
        await conn.executemany(
            f"INSERT INTO {ITEMS} (id, worker, val, n, payload, doc) VALUES ($1, $2, $3, $4, $5, $6)",
            [(rid, self.k, v, n, p, d) for rid, v, n, p, d in rows])
        for rid, v, n, p, d in rows:
            self.rows[rid] = (v, n, p, d)
        got = await conn.fetch(f"SELECT id, val, n, payload, doc FROM {ITEMS} "
                               "WHERE id = any($1::bigint[]) ORDER BY id", [r[0] for r in rows])
        expect([tuple(x) for x in got], [tuple(r) for r in rows], "rows of executemany")

    async def op_copy(self, conn):
        rows = [self.new_row() for _ in range(self.rng.randrange(5, 30))]
        status = await conn.copy_records_to_table(
            ITEMS, columns=["id", "worker", "val", "n", "payload"],
            records=[(rid, self.k, v, n, p) for rid, v, n, p, _ in rows])
        expect(status, f"COPY {len(rows)}", "COPY status")
        for rid, v, n, p, _ in rows:
            self.rows[rid] = (v, n, p, None)
        got = await conn.fetch(f"SELECT id, val, n, payload, doc FROM {ITEMS} "
                               "WHERE id = any($1::bigint[]) ORDER BY id", [r[0] for r in rows])
        expect([tuple(x) for x in got], [(rid, v, n, p, None) for rid, v, n, p, _ in rows],
               "rows of COPY")

    async def op_cursor(self, conn):
        m = self.rng.randrange(100, 400)
        async with conn.transaction():
            seen = [r[0] async for r in conn.cursor(
                "SELECT x * $2::int FROM generate_series(1, $1::int) AS x", m, self.k + 1,
                prefetch=37)]
            expect(seen, [x * (self.k + 1) for x in range(1, m + 1)], "iterated cursor")
            cur = await conn.cursor(f"SELECT id FROM {ITEMS} WHERE worker = $1 ORDER BY id", self.k)
            ids = sorted(self.rows)
            expect([r[0] for r in await cur.fetch(3)], ids[:3], "cursor fetch(3)")
            await cur.forward(2)
            row = await cur.fetchrow()
            expect(row[0] if row else None, ids[5] if len(ids) > 5 else None, "cursor fetchrow")

    async def run(self):
        ops = [self.op_insert_fetch, self.op_scalars, self.op_prepared, self.op_failed_txn,
               self.op_executemany, self.op_copy, self.op_cursor]
        ops = [op for op in ops if op.__name__[3:] not in SKIP]
        for it in range(ITERATIONS):
            self.rng.shuffle(ops)
            self.current = f"pool.acquire(), iteration {it}"
            async with self.pool.acquire() as conn:
                # A write first: read-your-writes is per connection, and this connection
                # may not have written since the task's last rows.
                for op in [self.op_insert_fetch] + ops:
                    self.current = f"{op.__name__}, iteration {it}"
                    try:
                        await op(conn)
                    except Exception as e:
                        e.add_note(f"operation {op.__name__} of task {self.k}, iteration {it}")
                        raise
                    self.ops += 1

    async def final_check(self):
        self.current = "final_check"
        async with self.pool.acquire() as conn:
            if TARGET == "direct":
                # Proves the suite really uses named server-side statements.
                n = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements "
                                        "WHERE name LIKE '__asyncpg_%'")
                if n < 5:
                    raise Mismatch(f"only {n} asyncpg statements on a direct connection")
            async with conn.transaction():  # on the primary whatever the routing
                got = await conn.fetch(f"SELECT id, val, n FROM {ITEMS} WHERE worker = $1 "
                                       "ORDER BY id", self.k)
                expect([tuple(x) for x in got],
                       sorted((rid, v[0], v[1]) for rid, v in self.rows.items()),
                       f"all rows of task {self.k}")
                await self.check_balances(conn, "final balances")


async def main():
    print(f"[{SUITE}] asyncpg {asyncpg.__version__}, {HOST}:{PORT} ({TARGET}), pool of {CLIENTS} "
          f"connections, {CLIENTS} tasks x {ITERATIONS} iterations, seed {SEED}, tables {PREFIX}_*"
          + (f", SKIPPING {sorted(SKIP)}" if SKIP else ""), flush=True)
    t0 = time.monotonic()
    kw = dict(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB, ssl=False,
              timeout=15, server_settings={"application_name": "sy-drivers-asyncpg"})
    conn = await asyncpg.connect(**kw)
    await conn.execute(f"CREATE TABLE {ITEMS} (id bigint PRIMARY KEY, worker int NOT NULL, "
                       "val text NOT NULL, n int NOT NULL, payload bytea, doc jsonb)")
    await conn.execute(f"CREATE TABLE {ACCT} (worker int, acct int, balance bigint NOT NULL, "
                       "PRIMARY KEY (worker, acct))")
    await conn.execute(f"INSERT INTO {ACCT} SELECT w, a, $1 FROM generate_series(0, $2) w, "
                       "generate_series(0, 1) a", START_BALANCE, CLIENTS - 1)
    tasks = []
    ops = 0
    try:
        pool = await asyncpg.create_pool(min_size=CLIENTS, max_size=CLIENTS, init=init_conn, **kw)
        async with pool:
            tasks = [Task(k, pool) for k in range(CLIENTS)]
            start_watchdog(SUITE, lambda: [f"task {t.k}: in {t.current}"
                                           for t in tasks if not t.done])

            async def body(t):
                try:
                    await t.run()
                    await t.final_check()
                except Exception as e:
                    failures.add(f"task {t.k}", e)
                finally:
                    t.done = True

            await asyncio.gather(*(body(t) for t in tasks))
            ops = sum(t.ops for t in tasks)
        if not failures:
            async with conn.transaction():
                expect(await conn.fetchval(f"SELECT count(*) FROM {ITEMS}"),
                       sum(len(t.rows) for t in tasks), "total row count")
                expect(await conn.fetchval(f"SELECT sum(balance) FROM {ACCT}"),
                       2 * START_BALANCE * CLIENTS, "total balance")
    except Exception as e:
        failures.add("main", e)
    finally:
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {ITEMS}, {ACCT}")
            await conn.close()
        except Exception as e:
            failures.add("cleanup", e)
    failures.finish(f"{CLIENTS} connections, {ops} operations, {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    asyncio.run(main())
