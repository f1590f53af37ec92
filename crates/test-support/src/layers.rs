//! A crate's modules are layers: each uses only modules of its own layer or the layers below
//! it, and no two modules use each other, directly or through others. Read from the sources'
//! `crate::` and `super::` paths, so a new import that breaks either rule fails the crate's
//! `tests/layers.rs`, which calls [`check`] with its own table of layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What is wrong with the modules under `src` against `layers` (top-level module, layer; lowest
/// layer 1): a module in no layer, one using a module of a higher layer, and a cycle.
pub fn check(src: &Path, layers: &[(&str, u8)]) -> Vec<String> {
    let uses = uses_in(src);
    let mut problems = layer_violations(layers, &uses);
    if uses.is_empty() {
        problems.push(format!("no module read under {}", src.display()));
    }
    if let Some(cycle) = cycle(&uses) {
        problems.push(format!("cycle: {}", cycle.join(" -> ")));
    }
    problems
}

/// Module path (`s3::listing`) to the module paths its code names.
pub type Uses = BTreeMap<String, BTreeSet<String>>;

/// Every module under `src` (but the crate roots: `lib.rs` only declares and re-exports, and a
/// `main.rs` is a binary of its own) and
/// the modules it names.
pub fn uses_in(src: &Path) -> Uses {
    let mut sources = BTreeMap::new();
    collect_sources(src, src, &mut sources);
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, source)| (module.clone(), named_modules(module, source, &modules)))
        .collect()
}

fn collect_sources(root: &Path, dir: &Path, sources: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_sources(root, &path, sources);
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") || path == root.join("lib.rs") || path == root.join("main.rs")
        {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under src").with_extension("");
        let mut segments: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if segments.last().is_some_and(|last| last == "mod") {
            segments.pop();
        }
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        sources.insert(segments.join("::"), source);
    }
}

/// The modules `source` (module `module`) names through `crate::` or `super::` paths, outside
/// comments and its `#[cfg(test)]` part, each resolved to the longest module in `modules`.
pub fn named_modules(module: &str, source: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = source
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let mut paths = Vec::new();
    for (anchor, base) in [("crate::", ""), ("super::", parent)] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(anchor) {
            let preceded_by_ident = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[at + anchor.len()..];
            if !preceded_by_ident {
                expand_path(base, rest, &mut paths);
            }
        }
    }
    paths
        .into_iter()
        .filter_map(|path| longest_module(&path, modules))
        .filter(|named| named != module)
        .collect()
}

/// The paths `a::b::{c, d::e}` (or `{a, b::c}`) stands for, each prefixed with `base`.
fn expand_path(base: &str, text: &str, out: &mut Vec<String>) {
    let ident_len = |s: &str| s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    let mut path = base.to_owned();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            for item in split_group(group) {
                expand_path(&path, item.trim(), out);
            }
            return;
        }
        let len = ident_len(rest);
        if len == 0 {
            break;
        }
        if !path.is_empty() {
            path.push_str("::");
        }
        path.push_str(&rest[..len]);
        match rest[len..].strip_prefix("::") {
            Some(after) => rest = after.trim_start(),
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The top-level items of a `{…}` group, up to its closing brace.
fn split_group(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}

fn longest_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

fn layer_of(layers: &[(&str, u8)], module: &str) -> Option<u8> {
    let top = module.split("::").next().unwrap_or_default();
    layers.iter().find(|(name, _)| *name == top).map(|(_, layer)| *layer)
}

pub fn layer_violations(layers: &[(&str, u8)], uses: &Uses) -> Vec<String> {
    let mut violations = Vec::new();
    for (module, named) in uses {
        let Some(layer) = layer_of(layers, module) else {
            violations.push(format!("{module} is in no layer: add it to LAYERS"));
            continue;
        };
        for other in named {
            match layer_of(layers, other) {
                Some(theirs) if theirs > layer => {
                    violations.push(format!("{module} (layer {layer}) uses {other} (layer {theirs})"))
                }
                _ => {}
            }
        }
    }
    violations
}

/// A module path that leads back to where it started, if there is one.
pub fn cycle(uses: &Uses) -> Option<Vec<String>> {
    fn visit(module: &str, uses: &Uses, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut found = path[at..].to_vec();
            found.push(module.to_owned());
            return Some(found);
        }
        if !done.insert(module.to_owned()) {
            return None;
        }
        path.push(module.to_owned());
        for next in uses.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, uses, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    uses.keys()
        .find_map(|module| visit(module, uses, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYERS: [(&str, u8); 4] = [("model", 1), ("s3", 2), ("report", 4), ("audit", 4)];

    #[test]
    fn the_checks_catch_an_upward_import_and_a_cycle() {
        let modules = [
            ("model", "use crate::report::AuditReport;\n"),
            (
                "report",
                "use crate::model::Target;\n// use crate::audit; is only a comment\n",
            ),
            (
                "s3::listing",
                "use crate::{model::{Resume, Target}, s3::error::ListError};\n",
            ),
            (
                "s3::error",
                "use super::listing::KeyPages;\n#[cfg(test)]\nmod tests { use crate::audit; }\n",
            ),
        ];
        let uses: Uses = modules
            .iter()
            .map(|(module, source)| (module.to_string(), named_modules(module, source, &known(&modules))))
            .collect();
        assert_eq!(uses["s3::listing"], set(&["model", "s3::error"]));
        assert_eq!(
            uses["s3::error"],
            set(&["s3::listing"]),
            "tests and comments are not imports"
        );
        assert_eq!(
            layer_violations(&LAYERS, &uses),
            ["model (layer 1) uses report (layer 4)".to_owned()]
        );
        let found = cycle(&uses).expect("two cycles");
        assert!(
            found == ["model", "report", "model"] || found == ["s3::error", "s3::listing", "s3::error"],
            "{found:?}"
        );
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn known(modules: &[(&str, &str)]) -> BTreeSet<String> {
        modules.iter().map(|(module, _)| module.to_string()).collect()
    }
}
