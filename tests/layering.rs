//! The layering rule of `src/lib.rs`, kept: every `crate::…` path in a module's source
//! (tests included, comments not) must name a module that module may import. A protocol core
//! that reaches up (into `call`, `api`, `store`, `ops` or `config`) fails here, naming the
//! file and line; so does `api` using anything of `call` but the handles `call` defines for
//! it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it may import (besides itself). Mirrors the
/// table in the crate documentation (`src/lib.rs`).
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: usable by everyone, using no one.
    ("logging", &[]),
    ("validation", &[]),
    ("files", &[]),
    // Protocol cores: sans-IO, importing nothing above them and no other core except the
    // ticket domain (categories) that the IVR and the ACD speak of.
    ("tickets", &["logging", "validation"]),
    ("sip", &["logging", "validation"]),
    ("media", &["logging", "validation"]),
    ("ivr", &["logging", "validation", "tickets"]),
    ("acd", &["logging", "validation", "tickets"]),
    // The agents' desk: agent states, desktop event streams, wallboard counters.
    ("desk", &["logging", "validation"]),
    // Adapters: PostgreSQL with its own record types; the configuration file assembling the
    // cores' sections.
    ("store", &["logging", "validation", "files", "tickets"]),
    (
        "config",
        &[
            "logging",
            "validation",
            "files",
            "tickets",
            "sip",
            "media",
            "ivr",
            "acd",
            "desk",
        ],
    ),
    (
        "ops",
        &[
            "logging",
            "validation",
            "files",
            "tickets",
            "media",
            "store",
            "config",
        ],
    ),
    // The call layer wires the cores; the API reaches it through its narrow handles.
    (
        "call",
        &[
            "logging",
            "validation",
            "files",
            "tickets",
            "sip",
            "media",
            "ivr",
            "acd",
            "desk",
            "store",
            "config",
            "ops",
        ],
    ),
    (
        "api",
        &[
            "logging",
            "validation",
            "files",
            "tickets",
            "sip",
            "media",
            "ivr",
            "acd",
            "desk",
            "store",
            "config",
            "ops",
            "call",
        ],
    ),
    // hotlinectl's work: a client of the gRPC API, speaking only its wire types.
    ("ctl", &["api"]),
];

/// The API reaches the call layer only through the handles the call layer defines for it.
const CALL_HANDLES_FOR_API: &[&str] = &[
    "AgentDesk",
    "AgentDeskError",
    "AgentView",
    // The agents' desktops (hotline.v1.AgentDesk) and one stream's subscription.
    "Desktops",
    "Subscription",
    "SurveyRated",
    // The Tickets API tells the agents' desktops of committed changes to a call's ticket.
    "TicketChanges",
    "TransferToSurveyError",
];

/// `code` without comments (line, doc and block comments) and string literals, so that a
/// path in prose or in a message does not count.
fn strip_comments_and_strings(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            // Keep line numbers right.
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            let end = (j + 1).min(rest.len());
            out.push_str("\"\"");
            out.extend(rest[..end].chars().filter(|c| *c == '\n'));
            i += end;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of each item of a `{a::b, c, d::{e, f}}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                heads.push(identifier(&group[i..]).to_owned());
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// Every (line, first segment) of the paths that start with `prefix` (such as `crate::`) in
/// `code`, comments and strings left out; a group `prefix{a::b, c}` names each of its items.
fn paths_after(code: &str, prefix: &str) -> Vec<(usize, String)> {
    let code = strip_comments_and_strings(code);
    let mut found = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = &code[..at];
        if before.ends_with(|c: char| c == '$' || c == ':' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        let line = before.matches('\n').count() + 1;
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            found.extend(group_heads(&group[..end]).into_iter().map(|m| (line, m)));
        } else {
            found.push((line, identifier(rest).to_owned()));
        }
    }
    found
}

/// Every (line, module) named by a `crate::` path in `code`.
fn crate_imports(code: &str) -> Vec<(usize, String)> {
    paths_after(code, "crate::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and binaries).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" | "bin" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// Every import in `src` that the table does not allow, as `file:line: a imports b`.
fn violations(src: &Path) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let Some(module) = top_module(src, &file) else {
            continue;
        };
        let Some(may_import) = allowed.get(module.as_str()) else {
            problems.push(format!(
                "{}: module {module} is not in the layering table; add it to ALLOWED in tests/layering.rs and to the table in src/lib.rs",
                file.display()
            ));
            continue;
        };
        let code = fs::read_to_string(&file).unwrap();
        if module == "api" {
            for (line, item) in paths_after(&code, "crate::call::") {
                if !CALL_HANDLES_FOR_API.contains(&item.as_str()) {
                    problems.push(format!(
                        "{}:{line}: api uses call::{item}; the API reaches the call layer only \
                         through {CALL_HANDLES_FOR_API:?}",
                        file.display()
                    ));
                }
            }
        }
        for (line, imported) in crate_imports(&code) {
            if imported != module && !may_import.contains(&imported.as_str()) {
                problems.push(format!(
                    "{}:{line}: {module} imports {imported}, which is not below it",
                    file.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(
        problems.is_empty(),
        "layering broken (see the table in src/lib.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_sees_plain_grouped_and_nested_paths_but_not_prose() {
    let code = r#"
use crate::ivr::Action;
use crate::{store::Store, call::{a, b}};
// use crate::api::Secret;
let text = "crate::ops::x";
fn f() -> crate::config::Config { todo!() }
"#;
    let found = crate_imports(code);
    let modules: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(modules, ["ivr", "store", "call", "config"]);
    assert_eq!(found[0].0, 2);
    assert_eq!(found[3].0, 6);
    let items: Vec<String> = paths_after(code, "crate::call::")
        .into_iter()
        .map(|(_, item)| item)
        .collect();
    assert!(items.is_empty(), "{items:?}");
    let narrow =
        "use crate::call::{AgentDesk, dispatcher::Work};\nlet x = crate::call::CallStack::new();";
    let items: Vec<String> = paths_after(narrow, "crate::call::")
        .into_iter()
        .map(|(_, item)| item)
        .collect();
    assert_eq!(items, ["AgentDesk", "dispatcher", "CallStack"]);
}
