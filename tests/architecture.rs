//! The layering of `src/`, checked: every top-level module may import only the modules its
//! row of `LAYERS` names (each of them higher in the table, so the table itself only points
//! down), and no two modules at any depth import each other (a parent and its own child
//! excepted: `use super::*` in a child is how Rust splits one module over files). Imports
//! are read from the code before a file's first `#[cfg(test)]`: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module and what it may import. Base layer first (value types and pure
/// logic), then I/O (`net`), server side (`backend`), cluster state (`topology`), client side
/// (`frontend`), and the wiring at the top (`app`). A module not listed here fails the test:
/// a new module must be given its place.
const LAYERS: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("protocol", &[]),
    ("config", &[]),
    ("auth", &[]),
    ("stats", &[]),
    ("router", &["stats"]),
    ("params", &["router"]),
    ("prepared", &["protocol", "router"]),
    ("net", &["util", "config"]),
    (
        "backend",
        &[
            "util", "protocol", "config", "auth", "stats", "params", "prepared", "net",
        ],
    ),
    (
        "cache",
        &[
            "util", "protocol", "config", "auth", "stats", "router", "net", "backend",
        ],
    ),
    (
        "topology",
        &[
            "util", "protocol", "config", "auth", "stats", "router", "net", "backend", "cache",
        ],
    ),
    (
        "frontend",
        &[
            "util", "protocol", "config", "auth", "stats", "router", "params", "prepared", "net",
            "backend", "cache", "topology",
        ],
    ),
    (
        "app",
        &[
            "util", "protocol", "config", "auth", "stats", "router", "params", "prepared", "net",
            "backend", "cache", "topology", "frontend",
        ],
    ),
];

/// A module path below the crate root, e.g. `["frontend", "session"]`.
type ModPath = Vec<String>;

/// One import found in a file: the module it names, and where.
#[derive(Debug)]
struct Import {
    from: ModPath,
    to: ModPath,
    file: String,
    line: usize,
}

fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

fn collect_files(dir: &Path, root: &Path, out: &mut Vec<(ModPath, String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            collect_files(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap();
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((module_of(rel), rel.display().to_string(), text));
        }
    }
}

/// The code of a file up to its tests, without line comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| !l.trim_start().starts_with("#[cfg(test)]"))
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The `a::b::c` path starting at `s` (identifiers joined by `::`), and whether a `{` group
/// follows it.
fn path_at(s: &str) -> (Vec<String>, Option<&str>) {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        parts.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    (parts, rest.strip_prefix('{'))
}

/// The longest prefix of `path` (relative to `base`) that is a module of the crate.
fn resolve(base: &[String], path: &[String], modules: &BTreeSet<ModPath>) -> ModPath {
    let mut best = base.to_vec();
    let mut cur = base.to_vec();
    for seg in path {
        cur.push(seg.clone());
        if modules.contains(&cur) {
            best = cur.clone();
        } else {
            break;
        }
    }
    best
}

/// Every `crate::...` and `super::...` reference in the files, resolved to modules. A
/// `use crate::{a, b::c}` group counts each of its top-level names.
fn imports(files: &[(ModPath, String, String)], modules: &BTreeSet<ModPath>) -> Vec<Import> {
    let mut found = Vec::new();
    for (module, file, text) in files {
        // `super` of a `mod.rs` (or of a file module) is the module's parent.
        let parent: ModPath = module[..module.len().saturating_sub(1)].to_vec();
        for (line, code) in code_lines(text) {
            let mut push = |to: ModPath| {
                found.push(Import {
                    from: module.clone(),
                    to,
                    file: file.clone(),
                    line,
                })
            };
            for (i, _) in code.match_indices("crate::") {
                if i > 0 && code[..i].ends_with(|c: char| is_ident(c) || c == ':') {
                    continue;
                }
                let (path, group) = path_at(&code[i + "crate::".len()..]);
                push(resolve(&[], &path, modules));
                if let (true, Some(g)) = (path.is_empty(), group) {
                    let inner = g.split('}').next().unwrap_or("");
                    for item in inner.split(',') {
                        let (p, _) = path_at(item.trim());
                        push(resolve(&[], &p, modules));
                    }
                }
            }
            for (i, _) in code.match_indices("super::") {
                if i > 0 && code[..i].ends_with(|c: char| is_ident(c) || c == ':') {
                    continue;
                }
                let mut base = parent.clone();
                let mut rest = &code[i + "super::".len()..];
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                let (path, _) = path_at(rest);
                push(resolve(&base, &path, modules));
            }
        }
    }
    found
}

/// What is wrong with the imports: a top-level module importing one its row does not
/// allow, or two modules importing each other.
fn violations(files: &[(ModPath, String, String)]) -> Vec<String> {
    let modules: BTreeSet<ModPath> = files
        .iter()
        .flat_map(|(m, _, _)| (1..=m.len()).map(move |n| m[..n].to_vec()))
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut out = Vec::new();
    for top in modules.iter().filter(|m| m.len() == 1) {
        if !allowed.contains_key(top[0].as_str()) {
            out.push(format!("module `{}` has no row in LAYERS", top[0]));
        }
    }
    let found = imports(files, &modules);
    let mut edges: BTreeSet<(ModPath, ModPath)> = BTreeSet::new();
    for imp in &found {
        let (Some(from), Some(to)) = (imp.from.first(), imp.to.first()) else {
            continue;
        };
        if from != to
            && !allowed
                .get(from.as_str())
                .is_some_and(|a| a.contains(&to.as_str()))
        {
            out.push(format!(
                "{}:{}: `{from}` imports `{to}`, which its layer may not use",
                imp.file, imp.line
            ));
        }
        if imp.from != imp.to {
            edges.insert((imp.from.clone(), imp.to.clone()));
        }
    }
    let nested = |a: &ModPath, b: &ModPath| a.starts_with(b) || b.starts_with(a);
    for (a, b) in &edges {
        if a < b && !nested(a, b) && edges.contains(&(b.clone(), a.clone())) {
            out.push(format!(
                "`{}` and `{}` import each other",
                a.join("::"),
                b.join("::")
            ));
        }
    }
    out
}

#[test]
fn the_layer_table_only_points_down() {
    for (i, (name, deps)) in LAYERS.iter().enumerate() {
        for d in *deps {
            let at = LAYERS.iter().position(|(n, _)| n == d);
            assert!(
                at.is_some_and(|j| j < i),
                "LAYERS: `{name}` may import `{d}`, which is not listed above it"
            );
        }
    }
}

#[test]
fn modules_import_only_layers_below_and_never_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_files(&root, &root, &mut files);
    assert!(files.len() > 20, "read {} files from src/", files.len());
    let bad = violations(&files);
    assert!(bad.is_empty(), "architecture:\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_and_a_mutual_pair() {
    let file = |m: &str, text: &str| {
        let path: ModPath = m.split("::").map(str::to_string).collect();
        (path, format!("{m}.rs"), text.to_string())
    };
    let files = vec![
        file("net", "use crate::frontend::Shared;\n"),
        file("frontend", "pub struct Shared;\n"),
        file("frontend::a", "use super::b::X;\npub struct Y;\n"),
        file("frontend::b", "use crate::frontend::a::Y;\npub struct X;\n"),
        file(
            "frontend::c",
            "use super::*;\n#[cfg(test)]\nuse crate::app::App;\n",
        ),
        file("backend", "use crate::{net, topology::Cluster};\n"),
        file("topology", "pub struct Cluster;\n"),
        file("gadgets", "\n"),
    ];
    let bad = violations(&files);
    let has = |s: &str| bad.iter().any(|b| b.contains(s));
    assert!(has("`net` imports `frontend`"), "{bad:?}");
    assert!(has("`backend` imports `topology`"), "{bad:?}");
    assert!(
        has("`frontend::a` and `frontend::b` import each other"),
        "{bad:?}"
    );
    assert!(has("`gadgets` has no row"), "{bad:?}");
    assert!(!has("`backend` imports `net`"), "{bad:?}");
    assert!(!has("app"), "imports in tests are not counted: {bad:?}");
    assert_eq!(bad.len(), 4, "{bad:?}");
}
