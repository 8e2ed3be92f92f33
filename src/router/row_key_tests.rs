use super::*;

fn terms(s: &RowKeyShape) -> Vec<(&str, KeyAt)> {
    s.terms.iter().map(|(c, a)| (c.as_str(), *a)).collect()
}

#[test]
fn point_reads_are_found() {
    let r = read_row_key("SELECT abalance FROM pgbench_accounts WHERE aid = 42").unwrap();
    assert_eq!(r.table, "pgbench_accounts");
    assert_eq!(terms(&r), vec![("aid", KeyAt::Literal(0))]);
    let r =
        read_row_key("select a.x, 'k' from s.\"T\" as a where a.b = 'z' and a.id = $2;").unwrap();
    assert_eq!(r.table, "T");
    assert_eq!(terms(&r), vec![("id", KeyAt::Param(1))]);
    let r = read_row_key("SELECT * FROM t x WHERE id = 7 AND k = 1 ORDER BY 1 LIMIT 3").unwrap();
    assert_eq!(
        terms(&r),
        vec![("id", KeyAt::Literal(0)), ("k", KeyAt::Literal(1))]
    );
    assert_eq!(r.key_at("k"), Some(KeyAt::Literal(1)));
    assert_eq!(r.key_at("z"), None);
}

#[test]
fn anything_unsure_is_not_a_point_read() {
    for sql in [
        "SELECT * FROM t WHERE id = 1 OR id = 2",
        "SELECT * FROM t WHERE x BETWEEN 1 AND id = 2",
        "SELECT * FROM t WHERE CASE WHEN a AND id = 5 THEN true END",
        "SELECT * FROM t WHERE (id = 5)",
        "SELECT * FROM t WHERE id = 5 + 1",
        "SELECT * FROM t WHERE id = 5::int",
        "SELECT * FROM t WHERE id = -5",
        "SELECT * FROM t WHERE id = 5.0",
        "SELECT * FROM t WHERE id = '5'",
        "SELECT * FROM t WHERE id >= 5",
        "SELECT * FROM t WHERE id = 5 IS TRUE",
        "SELECT * FROM t WHERE NOT id = 5",
        "SELECT * FROM t WHERE u.id = 5",
        "SELECT * FROM t WHERE id = 5 AND x > (SELECT avg(x) FROM t)",
        "SELECT * FROM t JOIN u ON true WHERE t.id = 5",
        "SELECT * FROM t, u WHERE id = 5",
        "SELECT * FROM t WHERE id = 5 UNION SELECT * FROM t",
        "WITH c AS (SELECT 1) SELECT * FROM t WHERE id = 5",
        "SELECT * FROM ONLY t WHERE id = 5",
        "SELECT * FROM t WHERE id = 5; SELECT 1",
        "SELECT * FROM t",
        "SELECT 1 WHERE 1 = 1",
    ] {
        let r = read_row_key(sql);
        assert!(
            r.is_none() || !r.as_ref().unwrap().terms.iter().any(|(c, _)| c == "id"),
            "{sql}: {r:?}"
        );
    }
}

#[test]
fn point_writes_are_found() {
    let w = write_row_key("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2")
        .unwrap();
    assert_eq!(w.table, "pgbench_accounts");
    assert_eq!(w.key_at("aid"), Some(KeyAt::Param(1)));
    assert_eq!(w.assigned, vec!["abalance".to_string()]);
    let w = write_row_key("update t set id = 9, v = 'x' where id = 3 returning *").unwrap();
    assert_eq!(w.key_at("id"), None, "the key is assigned: the row moves");
    let w = write_row_key("DELETE FROM s.t AS q WHERE q.id = 12").unwrap();
    assert_eq!(
        (w.table.as_str(), w.key_at("id")),
        ("t", Some(KeyAt::Literal(0)))
    );
    for sql in [
        "UPDATE t SET v = 1 FROM u WHERE t.id = u.id AND t.id = 3",
        "UPDATE t SET v = (SELECT 1) WHERE id = 3",
        "UPDATE t SET v = 1 WHERE CURRENT OF c",
        "UPDATE t SET v = 1 WHERE id = 3 OR true",
        "DELETE FROM t USING u WHERE t.id = 3",
        "DELETE FROM t",
        "INSERT INTO t VALUES (1)",
        "WITH x AS (DELETE FROM t WHERE id = 1) DELETE FROM t WHERE id = 2",
    ] {
        let w = write_row_key(sql);
        assert!(w.and_then(|w| w.key_at("id")).is_none(), "{sql}");
    }
}

#[test]
fn literals_are_counted_in_order() {
    let sql = "SELECT 'a', $$b$$ FROM t WHERE x = E'c' AND id = 77";
    assert_eq!(nth_literal(sql, 3), Some("77"));
    assert_eq!(nth_literal(sql, 4), None);
    let r = read_row_key(sql).unwrap();
    assert_eq!(r.key_at("id"), Some(KeyAt::Literal(3)));
}
