//! The crate's maps stay true: the module layering (ARCHITECTURE.md
//! "Layers") has no cycle, every top-level module is named in the `lib.rs`
//! tour and in the layers, every file ARCHITECTURE.md lists as pure does no
//! I/O and holds no lock, and no function outside tests is over 60 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, relative to it.
fn sources() -> Vec<PathBuf> {
    let src = root().join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path.strip_prefix(&src).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// A file's text before its `#[cfg(test)]` module.
fn non_test_code(rel: &Path) -> String {
    let text = std::fs::read_to_string(root().join("src").join(rel)).unwrap();
    text.split("#[cfg(test)]").next().unwrap().to_string()
}

/// The top-level module a file belongs to (`None` for the crate roots).
fn top_level(rel: &Path) -> Option<String> {
    let top = rel.iter().next()?.to_string_lossy();
    let top = top.trim_end_matches(".rs");
    (!matches!(top, "lib" | "main")).then(|| top.to_string())
}

/// The leading identifier of `text`.
fn ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules `code` names through `crate::`, grouped imports
/// (`use crate::{a, b::c}`) included.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for part in code.split("crate::").skip(1) {
        match part.strip_prefix('{') {
            Some(group) => named.extend(group_heads(group)),
            None => {
                named.insert(ident(part));
            }
        }
    }
    named.remove("");
    named
}

/// The first name of each item of a `{...}` group (its text starts after
/// the opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = vec![ident(group)];
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(ident(&group[i + 1..])),
            _ => {}
        }
    }
    heads
}

/// Top-level module → the top-level modules its non-test code names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rel in sources() {
        let Some(top) = top_level(&rel) else { continue };
        let mut named = crate_paths(&non_test_code(&rel));
        named.remove(&top);
        deps.entry(top).or_default().extend(named);
    }
    deps
}

fn reaches(deps: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for next in deps.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

/// The text of ARCHITECTURE.md's section headed `## {title}`.
fn architecture_section(title: &str) -> String {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no '## {title}' section"));
    let rest = &text[start + title.len() + 5..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// The words written between backticks in `text`.
fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let deps = dependencies();
    assert!(deps.len() > 10, "found the modules: {deps:?}");
    let cycles: Vec<String> = deps
        .iter()
        .flat_map(|(m, named)| named.iter().map(move |n| (m, n)))
        .filter(|(m, n)| reaches(&deps, n, m))
        .map(|(m, n)| format!("{m} -> {n} -> ... -> {m}"))
        .collect();
    assert!(cycles.is_empty(), "module cycles: {cycles:#?}");
}

#[test]
fn grouped_imports_count_as_dependencies() {
    let code =
        "use crate::{clock::Clock, config::{self, Config}, secret};\nuse crate::sts;";
    let named: Vec<_> = crate_paths(code).into_iter().collect();
    assert_eq!(named, ["clock", "config", "secret", "sts"]);
}

#[test]
fn every_top_level_module_is_in_the_lib_tour_and_the_layers() {
    let tour: String = std::fs::read_to_string(root().join("src/lib.rs"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let in_tour: BTreeSet<String> = backticked(&tour)
        .into_iter()
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect();
    let in_layers = backticked(&architecture_section("Layers"));
    let modules: BTreeSet<String> =
        sources().iter().filter_map(|r| top_level(r)).collect();
    let missing_tour: Vec<_> = modules.iter().filter(|m| !in_tour.contains(*m)).collect();
    let missing_layers: Vec<_> =
        modules.iter().filter(|m| !in_layers.contains(*m)).collect();
    assert!(
        missing_tour.is_empty() && missing_layers.is_empty(),
        "not in the lib.rs tour: {missing_tour:?}; not in ARCHITECTURE.md's layers: {missing_layers:?}"
    );
}

/// What a pure file must not name: I/O, the runtime, locks. (Value types
/// such as `std::net::SocketAddr` are plain data and allowed.)
const IMPURE: &[&str] = &[
    "tokio",
    "std::fs",
    "std::process",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "UnixStream",
    "Mutex",
    "RwLock",
    "Condvar",
    "CancellationToken",
];

#[test]
fn files_listed_as_pure_do_no_io_and_hold_no_lock() {
    let listed: Vec<String> = backticked(&architecture_section("Where decisions live"))
        .into_iter()
        .filter(|w| w.ends_with(".rs"))
        .collect();
    assert!(listed.len() > 20, "found the pure files: {listed:?}");
    let mut impure = Vec::new();
    for file in &listed {
        let path = root().join("src").join(file);
        assert!(
            path.exists(),
            "ARCHITECTURE.md lists {file}, which does not exist"
        );
        let code = non_test_code(Path::new(file));
        for word in IMPURE.iter().filter(|w| code.contains(**w)) {
            impure.push(format!("{file}: {word}"));
        }
    }
    assert!(
        impure.is_empty(),
        "files listed as pure that are not: {impure:#?}"
    );
}

/// The non-test functions of `code` longer than `limit` lines, as
/// `name (lines)`: from the line declaring it to the line closing its body
/// at the same indentation (rustfmt's layout).
fn long_functions(code: &str, limit: usize) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(name) = function_name(trimmed) else {
            continue;
        };
        let opens_body = lines[i..]
            .iter()
            .map(|l| l.trim_end())
            .find(|l| l.ends_with('{') || l.ends_with(';') || l.ends_with('}'))
            .is_some_and(|l| l.ends_with('{'));
        if !opens_body {
            continue; // a declaration, or a body on one line
        }
        let closing = format!("{}}}", &line[..line.len() - trimmed.len()]);
        let end = lines[i..].iter().position(|l| *l == closing);
        if let Some(end) = end.filter(|end| end + 1 > limit) {
            long.push(format!("{name} ({} lines)", end + 1));
        }
    }
    long
}

/// The name of the function a line declares, if it declares one.
fn function_name(line: &str) -> Option<String> {
    let mut rest = line;
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    rest = rest.strip_prefix("async ").unwrap_or(rest);
    let name = ident(rest.strip_prefix("fn ")?);
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_function_outside_tests_is_over_60_lines() {
    let mut long = Vec::new();
    for rel in sources() {
        for f in long_functions(&non_test_code(&rel), 60) {
            long.push(format!("{}: {f}", rel.display()));
        }
    }
    assert!(long.is_empty(), "functions over 60 lines: {long:#?}");
}

#[test]
fn function_lengths_are_measured_to_their_closing_brace() {
    let body = "    let x = 1;\n".repeat(61);
    let code = format!("pub(crate) async fn big() {{\n{body}}}\n\nfn small() {{\n}}\n");
    assert_eq!(long_functions(&code, 60), ["big (63 lines)"]);
    assert!(long_functions(&code, 63).is_empty());
}
