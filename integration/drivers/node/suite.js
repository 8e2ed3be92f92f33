'use strict';
// node-postgres suite: named queries ({name, text, values}: a named server-side statement,
// parsed once per connection and then only bound and executed) from CLIENTS pg.Client
// connections, then from a pg.Pool of POOL_MAX connections shared by more tasks.
//
// The same statement name stands for different texts on different connections (e.g.
// 'calc' is $1 + $2 on even workers and $1 * $2 on odd ones), so a pooler that mixed up
// client names would return wrong values.
//
// Per iteration each worker runs, in a shuffled order (after a first INSERT, which makes its
// reads safe under read-your-writes):
//   insertSelect  named INSERT ... RETURNING, then named SELECT of that row
//   scalars       named and unnamed parametrized SELECTs with known answers, an aggregate of
//                 the worker's rows, and a named statement that fails (division by zero)
//   transfer      BEGIN, named UPDATEs ... RETURNING, named SELECT, COMMIT
//   rollback      the same rolled back, and a transaction aborted by a unique violation
// At the end every worker's rows and balances are compared with what it wrote.
//
// Environment: SUITE_HOST, SUITE_PORT, SUITE_USER, SUITE_PASSWORD, SUITE_DB, SUITE_TARGET,
// SUITE_CLIENTS (24), SUITE_ITERATIONS (80), SUITE_SEED, SUITE_SKIP (op names to leave out),
// SUITE_DEADLINE (240: seconds before unfinished connections are reported and the suite fails).

const pg = require('pg');

const env = process.env;
const CFG = {
  host: env.SUITE_HOST || '127.0.0.1',
  port: Number(env.SUITE_PORT || 6452),
  user: env.SUITE_USER || 'app',
  password: env.SUITE_PASSWORD || 'app_pw',
  database: env.SUITE_DB || 'app',
  ssl: false,
  connectionTimeoutMillis: 15000,
  application_name: 'sy-drivers-node-pg',
};
const TARGET = env.SUITE_TARGET || 'switchyard';
const CLIENTS = Number(env.SUITE_CLIENTS || 24);
const ITERATIONS = Number(env.SUITE_ITERATIONS || 80);
const SEED = Number(env.SUITE_SEED || Math.floor(Math.random() * 2 ** 30));
const SKIP = new Set((env.SUITE_SKIP || '').split(',').map((s) => s.trim()).filter(Boolean));
// After this many seconds: print what every unfinished connection is doing and fail.
const DEADLINE = Number(env.SUITE_DEADLINE || 240);
const POOL_MAX = 20;
const POOL_TASKS = 40;
const POOL_ITERATIONS = Math.max(1, Math.floor(ITERATIONS / 2));
const PREFIX = `sy_drv_nodepg_${process.pid}_${Math.floor(Math.random() * 2 ** 24).toString(16)}`;
const ITEMS = `${PREFIX}_items`;
const ACCT = `${PREFIX}_accounts`;
const START_BALANCE = 1000;
const SUITE = 'node-pg';

// Small seeded PRNG (mulberry32), so a failing run can be repeated with SUITE_SEED.
function rngFor(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo)), // [lo, hi)
    shuffle(arr) {
      for (let i = arr.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [arr[i], arr[j]] = [arr[j], arr[i]];
      }
      return arr;
    },
  };
}

class Mismatch extends Error {}

function expectEq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Mismatch(`${what}: expected ${e}, got ${a}`);
}

async function expectError(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    if (e.code === code) return;
    throw new Mismatch(`${what}: expected SQLSTATE ${code}, got ${e.code}: ${e.message}`);
  }
  throw new Mismatch(`${what}: expected SQLSTATE ${code}, but it succeeded`);
}

const failures = [];
function fail(who, e) {
  failures.push({ who, e });
  if (failures.length <= 5) {
    console.log(`[${SUITE}] FAILURE in ${who}: ${e && e.stack ? e.stack : e}`);
    if (e && e.code) console.log(`[${SUITE}]   SQLSTATE ${e.code}${e.detail ? `, detail: ${e.detail}` : ''}`);
  }
}

class Worker {
  constructor(k, client) {
    this.k = k;
    this.c = client;
    this.rng = rngFor(SEED * 1000 + k);
    this.seq = 0;
    this.rows = new Map(); // id -> {val, n}
    this.balance = [START_BALANCE, START_BALANCE];
    this.ops = 0;
    this.current = 'connected';
    this.done = false;
  }

  q(name, text, values) {
    return this.c.query({ name, text, values });
  }

  newRow() {
    this.seq += 1;
    return {
      id: this.k * 1000000 + this.seq,
      val: `c${this.k}-r${this.seq}-${this.rng.int(0, 1e9)}-é✓`,
      n: this.rng.int(-1e6, 1e6),
    };
  }

  async checkBalances(what) {
    const r = await this.q('balances', `SELECT acct, balance FROM ${ACCT} WHERE worker = $1 ORDER BY acct`, [this.k]);
    expectEq(r.rows, [{ acct: 0, balance: String(this.balance[0]) }, { acct: 1, balance: String(this.balance[1]) }], what);
  }

  async insertSelect() {
    const { id, val, n } = this.newRow();
    const ins = await this.q('ins', `INSERT INTO ${ITEMS} (id, worker, val, n) VALUES ($1, $2, $3, $4) RETURNING id, n`, [id, this.k, val, n]);
    expectEq(ins.rows, [{ id: String(id), n }], 'INSERT RETURNING');
    this.rows.set(id, { val, n });
    const sel = await this.q('get', `SELECT val, n FROM ${ITEMS} WHERE id = $1`, [id]);
    expectEq(sel.rows, [{ val, n }], `row ${id} read back after INSERT`);
  }

  async scalars() {
    const a = this.rng.int(-30000, 30000);
    const b = this.rng.int(-30000, 30000);
    const even = this.k % 2 === 0;
    const checks = [
      // Same name, different text on even and odd workers.
      ['calc', even ? 'SELECT $1::int + $2::int AS r' : 'SELECT $1::int * $2::int AS r', [a, b], [{ r: even ? a + b : a * b }]],
      ['concat', even ? 'SELECT $1::text || $2::text AS r' : 'SELECT $2::text || $1::text AS r', ['x' + a, 'y' + b], [{ r: even ? `x${a}y${b}` : `y${b}x${a}` }]],
      ['series', 'SELECT x, x * $1::int AS y FROM generate_series(1, $2::int) AS x', [a, 100], Array.from({ length: 100 }, (_, i) => ({ x: i + 1, y: (i + 1) * a }))],
      ['num', 'SELECT ($1::numeric * 2)::text AS r, $2::text IS NULL AS isnull', [`${a}.25`, null], [{ r: (a * 2 + (a < 0 ? -0.5 : 0.5)).toFixed(2), isnull: true }]],
      ['json', "SELECT $1::jsonb -> 'k' AS k, $1::jsonb AS doc", [JSON.stringify({ k: a, s: 'é' })], [{ k: a, doc: { k: a, s: 'é' } }]],
      ['arr', 'SELECT array_length($1::int[], 1) AS len, $1::int[] AS arr', [[a, b, 7]], [{ len: 3, arr: [a, b, 7] }]],
      ['bytes', "SELECT encode($1::bytea || '\\x00ff'::bytea, 'hex') AS h", [Buffer.from('ab')], [{ h: '616200ff' }]],
      [null, 'SELECT $1::int - $2::int AS d', [a, b], [{ d: a - b }]], // unnamed statement
    ];
    this.rng.shuffle(checks);
    for (const [name, text, values, want] of checks) {
      const r = await this.c.query(name ? { name, text, values } : { text, values });
      expectEq(r.rows, want, `${name || 'unnamed'}: ${text} ${JSON.stringify(values)}`);
    }
    let sum = 0;
    for (const v of this.rows.values()) sum += v.n;
    const agg = await this.q('agg', `SELECT count(*)::int AS c, coalesce(sum(n), 0)::bigint AS s FROM ${ITEMS} WHERE worker = $1`, [this.k]);
    expectEq(agg.rows, [{ c: this.rows.size, s: String(sum) }], `count/sum of worker ${this.k}'s rows`);
    await expectError(this.q('div', 'SELECT 100 / $1::int AS r', [0]), '22012', 'named SELECT 100/0');
    const r = await this.q('div', 'SELECT 100 / $1::int AS r', [4]);
    expectEq(r.rows, [{ r: 25 }], 'named SELECT 100/4 after the failure');
  }

  async transferSql(amt) {
    const r0 = await this.q('upd0', `UPDATE ${ACCT} SET balance = balance - $1 WHERE worker = $2 AND acct = 0 RETURNING balance`, [amt, this.k]);
    expectEq(r0.rows, [{ balance: String(this.balance[0] - amt) }], 'UPDATE acct 0 RETURNING');
    const r1 = await this.q('upd1', `UPDATE ${ACCT} SET balance = balance + $1 WHERE worker = $2 AND acct = 1 RETURNING balance`, [amt, this.k]);
    expectEq(r1.rows, [{ balance: String(this.balance[1] + amt) }], 'UPDATE acct 1 RETURNING');
    const s = await this.q('balances', `SELECT acct, balance FROM ${ACCT} WHERE worker = $1 ORDER BY acct`, [this.k]);
    expectEq(s.rows, [{ acct: 0, balance: String(this.balance[0] - amt) }, { acct: 1, balance: String(this.balance[1] + amt) }], 'balances inside the transaction');
  }

  async transfer() {
    const amt = this.rng.int(1, 50);
    await this.c.query('BEGIN');
    await this.transferSql(amt);
    await this.c.query('COMMIT');
    this.balance = [this.balance[0] - amt, this.balance[1] + amt];
    await this.checkBalances('balances after COMMIT');
  }

  async rollback() {
    const amt = this.rng.int(1, 50);
    const { id, val, n } = this.newRow();
    await this.c.query('BEGIN');
    await this.transferSql(amt);
    await this.q('ins', `INSERT INTO ${ITEMS} (id, worker, val, n) VALUES ($1, $2, $3, $4) RETURNING id, n`, [id, this.k, val, n]);
    await this.c.query('ROLLBACK');
    await this.checkBalances('balances after ROLLBACK');
    const r = await this.q('exists', `SELECT count(*)::int AS c FROM ${ITEMS} WHERE id = $1`, [id]);
    expectEq(r.rows, [{ c: 0 }], `row ${id} of a rolled-back transaction`);

    // Aborted by an error.
    const dup = [...this.rows.keys()][this.rng.int(0, this.rows.size)];
    await this.c.query('BEGIN');
    await this.transferSql(amt);
    await expectError(this.q('ins', `INSERT INTO ${ITEMS} (id, worker, val, n) VALUES ($1, $2, $3, $4) RETURNING id, n`, [dup, this.k, 'dup', 0]), '23505', `duplicate id ${dup}`);
    await expectError(this.q('get', `SELECT val, n FROM ${ITEMS} WHERE id = $1`, [dup]), '25P02', 'statement in an aborted transaction');
    await this.c.query('ROLLBACK');
    await this.checkBalances('balances after a failed transaction');
    const g = await this.q('get', `SELECT val, n FROM ${ITEMS} WHERE id = $1`, [dup]);
    expectEq(g.rows, [this.rows.get(dup)], `row ${dup} after a failed duplicate`);
  }

  async run() {
    let ops = ['insertSelect', 'scalars', 'transfer', 'rollback'].filter((o) => !SKIP.has(o));
    this.current = 'first insertSelect';
    await this.insertSelect(); // a write first (read-your-writes covers the CREATE TABLE)
    for (let it = 0; it < ITERATIONS; it++) {
      ops = this.rng.shuffle(ops);
      for (const op of ops) {
        this.current = `${op}, iteration ${it}`;
        try {
          await this[op]();
        } catch (e) {
          e.message += ` [operation ${op} of worker ${this.k}, iteration ${it}]`;
          throw e;
        }
        this.ops += 1;
      }
    }
  }

  async finalCheck() {
    this.current = 'finalCheck';
    if (TARGET === 'direct') {
      // Proves the suite really uses named server-side statements.
      const r = await this.c.query("SELECT count(*)::int AS c FROM pg_prepared_statements WHERE name IN ('ins', 'get', 'calc', 'upd0')");
      expectEq(r.rows, [{ c: 4 }], 'named statements on a direct connection');
    }
    await this.c.query('BEGIN'); // on the primary whatever the routing
    const r = await this.q('all', `SELECT id, val, n FROM ${ITEMS} WHERE worker = $1 ORDER BY id`, [this.k]);
    const want = [...this.rows.entries()].sort((x, y) => x[0] - y[0]).map(([id, v]) => ({ id: String(id), val: v.val, n: v.n }));
    expectEq(r.rows, want, `all rows of worker ${this.k}`);
    await this.checkBalances('final balances');
    await this.c.query('COMMIT');
  }
}

// pg.Pool phase: POOL_TASKS tasks over POOL_MAX pooled connections; the named statements
// of each underlying connection get used by many tasks. Each checkout writes first, then
// reads its own row back on the same connection.
async function poolPhase(stats, status) {
  const pool = new pg.Pool({ ...CFG, max: POOL_MAX });
  const poolRows = new Map(); // task -> count of rows
  try {
    await Promise.all(Array.from({ length: POOL_TASKS }, async (_, t) => {
      const rng = rngFor(SEED * 7 + t);
      let count = 0;
      try {
        for (let it = 0; it < POOL_ITERATIONS; it++) {
          status.set(t, `pool.connect(), iteration ${it}`);
          const c = await pool.connect();
          status.set(t, `queries, iteration ${it}`);
          try {
            const id = 900000000 + t * 10000 + it;
            const val = `pool${t}-${it}-${rng.int(0, 1e9)}`;
            const n = rng.int(-1000, 1000);
            const ins = await c.query({ name: 'pins', text: `INSERT INTO ${ITEMS} (id, worker, val, n) VALUES ($1, $2, $3, $4) RETURNING val`, values: [id, 1000 + t, val, n] });
            expectEq(ins.rows, [{ val }], 'pool INSERT RETURNING');
            count += 1;
            const sel = await c.query({ name: 'pget', text: `SELECT val, n FROM ${ITEMS} WHERE id = $1`, values: [id] });
            expectEq(sel.rows, [{ val, n }], `pool row ${id}`);
            const cnt = await c.query({ name: 'pcount', text: `SELECT count(*)::int AS c FROM ${ITEMS} WHERE worker = $1`, values: [1000 + t] });
            expectEq(cnt.rows, [{ c: count }], `pool rows of task ${t}`);
            const x = rng.int(0, 1e6);
            const calc = await c.query({ name: 'calc', text: 'SELECT $1::int + 1 AS r', values: [x] });
            expectEq(calc.rows, [{ r: x + 1 }], 'pool calc');
            stats.ops += 4;
          } finally {
            c.release();
          }
        }
        poolRows.set(t, count);
        status.delete(t);
      } catch (e) {
        e.message += ` [pool task ${t}]`;
        fail(`pool task ${t}`, e);
      }
    }));
    if (!failures.length) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await c.query(`SELECT worker - 1000 AS t, count(*)::int AS c FROM ${ITEMS} WHERE worker >= 1000 GROUP BY worker ORDER BY worker`);
        await c.query('COMMIT');
        expectEq(r.rows, [...poolRows.entries()].sort((x, y) => x[0] - y[0]).map(([t, c2]) => ({ t, c: c2 })), 'pool rows per task');
      } finally {
        c.release();
      }
    }
  } finally {
    await pool.end();
  }
}

async function main() {
  console.log(`[${SUITE}] pg ${require('pg/package.json').version}, node ${process.version}, ${CFG.host}:${CFG.port} (${TARGET}), ${CLIENTS} clients x ${ITERATIONS} iterations, then pg.Pool max ${POOL_MAX} x ${POOL_TASKS} tasks, seed ${SEED}, tables ${PREFIX}_*${SKIP.size ? `, SKIPPING ${[...SKIP]}` : ''}`);
  const t0 = Date.now();
  const admin = new pg.Client(CFG);
  await admin.connect();
  await admin.query(`CREATE TABLE ${ITEMS} (id bigint PRIMARY KEY, worker int NOT NULL, val text NOT NULL, n int NOT NULL)`);
  await admin.query(`CREATE TABLE ${ACCT} (worker int, acct int, balance bigint NOT NULL, PRIMARY KEY (worker, acct))`);
  await admin.query(`INSERT INTO ${ACCT} SELECT w, a, ${START_BALANCE} FROM generate_series(0, ${CLIENTS - 1}) w, generate_series(0, 1) a`);
  const stats = { ops: 0 };
  let workers = [];
  const poolStatus = new Map();
  setTimeout(() => {
    const lines = workers.filter((w) => !w.done).map((w) => `worker ${w.k}: in ${w.current}`)
      .concat([...poolStatus.entries()].map(([t, s]) => `pool task ${t}: in ${s}`));
    console.log(`[${SUITE}] FAIL: still running after ${DEADLINE}s (hung?); ${lines.length} unfinished:`);
    for (const l of lines.slice(0, 40)) console.log(`[${SUITE}]   ${l}`);
    process.exit(3);
  }, DEADLINE * 1000).unref();
  try {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, async () => {
      const c = new pg.Client(CFG);
      await c.connect();
      return c;
    }));
    workers = clients.map((c, k) => new Worker(k, c));
    await Promise.all(workers.map(async (w) => {
      try {
        await w.run();
        await w.finalCheck();
      } catch (e) {
        fail(`worker ${w.k}`, e);
      } finally {
        w.done = true;
        stats.ops += w.ops;
        await w.c.end().catch(() => {});
      }
    }));
    if (!SKIP.has('pool')) await poolPhase(stats, poolStatus);
    if (!failures.length) {
      await admin.query('BEGIN');
      const r = await admin.query(`SELECT (SELECT count(*)::int FROM ${ITEMS} WHERE worker < 1000) AS rows, (SELECT sum(balance)::int FROM ${ACCT}) AS total`);
      await admin.query('COMMIT');
      let rows = 0;
      for (const w of workers) rows += w.rows.size;
      expectEq(r.rows, [{ rows, total: 2 * START_BALANCE * CLIENTS }], 'total rows and balance');
    }
  } catch (e) {
    fail('main', e);
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${ITEMS}, ${ACCT}`).catch((e) => fail('cleanup', e));
    await admin.end().catch(() => {});
  }
  const summary = `${CLIENTS} clients + pool of ${POOL_MAX}, ${stats.ops} operations, ${((Date.now() - t0) / 1000).toFixed(1)}s`;
  if (failures.length) {
    console.log(`[${SUITE}] FAIL: ${failures.length} failure(s); ${summary}`);
    for (const { who, e } of failures.slice(0, 20)) console.log(`[${SUITE}]   ${who}: ${String(e && e.message).split('\n')[0]}`);
    process.exit(1);
  }
  console.log(`[${SUITE}] OK: ${summary}`);
  process.exit(0);
}

process.on('unhandledRejection', (e) => {
  console.log(`[${SUITE}] unhandled rejection: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
main();
