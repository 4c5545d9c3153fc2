//! The service crate's layers (ARCHITECTURE.md, "Layers"), checked on the source: every
//! `crate::…` and `super::…` path of every module file under `src/` is read, and the check
//! fails when a module imports from a layer above its own, when two modules import each other
//! (top-level modules, or two files under one module that are not parent and child), or when a
//! module is in no layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. A module may import from its own layer (without a cycle) and from those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("engine", &["compress", "tokens"]),
    ("domain", &["keys", "policy", "quota", "clock", "api"]),
    ("config", &["config"]),
    ("store", &["store"]),
    ("admission and usage", &["limits", "usage", "alerts"]),
    ("surfaces", &["http", "admin", "local", "bench"]),
];

/// A module's path from the crate root (`["http", "error"]`) for a file under `src/`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without its comments (`//` to the end of the line; doc comments name
/// paths in backticks that are no imports).
fn without_comments(source: &str) -> String {
    source.lines().map(|line| line.split_once("//").map_or(line, |(code, _)| code)).collect::<Vec<_>>().join("\n")
}

/// Every module path `source` names through `crate::` or `super::` (made absolute from
/// `module`, the path of the file's own module), `{…}` groups expanded, item names included.
pub fn paths_named(source: &str, module: &[String]) -> Vec<Vec<String>> {
    let code = without_comments(source);
    let bytes = code.as_bytes();
    let inline = inline_modules(&code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        let rest = &bytes[i..];
        let root: Option<Vec<String>> = if !at_word_start {
            None
        } else if rest.starts_with(b"crate::") {
            Some(Vec::new())
        } else if rest.starts_with(b"super::") {
            // Inside an inline `mod tests { … }`, `super` is the file's own module.
            let mut base = module.to_vec();
            base.extend(inline.iter().filter(|(from, to, _)| (*from..*to).contains(&i)).map(|(_, _, n)| n.clone()));
            Some(base)
        } else {
            None
        };
        let Some(mut base) = root else {
            i += 1;
            continue;
        };
        // `super::super::x`: climb one module per `super`.
        let mut j = i;
        if rest.starts_with(b"crate::") {
            j += "crate::".len();
        } else {
            while bytes[j..].starts_with(b"super::") {
                base.pop();
                j += "super::".len();
            }
        }
        let end = tree_end(&code, j);
        expand(&code[j..end], &base, &mut found);
        i = end.max(i + 1);
    }
    found
}

/// The inline modules of a file (`mod tests { … }`): where each body starts and ends, its name.
fn inline_modules(code: &str) -> Vec<(usize, usize, String)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("mod ").map(|k| k + from) {
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let name: String = code[from..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let after = code[from + name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = code.len() - after.len();
        let mut depth = 0usize;
        let close = (open..bytes.len())
            .find(|&k| {
                match bytes[k] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .unwrap_or(bytes.len());
        found.push((open, close, name));
    }
    found
}

/// Where the path tree starting at `start` ends: after its last segment or its closing brace.
fn tree_end(code: &str, start: usize) -> usize {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'{' => depth += 1,
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':' => {}
            b' ' | b'\n' | b',' | b'\t' | b'\r' if depth > 0 => {}
            _ if depth > 0 => {}
            _ => return k,
        }
        k += 1;
    }
    k
}

/// Adds the paths of a tree like `a::{b, c::{d, e}}` under `base`.
fn expand(tree: &str, base: &[String], found: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_end_matches("::");
    let (head, group) = match tree.find('{') {
        Some(open) => (&tree[..open], Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())])),
        None => (tree, None),
    };
    let mut path = base.to_vec();
    path.extend(head.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self").map(String::from));
    match group {
        None => found.push(path),
        Some(group) => {
            for item in split_top_level(group) {
                let item = item.trim();
                let item = item.split(" as ").next().unwrap_or(item).trim();
                if item.is_empty() || item == "self" {
                    found.push(path.clone());
                } else {
                    expand(item, &path, found);
                }
            }
        }
    }
}

fn split_top_level(group: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0, 0);
    for (k, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[from..k]);
                from = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[from..]);
    parts
}

/// What breaks the layers among `files` (each a module path and its source); empty when none.
pub fn violations(files: &[(Vec<String>, String)]) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(n, (_, modules))| modules.iter().map(move |m| (*m, n))).collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut problems = BTreeSet::new();
    let mut edges: BTreeSet<(Vec<String>, Vec<String>)> = BTreeSet::new();
    for (module, source) in files {
        let Some(top) = module.first() else { continue };
        let Some(&own_layer) = layer_of.get(top.as_str()) else {
            problems.insert(format!("module `{top}` is in no layer; add it to LAYERS and ARCHITECTURE.md"));
            continue;
        };
        for path in paths_named(source, module) {
            let Some(target_top) = path.first() else { continue };
            // The longest prefix of the path that is a module file (the rest are items).
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_else(|| vec![target_top.clone()]);
            if target_top != top {
                match layer_of.get(target_top.as_str()) {
                    Some(&layer) if layer > own_layer => {
                        problems.insert(format!(
                            "`{}` ({}) imports `{}` from a layer above ({})",
                            module.join("::"),
                            LAYERS[own_layer].0,
                            path.join("::"),
                            LAYERS[layer].0
                        ));
                    }
                    Some(_) => {}
                    None => {
                        problems.insert(format!("`{}` names `{target_top}`, which is in no layer", module.join("::")));
                    }
                }
                edges.insert((vec![top.clone()], vec![target_top.clone()]));
            } else if target != *module && !target.starts_with(module) && !module.starts_with(&target) {
                edges.insert((module.clone(), target));
            }
        }
    }
    for (from, to) in &edges {
        if from < to && edges.contains(&(to.clone(), from.clone())) {
            problems.insert(format!("`{}` and `{}` import each other", from.join("::"), to.join("::")));
        }
    }
    problems.into_iter().collect()
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(Vec<String>, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap();
            // The crate root and the binary hold no module of their own.
            if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
                continue;
            }
            out.push((module_of(relative), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn every_module_imports_only_from_its_layer_or_below_and_no_two_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&root, &root, &mut files);
    assert!(files.len() > 20, "read {} files under {}", files.len(), root.display());
    let problems = violations(&files);
    assert!(problems.is_empty(), "the layers are broken:\n  {}", problems.join("\n  "));
}

fn file(path: &str, source: &str) -> (Vec<String>, String) {
    (module_of(Path::new(path)), source.to_string())
}

#[test]
fn the_reader_finds_crate_and_super_paths_in_groups_and_ignores_comments() {
    let source = "use crate::{keys::{self, Tier}, store::Store as S};\n\
                  use super::super::AppState; // crate::admin is only a comment\n\
                  fn f() { crate::quota::period_of(now); let x = my_crate::y; }\n\
                  mod tests { use super::Admissible; }";
    let found = paths_named(source, &["http".to_string(), "limits".to_string()]);
    let shown: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        ["keys", "keys::Tier", "store::Store", "AppState", "quota::period_of", "http::limits::Admissible"]
    );
}

#[test]
fn a_planted_import_from_a_layer_above_is_caught() {
    let clean = [file("store/mod.rs", "use crate::keys::KeyHash;"), file("keys/mod.rs", "use std::fmt;")];
    assert_eq!(violations(&clean), Vec::<String>::new());
    let upward = [file("store/mod.rs", "use crate::{keys::KeyHash, limits::KeySnapshot};"), file("limits/mod.rs", "")];
    let found = violations(&upward);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`store` (store) imports `limits::KeySnapshot` from a layer above"), "{found:?}");
}

#[test]
fn a_planted_pair_of_modules_importing_each_other_is_caught() {
    // Two top-level modules of one layer.
    let pair = [file("keys/mod.rs", "use crate::policy::LimitOverride;"), file("policy.rs", "use crate::keys::Tier;")];
    assert_eq!(violations(&pair), ["`keys` and `policy` import each other"]);
    // Two files of one module, through `super::`; a parent and its child may.
    let siblings = [
        file("http/mod.rs", "mod error; mod limits; use error::ApiError;"),
        file("http/error.rs", "use super::limits::rate_headers; use super::AppState;"),
        file("http/limits.rs", "use super::error::ApiError;"),
    ];
    assert_eq!(violations(&siblings), ["`http::error` and `http::limits` import each other"]);
    let unknown = [file("gadgets.rs", "")];
    assert!(violations(&unknown)[0].contains("`gadgets` is in no layer"));
}
