// pgJDBC suite of integration/drivers/run.sh: CLIENTS threads, one Connection each, with
// prepareThreshold=1 (every PreparedStatement is a named server-side statement, S_N, from
// its first execution; the names mean different statements on different connections since
// each worker runs its operations in its own random order). Odd workers use a statement cache
// of 8 queries, so pgJDBC keeps closing and re-preparing statements.
//
// Per iteration each worker runs, in a shuffled order (after a first INSERT, which makes its
// reads safe under read-your-writes):
//   insertSelect  INSERT, then SELECT of that row in autocommit (may go to a replica)
//   scalars       distinct parametrized SELECTs with known answers (several types), an
//                 aggregate over the worker's rows, a failing statement (division by zero)
//   metadata      getMetaData()/getParameterMetaData() of a PreparedStatement before it is
//                 executed (a standalone Parse/Describe), then its execution
//   transfer      PreparedStatements kept for the whole run, reused across autocommit=false
//                 transactions: one committed, one rolled back, one aborted by a unique
//                 violation; balances are checked after each
//   batch         addBatch/executeBatch INSERTs (in a transaction and in autocommit)
//   cursor        setFetchSize in a transaction (portal fetched in chunks)
// At the end every worker's rows and balances are compared with what it wrote.
//
// Environment: SUITE_HOST, SUITE_PORT, SUITE_USER, SUITE_PASSWORD, SUITE_DB, SUITE_TARGET,
// SUITE_CLIENTS (24), SUITE_ITERATIONS (60), SUITE_SEED, SUITE_SKIP (op names to leave out),
// SUITE_DEADLINE (240: seconds before unfinished connections are reported and the suite fails).

import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

public class DriverSuite {
    static final String SUITE = "pgjdbc";
    static final String HOST = env("SUITE_HOST", "127.0.0.1");
    static final int PORT = Integer.parseInt(env("SUITE_PORT", "6452"));
    static final String USER = env("SUITE_USER", "app");
    static final String PASSWORD = env("SUITE_PASSWORD", "app_pw");
    static final String DB = env("SUITE_DB", "app");
    static final String TARGET = env("SUITE_TARGET", "switchyard");
    static final int CLIENTS = Integer.parseInt(env("SUITE_CLIENTS", "24"));
    static final int ITERATIONS = Integer.parseInt(env("SUITE_ITERATIONS", "60"));
    static final long SEED = Long.parseLong(env("SUITE_SEED", String.valueOf(new Random().nextInt(1 << 30))));
    static final Set<String> SKIP = new HashSet<>();
    // After this many seconds: print what every unfinished connection is doing and fail.
    static final int DEADLINE = Integer.parseInt(env("SUITE_DEADLINE", "240"));
    static final String URL = "jdbc:postgresql://" + HOST + ":" + PORT + "/" + DB
            + "?prepareThreshold=1&sslmode=disable&connectTimeout=15&ApplicationName=sy-drivers-pgjdbc";
    static final String PREFIX = "sy_drv_pgjdbc_" + ProcessHandle.current().pid() + "_"
            + Integer.toHexString(new Random().nextInt(1 << 24));
    static final String ITEMS = PREFIX + "_items";
    static final String ACCT = PREFIX + "_accounts";
    static final long START_BALANCE = 1000;

    static final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    static final AtomicLong opsDone = new AtomicLong();

    static String env(String k, String d) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? d : v;
    }

    static class Mismatch extends RuntimeException {
        Mismatch(String m) {
            super(m);
        }
    }

    /** Comparable form: arrays become lists (byte[] a hex string), recursively. */
    static Object norm(Object o) {
        if (o instanceof byte[]) {
            StringBuilder sb = new StringBuilder("bytes:");
            for (byte b : (byte[]) o) sb.append(String.format("%02x", b));
            return sb.toString();
        }
        if (o instanceof int[]) return norm(Arrays.stream((int[]) o).boxed().toArray());
        if (o instanceof Object[]) return norm(Arrays.asList((Object[]) o));
        if (o instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object x : (List<?>) o) out.add(norm(x));
            return out;
        }
        return o;
    }

    static void eq(Object actual, Object expected, String what) {
        if (!Objects.equals(norm(actual), norm(expected))) {
            throw new Mismatch(what + ": expected " + show(expected) + ", got " + show(actual));
        }
    }

    static String show(Object o) {
        return String.valueOf(norm(o));
    }

    static void expectState(SQLException e, String state, String what) {
        if (!state.equals(e.getSQLState())) {
            throw new Mismatch(what + ": expected SQLSTATE " + state + ", got " + e.getSQLState() + ": " + e.getMessage());
        }
    }

    static void fail(String who, Throwable e) {
        failures.add(who + ": " + e);
        synchronized (failures) {
            if (failures.size() <= 5) {
                System.out.println("[" + SUITE + "] FAILURE in " + who + ":");
                e.printStackTrace(System.out);
                System.out.flush();
            }
        }
    }

    static Connection connect() throws SQLException {
        return connect(256);
    }

    /** cacheQueries: pgJDBC's per-connection statement cache (it closes evicted statements). */
    static Connection connect(int cacheQueries) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", USER);
        p.setProperty("password", PASSWORD);
        p.setProperty("preparedStatementCacheQueries", String.valueOf(cacheQueries));
        return DriverManager.getConnection(URL, p);
    }

    /** Rows of a result set as lists of column values. */
    static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<Object> r = new ArrayList<>();
            for (int i = 1; i <= n; i++) {
                Object v = rs.getObject(i);
                if (v instanceof Array) v = ((Array) v).getArray();
                r.add(v);
            }
            out.add(r);
        }
        rs.close();
        return out;
    }

    static List<List<Object>> query(PreparedStatement ps, Object... params) throws SQLException {
        for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
        return rows(ps.executeQuery());
    }

    static List<Object> row(Object... vals) {
        return Arrays.asList(vals);
    }

    static class Row {
        final String val;
        final int n;

        Row(String val, int n) {
            this.val = val;
            this.n = n;
        }
    }

    static class Worker {
        final int k;
        final Random rng;
        final Connection c;
        int seq = 0;
        final TreeMap<Long, Row> rows = new TreeMap<>();
        long[] balance = {START_BALANCE, START_BALANCE};
        long ops = 0;
        volatile String current = "connecting";
        volatile boolean done = false;
        // Kept for the whole run: reused across transactions.
        final PreparedStatement ins, get, upd0, upd1, bal;

        Worker(int k) throws SQLException {
            this.k = k;
            this.rng = new Random(SEED * 1000 + k);
            // Odd workers: a small statement cache, so pgJDBC keeps closing (Close message)
            // and re-preparing server-side statements.
            this.c = k % 2 == 1 ? connect(8) : connect();
            ins = c.prepareStatement("INSERT INTO " + ITEMS + " (id, worker, val, n) VALUES (?, ?, ?, ?)");
            get = c.prepareStatement("SELECT val, n FROM " + ITEMS + " WHERE id = ?");
            upd0 = c.prepareStatement("UPDATE " + ACCT + " SET balance = balance - ? WHERE worker = ? AND acct = 0 RETURNING balance");
            upd1 = c.prepareStatement("UPDATE " + ACCT + " SET balance = balance + ? WHERE worker = ? AND acct = 1 RETURNING balance");
            bal = c.prepareStatement("SELECT acct, balance FROM " + ACCT + " WHERE worker = ? ORDER BY acct");
        }

        long nextId() {
            seq++;
            return (long) k * 1_000_000 + seq;
        }

        String newVal() {
            return "j" + k + "-r" + seq + "-" + rng.nextInt(1_000_000_000) + "-é✓";
        }

        void checkBalances(String what) throws SQLException {
            eq(query(bal, k), List.of(row(0, balance[0]), row(1, balance[1])), what);
        }

        void insertSelect() throws SQLException {
            long id = nextId();
            String val = newVal();
            int n = rng.nextInt(2_000_000) - 1_000_000;
            ins.setLong(1, id);
            ins.setInt(2, k);
            ins.setString(3, val);
            ins.setInt(4, n);
            eq(ins.executeUpdate(), 1, "INSERT count");
            rows.put(id, new Row(val, n));
            eq(query(get, id), List.of(row(val, n)), "row " + id + " read back after INSERT");
        }

        void scalars() throws SQLException {
            int a = rng.nextInt(60_000) - 30_000, b = rng.nextInt(60_000) - 30_000;
            String s1 = "x" + rng.nextInt(1_000_000), s2 = "ÿ" + rng.nextInt(1_000_000);
            List<Runnable> checks = new ArrayList<>();
            checks.add(sql("SELECT ?::int + ?::int, ?::int * ?::int", new Object[] {a, b, a, b},
                    List.of(row(a + b, a * b))));
            checks.add(sql("SELECT ?::text || ?::text, length(?::text)", new Object[] {s1, s2, s2},
                    List.of(row(s1 + s2, s2.length()))));
            checks.add(sql("SELECT ?::numeric * 2", new Object[] {new BigDecimal(a + ".125")},
                    List.of(row(new BigDecimal(a + ".125").multiply(BigDecimal.valueOf(2))))));
            checks.add(sql("SELECT (?::date + ?::int)::text", new Object[] {LocalDate.of(2020, 2, 28), 2},
                    List.of(row("2020-03-01"))));
            checks.add(sql("SELECT x, x * ?::bigint FROM generate_series(1, ?::int) AS x", new Object[] {(long) a, 120},
                    seriesRows(120, a)));
            checks.add(sql("SELECT ?::bool AND ?::bool, ?::text IS NULL, ?::bytea", new Object[] {true, false, null, new byte[] {1, 2, (byte) 255}},
                    List.of(row(false, true, new byte[] {1, 2, (byte) 255}))));
            checks.add(() -> {
                try (PreparedStatement ps = c.prepareStatement("SELECT array_length(?::int[], 1), ?::int[]")) {
                    ps.setArray(1, c.createArrayOf("int4", new Integer[] {a, b, 7}));
                    ps.setArray(2, c.createArrayOf("int4", new Integer[] {b, a}));
                    eq(rows(ps.executeQuery()), List.of(row(3, new Integer[] {b, a})), "int[] round trip");
                } catch (SQLException e) {
                    throw new RuntimeException(e);
                }
            });
            Collections.shuffle(checks, rng);
            for (Runnable r : checks) r.run();
            long sum = 0;
            for (Row r : rows.values()) sum += r.n;
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*), coalesce(sum(n), 0) FROM " + ITEMS + " WHERE worker = ?")) {
                eq(query(ps, k), List.of(row((long) rows.size(), sum)), "count/sum of worker " + k + "'s rows");
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT 100 / ?::int")) {
                try {
                    query(ps, 0);
                    throw new Mismatch("100/0 did not fail");
                } catch (SQLException e) {
                    expectState(e, "22012", "100/0");
                }
                eq(query(ps, 4), List.of(row(25)), "100/4 after a failed execution");
            }
        }

        static List<List<Object>> seriesRows(int m, long a) {
            List<List<Object>> out = new ArrayList<>();
            for (int x = 1; x <= m; x++) out.add(row(x, x * a));
            return out;
        }

        Runnable sql(String text, Object[] params, List<List<Object>> want) {
            return () -> {
                try (PreparedStatement ps = c.prepareStatement(text)) {
                    for (int i = 0; i < params.length; i++) {
                        if (params[i] == null) ps.setNull(i + 1, Types.VARCHAR);
                        else ps.setObject(i + 1, params[i]);
                    }
                    eq(rows(ps.executeQuery()), want, text + " " + show(params));
                } catch (SQLException e) {
                    throw new RuntimeException(text + ": " + e.getMessage(), e);
                }
            };
        }

        void metadata() throws SQLException {
            // A new text each time, so pgJDBC really describes it before any execution (and
            // its statement cache keeps evicting, i.e. closing, server-side statements).
            int cut = k * 10_000 + seq;
            String text = "SELECT id, val, n, n > " + cut + " AS big FROM " + ITEMS + " WHERE worker = ? AND n > ? ORDER BY id";
            try (PreparedStatement ps = c.prepareStatement(text)) {
                ResultSetMetaData md = ps.getMetaData();
                eq(md.getColumnCount(), 4, "metadata column count");
                List<Object> got = new ArrayList<>();
                for (int i = 1; i <= 4; i++) got.add(md.getColumnName(i) + ":" + md.getColumnType(i));
                eq(got, List.of("id:" + Types.BIGINT, "val:" + Types.VARCHAR, "n:" + Types.INTEGER, "big:" + Types.BIT),
                        "metadata columns");
                ParameterMetaData pmd = ps.getParameterMetaData();
                eq(pmd.getParameterCount(), 2, "parameter count");
                eq(pmd.getParameterType(1) + "," + pmd.getParameterType(2), Types.INTEGER + "," + Types.INTEGER, "parameter types");
                int min = rng.nextInt(2_000_000) - 1_000_000;
                List<List<Object>> want = new ArrayList<>();
                for (Map.Entry<Long, Row> e : rows.entrySet()) {
                    if (e.getValue().n > min) want.add(row(e.getKey(), e.getValue().val, e.getValue().n, e.getValue().n > cut));
                }
                eq(query(ps, k, min), want, "rows after getMetaData()");
            }
        }

        void transferSql(long amt) throws SQLException {
            eq(query(upd0, amt, k), List.of(row(balance[0] - amt)), "UPDATE acct 0 RETURNING");
            eq(query(upd1, amt, k), List.of(row(balance[1] + amt)), "UPDATE acct 1 RETURNING");
            eq(query(bal, k), List.of(row(0, balance[0] - amt), row(1, balance[1] + amt)), "balances inside the transaction");
        }

        void transfer() throws SQLException {
            long amt = 1 + rng.nextInt(49);
            c.setAutoCommit(false);
            try {
                // committed
                transferSql(amt);
                c.commit();
                balance = new long[] {balance[0] - amt, balance[1] + amt};
                checkBalances("balances after commit (same transaction mode)");
                c.commit();
                // rolled back, with an INSERT
                long id = nextId();
                transferSql(amt);
                ins.setLong(1, id);
                ins.setInt(2, k);
                ins.setString(3, "rolled back");
                ins.setInt(4, 0);
                eq(ins.executeUpdate(), 1, "INSERT count");
                c.rollback();
                checkBalances("balances after rollback");
                eq(query(get, id), List.of(), "row " + id + " of a rolled-back transaction");
                c.commit();
                // aborted by a unique violation
                long dup = new ArrayList<>(rows.keySet()).get(rng.nextInt(rows.size()));
                transferSql(amt);
                ins.setLong(1, dup);
                ins.setInt(2, k);
                ins.setString(3, "dup");
                ins.setInt(4, 0);
                try {
                    ins.executeUpdate();
                    throw new Mismatch("duplicate id " + dup + " accepted");
                } catch (SQLException e) {
                    expectState(e, "23505", "duplicate id " + dup);
                }
                try {
                    query(bal, k);
                    throw new Mismatch("statement in an aborted transaction succeeded");
                } catch (SQLException e) {
                    expectState(e, "25P02", "statement in an aborted transaction");
                }
                c.rollback();
            } finally {
                c.setAutoCommit(true);
            }
            // autocommit reads (may go to a replica: read-your-writes)
            checkBalances("balances after the failed transaction");
            Row r = rows.get(rows.firstKey());
            eq(query(get, rows.firstKey()), List.of(row(r.val, r.n)), "first row after the failed transaction");
        }

        void batch() throws SQLException {
            boolean txn = rng.nextBoolean();
            int m = 3 + rng.nextInt(8);
            List<Long> ids = new ArrayList<>();
            c.setAutoCommit(!txn);
            try {
                for (int i = 0; i < m; i++) {
                    long id = nextId();
                    String val = newVal();
                    int n = rng.nextInt(2000) - 1000;
                    ins.setLong(1, id);
                    ins.setInt(2, k);
                    ins.setString(3, val);
                    ins.setInt(4, n);
                    ins.addBatch();
                    ids.add(id);
                    rows.put(id, new Row(val, n));
                }
                int[] counts = ins.executeBatch();
                int[] ones = new int[m];
                Arrays.fill(ones, 1);
                eq(counts, ones, "executeBatch counts");
                if (txn) c.commit();
            } finally {
                c.setAutoCommit(true);
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT id, val, n FROM " + ITEMS + " WHERE id = ANY(?) ORDER BY id")) {
                ps.setArray(1, c.createArrayOf("int8", ids.toArray()));
                List<List<Object>> want = new ArrayList<>();
                for (long id : ids) want.add(row(id, rows.get(id).val, rows.get(id).n));
                eq(rows(ps.executeQuery()), want, "rows of executeBatch");
            }
        }

        void cursor() throws SQLException {
            int m = 100 + rng.nextInt(200);
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT x * ?::int FROM generate_series(1, ?::int) AS x")) {
                ps.setFetchSize(23);
                ps.setInt(1, k + 1);
                ps.setInt(2, m);
                List<Integer> got = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) got.add(rs.getInt(1));
                }
                List<Integer> want = new ArrayList<>();
                for (int x = 1; x <= m; x++) want.add(x * (k + 1));
                eq(got, want, "rows fetched 23 at a time");
                c.commit();
            } finally {
                c.setAutoCommit(true);
            }
        }

        void run() throws Exception {
            List<String> names = new ArrayList<>(List.of("insertSelect", "scalars", "metadata", "transfer", "batch", "cursor"));
            names.removeAll(SKIP);
            current = "first insertSelect";
            insertSelect(); // a write first (read-your-writes covers the CREATE TABLE)
            for (int it = 0; it < ITERATIONS; it++) {
                Collections.shuffle(names, rng);
                for (String op : names) {
                    current = op + ", iteration " + it;
                    try {
                        switch (op) {
                            case "insertSelect": insertSelect(); break;
                            case "scalars": scalars(); break;
                            case "metadata": metadata(); break;
                            case "transfer": transfer(); break;
                            case "batch": batch(); break;
                            case "cursor": cursor(); break;
                            default: throw new IllegalStateException(op);
                        }
                    } catch (Exception e) {
                        throw new Exception("operation " + op + " of worker " + k + ", iteration " + it + ": " + e, e);
                    }
                    ops++;
                }
            }
        }

        void finalCheck() throws SQLException {
            current = "finalCheck";
            if (TARGET.equals("direct")) {
                // Proves the suite really uses named server-side statements.
                try (Statement st = c.createStatement();
                     ResultSet rs = st.executeQuery("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'S\\_%'")) {
                    rs.next();
                    if (rs.getLong(1) < 5) throw new Mismatch("only " + rs.getLong(1) + " S_ statements on a direct connection");
                }
            }
            c.setAutoCommit(false); // on the primary whatever the routing
            try (PreparedStatement ps = c.prepareStatement("SELECT id, val, n FROM " + ITEMS + " WHERE worker = ? ORDER BY id")) {
                List<List<Object>> want = new ArrayList<>();
                for (Map.Entry<Long, Row> e : rows.entrySet()) want.add(row(e.getKey(), e.getValue().val, e.getValue().n));
                eq(query(ps, k), want, "all rows of worker " + k);
                checkBalances("final balances");
                c.commit();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        for (String s : env("SUITE_SKIP", "").split(",")) if (!s.isBlank()) SKIP.add(s.trim());
        System.out.println("[" + SUITE + "] pgJDBC " + org.postgresql.util.DriverInfo.DRIVER_VERSION + ", Java "
                + System.getProperty("java.version") + ", " + HOST + ":" + PORT + " (" + TARGET + "), " + CLIENTS
                + " connections x " + ITERATIONS + " iterations, prepareThreshold=1, seed " + SEED + ", tables " + PREFIX + "_*"
                + (SKIP.isEmpty() ? "" : ", SKIPPING " + SKIP));
        long t0 = System.nanoTime();
        try (Connection admin = connect(); Statement st = admin.createStatement()) {
            st.execute("CREATE TABLE " + ITEMS + " (id bigint PRIMARY KEY, worker int NOT NULL, val varchar NOT NULL, n int NOT NULL)");
            st.execute("CREATE TABLE " + ACCT + " (worker int, acct int, balance bigint NOT NULL, PRIMARY KEY (worker, acct))");
            st.execute("INSERT INTO " + ACCT + " SELECT w, a, " + START_BALANCE + " FROM generate_series(0, " + (CLIENTS - 1)
                    + ") w, generate_series(0, 1) a");
            Worker[] workers = new Worker[CLIENTS];
            Thread watchdog = new Thread(() -> {
                try {
                    Thread.sleep(DEADLINE * 1000L);
                } catch (InterruptedException e) {
                    return;
                }
                List<String> lines = new ArrayList<>();
                for (Worker w : workers) if (w != null && !w.done) lines.add("worker " + w.k + ": in " + w.current);
                System.out.println("[" + SUITE + "] FAIL: still running after " + DEADLINE + "s (hung?); "
                        + lines.size() + " worker(s) not finished:");
                for (String l : lines.subList(0, Math.min(40, lines.size()))) System.out.println("[" + SUITE + "]   " + l);
                System.out.flush();
                Runtime.getRuntime().halt(3);
            });
            watchdog.setDaemon(true);
            watchdog.start();
            CyclicBarrier barrier = new CyclicBarrier(CLIENTS);
            Thread[] threads = new Thread[CLIENTS];
            for (int i = 0; i < CLIENTS; i++) {
                final int k = i;
                threads[i] = new Thread(() -> {
                    Worker w = null;
                    try {
                        w = workers[k] = new Worker(k);
                        barrier.await(60, TimeUnit.SECONDS); // all connected before the load
                        w.run();
                        w.finalCheck();
                    } catch (Throwable e) {
                        barrier.reset();
                        fail("worker " + k, e);
                    } finally {
                        if (w != null) {
                            w.done = true;
                            opsDone.addAndGet(w.ops);
                            try {
                                w.c.close();
                            } catch (SQLException ignored) {
                            }
                        }
                    }
                });
                threads[i].start();
            }
            for (Thread t : threads) t.join();
            try {
                if (failures.isEmpty()) {
                    admin.setAutoCommit(false);
                    long total = 0;
                    for (Worker w : workers) total += w.rows.size();
                    try (ResultSet rs = st.executeQuery("SELECT (SELECT count(*) FROM " + ITEMS + "), (SELECT sum(balance) FROM " + ACCT + ")")) {
                        rs.next();
                        eq(rs.getLong(1), total, "total row count");
                        eq(rs.getLong(2), 2 * START_BALANCE * CLIENTS, "total balance");
                    }
                    admin.commit();
                    admin.setAutoCommit(true);
                }
            } catch (Throwable e) {
                fail("final check", e);
            } finally {
                admin.setAutoCommit(true);
                st.execute("DROP TABLE IF EXISTS " + ITEMS + ", " + ACCT);
            }
        } catch (Throwable e) {
            fail("main", e);
        }
        String summary = CLIENTS + " connections, " + opsDone.get() + " operations, "
                + String.format("%.1fs", (System.nanoTime() - t0) / 1e9);
        if (!failures.isEmpty()) {
            System.out.println("[" + SUITE + "] FAIL: " + failures.size() + " failure(s); " + summary);
            synchronized (failures) {
                for (String f : failures.subList(0, Math.min(20, failures.size()))) {
                    System.out.println("[" + SUITE + "]   " + f.split("\n")[0]);
                }
            }
            System.exit(1);
        }
        System.out.println("[" + SUITE + "] OK: " + summary);
        System.exit(0);
    }
}
