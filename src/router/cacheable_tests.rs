//! Cases for the cache's view of query texts.

use super::cacheable::{read_shape, write_targets, CacheReject, ReadShape, WriteTargets};

fn shape(sql: &str) -> String {
    match read_shape(sql, None, &["app.safe_fn".to_string()]) {
        ReadShape::Cacheable { relations } => {
            format!("ok {}", relations.join(",")).trim_end().to_string()
        }
        ReadShape::Rejected(r, what) => format!("no {} {what}", r.as_str()).trim_end().to_string(),
    }
}

#[test]
fn cacheable_reads_and_their_relations() {
    let cases = "
        SELECT abalance FROM pgbench_accounts WHERE aid = 1 => ok pgbench_accounts
        select * from public.T, \"Odd\" o join u on u.a = o.a, v => ok Odd,t,u,v
        SELECT count(*), lower(a) FROM t WHERE b IN (SELECT b FROM s) => ok s,t
        WITH x AS (SELECT a FROM t) SELECT * FROM x => ok t
        SELECT a::numeric(10,2), CAST(b AS varchar(3)) FROM t AS q(a, b) => ok t
        SELECT safe_fn(a) FROM t => ok t
        TABLE t => ok t
        VALUES (1), (2) => ok
        SELECT * FROM generate_series(1, 3) g => ok
        SELECT extract(year from d) FROM t => ok d,t
        SELECT now() => no function now
        SELECT random() FROM t => no function random
        SELECT nextval('s') => no function nextval
        SELECT txid_current() => no function txid_current
        SELECT current_user => no value_function current_user
        SELECT a FROM t WHERE d < CURRENT_DATE => no value_function current_date
        SELECT * FROM pg_class => no system_catalog pg_class
        SELECT * FROM information_schema.tables => no system_catalog tables
        SELECT * FROM pg_temp.t => no temp_table t
        SELECT * FROM t TABLESAMPLE SYSTEM (10) => no tablesample
        SELECT * FROM t FOR UPDATE => no locking
        SELECT * FROM t FOR KEY SHARE => no locking
        SELECT 1; SELECT 2 => no not_a_select
        SHOW search_path => no not_a_select
        EXPLAIN SELECT 1 => no not_a_select
        INSERT INTO t VALUES (1) => no not_a_select
    ";
    for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (sql, want) = line.rsplit_once(" => ").expect("case");
        assert_eq!(shape(sql), want, "{sql}");
    }
    assert_eq!(
        read_shape("SELECT 1", Some(false), &[]),
        ReadShape::Rejected(CacheReject::NoCacheHint, String::new())
    );
    let vouched = read_shape("SELECT my_stable(a) FROM t", Some(true), &[]);
    assert_eq!(
        vouched,
        ReadShape::Cacheable {
            relations: vec!["t".into()]
        }
    );
    let locked = read_shape("SELECT f(a) FROM t FOR SHARE", Some(true), &[]);
    assert_eq!(
        locked,
        ReadShape::Rejected(CacheReject::Locking, String::new())
    );
}

#[test]
fn write_targets_of_statements() {
    let t = |v: &[&str]| WriteTargets::Tables(v.iter().map(|s| s.to_string()).collect());
    let cases: Vec<(&str, WriteTargets)> = vec![
        ("INSERT INTO public.Accounts VALUES (1)", t(&["accounts"])),
        ("UPDATE ONLY t SET a = 1 WHERE b = 2", t(&["t"])),
        ("DELETE FROM \"T\" WHERE a = 1", t(&["T"])),
        ("TRUNCATE TABLE a, ONLY b", t(&["a", "b"])),
        ("TRUNCATE a *, b CASCADE", t(&["a", "b"])),
        (
            "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x",
            t(&["t"]),
        ),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2",
            t(&["t"]),
        ),
        (
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = 1",
            t(&["t"]),
        ),
        ("COPY t (a, b) FROM STDIN", t(&["t"])),
        ("BEGIN; UPDATE t SET a = 1; COMMIT", t(&["t"])),
        ("SELECT * FROM t FOR UPDATE", WriteTargets::Nothing),
        (
            "SELECT * FROM t FOR NO KEY UPDATE OF t",
            WriteTargets::Nothing,
        ),
        ("COPY t TO STDOUT", WriteTargets::Nothing),
        ("SET search_path = a", WriteTargets::Nothing),
        ("SELECT nextval('s')", WriteTargets::Nothing),
        ("CREATE TABLE t (a int)", WriteTargets::Everything),
        ("ALTER ROLE u SET x = 1", WriteTargets::Everything),
        ("GRANT SELECT ON t TO u", WriteTargets::Everything),
        ("DO $$ BEGIN END $$", WriteTargets::Everything),
        ("UPDATE", WriteTargets::Everything),
        ("FROBNICATE t", WriteTargets::Everything),
    ];
    for (sql, want) in cases {
        assert_eq!(write_targets(sql), want, "{sql}");
    }
}
