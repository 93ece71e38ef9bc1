//! The ABI may only grow: every line of the committed `include/pastry.abi` (one normalized
//! declaration of `include/pastry.h` per line: functions with their parameter and return types,
//! struct layouts, enum and macro values) must still be produced from the header. New lines
//! are allowed (and printed); a removed or changed one fails the test.
//!
//! After adding to the API, record the new lines with
//! `PASTRY_UPDATE_ABI=1 cargo test --test abi`. Removing or changing a recorded line is an
//! ABI break: it is accepted only together with a new `PASTRY_ABI_VERSION`.

use std::collections::BTreeSet;

const HEADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/pastry.h");
const ABI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/pastry.abi");

/// Structs that are only ever appended to (the caller passes their size): one line per field,
/// so a new field is a new line. Every other struct is one line: any change is a break.
const GROWABLE: &[&str] = &["pastry_stats"];

/// Macros whose value changes with every release (not part of the ABI).
const VOLATILE: &[&str] = &[
    "PASTRY_VERSION_MAJOR",
    "PASTRY_VERSION_MINOR",
    "PASTRY_VERSION_PATCH",
];

/// The header without comments, with whitespace collapsed to single spaces per line.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find("*/") {
            Some(j) => &rest[i + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn squash(s: &str) -> String {
    let s = s
        .replace('*', " * ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let s = s
        .replace(',', " , ")
        .replace('[', " [ ")
        .replace(']', " ] ");
    let words: Vec<&str> = s.split_whitespace().filter(|w| *w != "struct").collect();
    words
        .join(" ")
        .replace(" * ", "*")
        .replace("* ", "*")
        .replace(" *", "*")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(" [ ", "[")
        .replace(" ]", "]")
}

/// A parameter's type without its name (`const pastry_id *key` → `const pastry_id*`).
fn param_type(p: &str) -> String {
    let p = squash(p);
    if p == "void" {
        return String::new();
    }
    if let Some(open) = p.find("(*") {
        // A function pointer: drop the name inside `(*name)`.
        let close = p[open..].find(')').map_or(p.len(), |c| open + c);
        return format!("{}(*){}", &p[..open], &p[close + 1..]).replace(" (*)", "(*)");
    }
    match p.rfind([' ', '*']) {
        Some(i) => p[..=i].trim_end().to_string(),
        None => p,
    }
}

/// Splits at top-level commas.
fn split_params(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every normalized declaration of the header.
fn abi_lines(header: &str) -> (u32, BTreeSet<String>) {
    let text = strip_comments(header);
    let mut lines = BTreeSet::new();
    let mut abi_version = 0;
    let mut code = String::new();
    for l in text.lines() {
        let t = l.trim();
        if let Some(def) = t.strip_prefix("#define ") {
            let mut it = def.split_whitespace();
            if let (Some(name), Some(value)) = (it.next(), it.next()) {
                if name == "PASTRY_ABI_VERSION" {
                    abi_version = value.parse().expect("PASTRY_ABI_VERSION is a number");
                }
                if name.starts_with("PASTRY_") && !VOLATILE.contains(&name) {
                    lines.insert(format!("const {name} = {value}"));
                }
            }
        } else if !t.starts_with('#') && !t.starts_with("extern \"C\"") && t != "}" {
            code.push_str(t);
            code.push(' ');
        }
    }
    // `extern "C" {` … `}` braces were dropped above; what is left is a list of
    // declarations ending in `;` (enum and struct bodies contain no `;` at top level except
    // the struct fields, handled by brace depth).
    let mut depth = 0;
    let mut decl = String::new();
    for c in code.chars() {
        decl.push(c);
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                declaration(decl.trim(), &mut lines);
                decl.clear();
            }
            _ => {}
        }
    }
    (abi_version, lines)
}

fn declaration(d: &str, out: &mut BTreeSet<String>) {
    let d = d.trim_end_matches(';').trim();
    if let Some(rest) = d.strip_prefix("enum ") {
        let name = rest.split_whitespace().next().unwrap_or("");
        let body = &rest[rest.find('{').unwrap_or(0) + 1..rest.rfind('}').unwrap_or(rest.len())];
        let ty = if rest[..rest.find('{').unwrap_or(0)].contains("uint32_t") {
            "uint32_t"
        } else {
            "?"
        };
        for v in body.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            out.insert(format!("enum {name} : {ty} {{ {} }}", squash(v)));
        }
    } else if let Some(rest) = d.strip_prefix("typedef struct ") {
        let Some(open) = rest.find('{') else {
            out.insert(format!(
                "opaque {}",
                squash(rest).split(' ').next().unwrap_or("")
            ));
            return;
        };
        let name = rest[..open].trim();
        let body = &rest[open + 1..rest.rfind('}').unwrap_or(rest.len())];
        let fields: Vec<String> = body
            .split(';')
            .map(squash)
            .filter(|f| !f.is_empty())
            .collect();
        if GROWABLE.contains(&name) {
            for (i, f) in fields.iter().enumerate() {
                out.insert(format!("struct {name} field {i:02}: {f}"));
            }
        } else {
            out.insert(format!("struct {name} {{ {}; }}", fields.join("; ")));
        }
    } else if d.starts_with("typedef ") {
        out.insert(squash(d));
    } else if let Some(open) = d.find('(') {
        let head = squash(&d[..open]);
        let (ret, name) = match head.rfind([' ', '*']) {
            Some(i) => (head[..=i].trim_end().to_string(), head[i + 1..].to_string()),
            None => (String::new(), head.clone()),
        };
        let params = &d[open + 1..d.rfind(')').unwrap_or(d.len())];
        let types: Vec<String> = split_params(params).into_iter().map(param_type).collect();
        let types: Vec<String> = types.into_iter().filter(|t| !t.is_empty()).collect();
        out.insert(format!("fn {name}({}) -> {ret}", types.join(", ")));
    } else if !d.is_empty() {
        out.insert(format!("other {}", squash(d)));
    }
}

fn read_committed() -> (u32, Vec<String>) {
    let text = std::fs::read_to_string(ABI).unwrap_or_default();
    let mut version = 0;
    let mut lines = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with("//") {
            continue;
        }
        if let Some(v) = l.strip_prefix("abi_version ") {
            version = v.parse().expect("abi_version is a number");
        } else {
            lines.push(l.to_string());
        }
    }
    (version, lines)
}

fn write_abi(version: u32, lines: &BTreeSet<String>) {
    let mut s = String::from(
        "// The C ABI of include/pastry.h, one normalized declaration per line (see tests/abi.rs).\n\
         // Lines may be added, never removed or changed within one abi_version.\n",
    );
    s.push_str(&format!("abi_version {version}\n"));
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    std::fs::write(ABI, s).expect("include/pastry.abi can be written");
}

#[test]
fn the_abi_only_grows() {
    let header = std::fs::read_to_string(HEADER).expect("include/pastry.h exists");
    let (header_version, now) = abi_lines(&header);
    let (committed_version, committed) = read_committed();
    let missing: Vec<&String> = committed.iter().filter(|l| !now.contains(*l)).collect();
    let added: Vec<&String> = now.iter().filter(|l| !committed.contains(*l)).collect();
    for l in &added {
        println!("new ABI line: {l}");
    }
    let update = std::env::var_os("PASTRY_UPDATE_ABI").is_some_and(|v| v == "1");
    let version_bumped = header_version > committed_version;
    if !missing.is_empty() && !version_bumped {
        let list: Vec<String> = missing.iter().map(|l| format!("  {l}")).collect();
        panic!(
            "ABI break: these declarations of include/pastry.abi are gone or changed in \
             include/pastry.h:\n{}\n\nKeep them (add new functions instead of changing old \
             ones). If the break is intended, raise PASTRY_ABI_VERSION in src/ffi/version.rs, \
             regenerate the header and run `PASTRY_UPDATE_ABI=1 cargo test --test abi`.",
            list.join("\n")
        );
    }
    if update {
        write_abi(header_version, &now);
        println!("wrote {ABI}: {} lines", now.len());
        return;
    }
    assert!(
        !version_bumped,
        "PASTRY_ABI_VERSION is now {header_version} (was {committed_version}): record the new ABI \
         with `PASTRY_UPDATE_ABI=1 cargo test --test abi`"
    );
    if !added.is_empty() {
        println!(
            "{} new ABI lines: record them with `PASTRY_UPDATE_ABI=1 cargo test --test abi`",
            added.len()
        );
    }
}

#[test]
fn normalization_drops_names_and_spacing() {
    let h = "#define PASTRY_ABI_VERSION 1\n\
             /** doc */\n\
             pastry_result pastry_f(const struct pastry_id *key,\n    size_t   len);\n\
             typedef struct pastry_x pastry_x;\n\
             typedef struct pastry_cb { void (*drop)(void *userdata); uint8_t b[16]; } pastry_cb;\n";
    let (v, lines) = abi_lines(h);
    assert_eq!(v, 1);
    assert!(
        lines.contains("fn pastry_f(const pastry_id*, size_t) -> pastry_result"),
        "{lines:?}"
    );
    assert!(lines.contains("opaque pastry_x"), "{lines:?}");
    assert!(
        lines.contains("struct pastry_cb { void (*drop) (void*userdata); uint8_t b[16]; }"),
        "{lines:?}"
    );
    assert!(lines.contains("const PASTRY_ABI_VERSION = 1"));
}
