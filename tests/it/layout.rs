//! The house rules the compiler does not keep: no module imports one that imports it back (not
//! even inside a folder), and no function of the command line is over 100 lines.
//!
//! Cargo already refuses a circle between crates; inside a crate Rust allows any. These tests read
//! every crate's `src/` as text: a small lexer (comments, strings, char literals and lifetimes
//! skipped), the `mod` declarations that map files to module paths, every `use` tree and every
//! path that starts with `crate::`, `super::`, `self::` or a child module's name. A name is
//! followed to the file that defines it, through the `use` lines of the file that hands it on
//! (`super::Shared` where `mod.rs` only re-exports it counts as the file that defines `Shared`).
//! A module's own file naming its children (`mod x;`, `pub use x::Y;`, calling `x::run`) is how a
//! folder is assembled, not an import back: the edges from a module's file down to its own
//! descendants are left out, everything else counts, test modules included.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate's `src/` in the workspace: the binary's and each of `crates/*`.
fn crate_sources() -> Vec<PathBuf> {
    let mut sources = vec![root().join("src")];
    let mut members: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("entry").path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    members.sort();
    sources.extend(members);
    sources
}

// ---------------------------------------------------------------------------------------------
// Lexing: just enough of Rust to find names, paths, braces and item keywords.

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Lexed {
    token: Token,
    line: usize,
}

fn lex(text: &str) -> Vec<Lexed> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let ident_start = |c: char| c.is_alphabetic() || c == '_';
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            _ if c.is_whitespace() => i += 1,
            '/' if next == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&chars, i + 1, &mut line),
            'r' | 'b' | 'c' if raw_or_prefixed_string(&chars, i).is_some() => {
                let (start, hashes) = raw_or_prefixed_string(&chars, i).expect("checked");
                i = match hashes {
                    Some(hashes) => skip_raw_string(&chars, start, hashes, &mut line),
                    None => skip_string(&chars, start, &mut line),
                };
            }
            '\'' => {
                // A char literal ('x', '\n', '\u{1F600}') or a lifetime / label ('a).
                if next == '\\' {
                    i += 3;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                    while i < chars.len() && ident_char(chars[i]) {
                        i += 1;
                    }
                }
            }
            _ if c.is_ascii_digit() => {
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
            }
            _ if ident_start(c) => {
                if c == 'r' && next == '#' && chars.get(i + 2).is_some_and(|&c| ident_start(c)) {
                    i += 2;
                }
                let begin = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[begin..i].iter().collect();
                out.push(Lexed {
                    token: Token::Ident(name),
                    line,
                });
            }
            ':' if next == ':' => {
                out.push(Lexed {
                    token: Token::PathSep,
                    line,
                });
                i += 2;
            }
            _ => {
                out.push(Lexed {
                    token: Token::Punct(c),
                    line,
                });
                i += 1;
            }
        }
    }
    out
}

/// Where a string starting at `i` with a prefix (`r"`, `r#"`, `b"`, `br#"`, `c"`) has its first
/// content character, and its number of `#`s when raw.
fn raw_or_prefixed_string(chars: &[char], i: usize) -> Option<(usize, Option<usize>)> {
    let mut j = i;
    if matches!(chars[j], 'b' | 'c') {
        j += 1;
    }
    let raw = chars.get(j) == Some(&'r');
    if raw {
        j += 1;
    }
    if j == i {
        return None;
    }
    let mut hashes = 0;
    while raw && chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((j + 1, raw.then_some(hashes)))
}

fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

fn skip_raw_string(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        *line += usize::from(chars[i] == '\n');
        i += 1;
    }
    i
}

// ---------------------------------------------------------------------------------------------
// One crate's files, their module paths, what they define and what they name.

/// A path a file names, from the module scope it is written in.
#[derive(Clone, Debug)]
struct Named {
    /// The module path of the scope (the file's, or an inline module's inside it).
    scope: Vec<String>,
    segments: Vec<String>,
}

#[derive(Debug, Default)]
struct SourceFile {
    /// `mod x;` children (files of their own).
    children: BTreeSet<String>,
    /// Names of items defined at the file's top level.
    defined: BTreeSet<String>,
    /// Top-level `use` imports: the name they bring in, and the path it comes from.
    imported: HashMap<String, Vec<String>>,
    /// Every path the file names.
    named: Vec<Named>,
}

const ITEM_KEYWORDS: [&str; 8] = [
    "fn", "struct", "enum", "type", "trait", "const", "static", "union",
];

fn parse_file(module: Vec<String>, text: &str) -> SourceFile {
    let tokens = lex(text);
    let mut file = SourceFile::default();
    // Inline modules open: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_inline: Option<String> = None;
    let ident = |k: usize| match tokens.get(k).map(|t| &t.token) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    let punct = |k: usize, c: char| tokens.get(k).map(|t| &t.token) == Some(&Token::Punct(c));
    let mut k = 0;
    while k < tokens.len() {
        let scope: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _)| name.clone()))
            .collect();
        let top = inline.is_empty() && depth == 0;
        match &tokens[k].token {
            Token::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_inline.take() {
                    inline.push((name, depth));
                }
                k += 1;
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                k += 1;
            }
            Token::Ident(word) if word == "mod" && ident(k + 1).is_some() => {
                let name = ident(k + 1).expect("checked").to_owned();
                if punct(k + 2, ';') {
                    if inline.is_empty() {
                        file.children.insert(name.clone());
                    }
                } else {
                    pending_inline = Some(name.clone());
                }
                if top {
                    file.defined.insert(name);
                }
                k += 2;
            }
            Token::Ident(word) if word == "use" => {
                let (paths, end) = use_tree(&tokens, k + 1);
                for (segments, alias) in paths {
                    if top && alias != "*" && alias != "_" {
                        file.imported.insert(alias, segments.clone());
                    }
                    file.named.push(Named {
                        scope: scope.clone(),
                        segments,
                    });
                }
                k = end;
            }
            Token::Ident(word) if word == "macro_rules" && punct(k + 1, '!') => {
                if let (true, Some(name)) = (top, ident(k + 2)) {
                    file.defined.insert(name.to_owned());
                }
                k += 3;
            }
            Token::Ident(word) if ITEM_KEYWORDS.contains(&word.as_str()) => {
                if let (true, Some(name)) = (top, ident(k + 1))
                    && !matches!(name, "fn" | "unsafe" | "async" | "extern")
                {
                    file.defined.insert(name.to_owned());
                }
                k += 1;
            }
            Token::Ident(word)
                if tokens.get(k + 1).map(|t| &t.token) == Some(&Token::PathSep)
                    && (k == 0 || tokens[k - 1].token != Token::PathSep)
                    && (matches!(word.as_str(), "crate" | "super" | "self")
                        || (inline.is_empty() && file.children.contains(word))) =>
            {
                let mut segments = vec![word.clone()];
                let mut j = k + 1;
                while tokens.get(j).map(|t| &t.token) == Some(&Token::PathSep) {
                    match ident(j + 1) {
                        Some(next) => segments.push(next.to_owned()),
                        None => break,
                    }
                    j += 2;
                }
                file.named.push(Named { scope, segments });
                k = j;
            }
            _ => k += 1,
        }
    }
    file
}

/// The paths of one `use` tree starting at `k` (after `use`), each with the name it brings in
/// (`*` for a glob), and the index after its `;`.
fn use_tree(tokens: &[Lexed], k: usize) -> (Vec<(Vec<String>, String)>, usize) {
    let mut out = Vec::new();
    let end = tree(tokens, k, &mut Vec::new(), &mut out);
    let mut end = end;
    while end < tokens.len() && tokens[end].token != Token::Punct(';') {
        end += 1;
    }
    (out, end + 1)
}

fn tree(
    tokens: &[Lexed],
    mut k: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) -> usize {
    let depth_in = prefix.len();
    if tokens.get(k).map(|t| &t.token) == Some(&Token::PathSep) {
        k += 1; // `use ::std::...`
    }
    loop {
        match tokens.get(k).map(|t| &t.token) {
            Some(Token::Ident(name)) => {
                let name = name.clone();
                k += 1;
                if tokens.get(k).map(|t| &t.token) == Some(&Token::PathSep) {
                    prefix.push(name);
                    k += 1;
                    continue;
                }
                let mut alias = name.clone();
                if matches!(tokens.get(k).map(|t| &t.token), Some(Token::Ident(w)) if w == "as") {
                    if let Some(Token::Ident(a)) = tokens.get(k + 1).map(|t| &t.token) {
                        alias = a.clone();
                    }
                    k += 2;
                }
                if name == "self" {
                    let module = prefix.last().cloned().unwrap_or_default();
                    out.push((prefix.clone(), if alias == "self" { module } else { alias }));
                } else {
                    let mut path = prefix.clone();
                    path.push(name);
                    out.push((path, alias));
                }
            }
            Some(Token::Punct('*')) => {
                out.push((prefix.clone(), "*".to_owned()));
                k += 1;
            }
            Some(Token::Punct('{')) => {
                k += 1;
                loop {
                    match tokens.get(k).map(|t| &t.token) {
                        Some(Token::Punct('}')) => {
                            k += 1;
                            break;
                        }
                        Some(Token::Punct(',')) => k += 1,
                        None => break,
                        _ => k = tree(tokens, k, prefix, out),
                    }
                }
            }
            _ => {}
        }
        prefix.truncate(depth_in);
        return k;
    }
}

/// Every `.rs` file under `src`, by module path.
fn read_crate(src: &Path) -> BTreeMap<Vec<String>, (PathBuf, SourceFile)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            // A crate with both lib.rs and main.rs: main.rs is another crate's root; its own
            // imports go through the library's name, so it names nothing here.
            if relative == Path::new("main.rs") && src.join("lib.rs").exists() {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let file = parse_file(module.clone(), &text);
            files.insert(module, (relative.to_path_buf(), file));
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// Resolving names to files, and the circles.

struct Crate {
    files: BTreeMap<Vec<String>, (PathBuf, SourceFile)>,
}

impl Crate {
    /// The file of `module`, or of the nearest enclosing module that is a file.
    fn file_of(&self, module: &[String]) -> Option<Vec<String>> {
        (0..=module.len())
            .rev()
            .map(|n| module[..n].to_vec())
            .find(|prefix| self.files.contains_key(prefix))
    }

    /// The file that `segments`, named from `scope` (a module path), comes from: `None` for
    /// another crate's names.
    fn resolve(&self, scope: &[String], segments: &[String], hops: usize) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => scope.to_vec(),
            "super" => {
                let mut base = scope.to_vec();
                base.pop();
                base
            }
            child => {
                let file = self.file_of(scope)?;
                if file != scope || !self.files[&file].1.children.contains(child) {
                    return None;
                }
                let mut base = scope.to_vec();
                base.push(child.to_owned());
                base
            }
        };
        let mut rest = rest;
        while first == "super" && rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        self.follow(base, rest, hops)
    }

    /// From module `base`, follow `rest` to the file defining its first name.
    fn follow(
        &self,
        mut base: Vec<String>,
        mut rest: &[String],
        hops: usize,
    ) -> Option<Vec<String>> {
        loop {
            let file = self.file_of(&base)?;
            if file != base {
                return Some(file); // an inline module: the file holding it
            }
            let source = &self.files[&file].1;
            let Some((name, tail)) = rest.split_first() else {
                return Some(file);
            };
            if source.children.contains(name) {
                base.push(name.clone());
                rest = tail;
                continue;
            }
            if !source.defined.contains(name)
                && hops < 8
                && let Some(path) = source.imported.get(name)
            {
                let mut path = path.clone();
                path.extend(tail.iter().cloned());
                return self.resolve(&file, &path, hops + 1).or(Some(file.clone()));
            }
            return Some(file);
        }
    }

    /// Every edge `from -> to` between files, with the names that make it.
    fn edges(&self) -> BTreeMap<(Vec<String>, Vec<String>), BTreeSet<String>> {
        let mut edges: BTreeMap<(Vec<String>, Vec<String>), BTreeSet<String>> = BTreeMap::new();
        for (module, (_, file)) in &self.files {
            for named in &file.named {
                let Some(to) = self.resolve(&named.scope, &named.segments, 0) else {
                    continue;
                };
                // A module's file naming its own descendants assembles its folder.
                if to.starts_with(module) {
                    continue;
                }
                let name = named.segments.last().cloned().unwrap_or_default();
                edges.entry((module.clone(), to)).or_default().insert(name);
            }
        }
        edges
    }
}

/// Strongly connected components of more than one file (Tarjan).
fn circles(
    nodes: &[Vec<String>],
    edges: &BTreeSet<(Vec<String>, Vec<String>)>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        index: HashMap<&'a Vec<String>, usize>,
        low: HashMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(
        node: &'a Vec<String>,
        succ: &HashMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        s: &mut State<'a>,
    ) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        for &next in succ.get(node).into_iter().flatten() {
            if !s.index.contains_key(next) {
                visit(next, succ, s);
                let low = s.low[next].min(s.low[node]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.index[next].min(s.low[node]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top.clone());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut succ: HashMap<&Vec<String>, Vec<&Vec<String>>> = HashMap::new();
    for (from, to) in edges {
        succ.entry(from).or_default().push(to);
    }
    let mut state = State {
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(node, &succ, &mut state);
        }
    }
    state.out
}

/// Every import circle of every crate, described file -> file with the names that tie them.
fn import_circles() -> Vec<String> {
    let mut found = Vec::new();
    for src in crate_sources() {
        let krate = Crate {
            files: read_crate(&src),
        };
        let edges = krate.edges();
        let nodes: Vec<Vec<String>> = krate.files.keys().cloned().collect();
        let pairs: BTreeSet<(Vec<String>, Vec<String>)> = edges.keys().cloned().collect();
        for circle in circles(&nodes, &pairs) {
            let path = |module: &Vec<String>| {
                src.join(&krate.files[module].0)
                    .strip_prefix(root())
                    .expect("under the root")
                    .display()
                    .to_string()
            };
            let mut text = format!(
                "circle of {} files: {}",
                circle.len(),
                circle.iter().map(path).collect::<Vec<_>>().join(", ")
            );
            for ((from, to), names) in &edges {
                if circle.contains(from) && circle.contains(to) {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    text.push_str(&format!(
                        "\n  {} -> {}: {}",
                        path(from),
                        path(to),
                        names.join(", ")
                    ));
                }
            }
            found.push(text);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let circles = import_circles();
    assert!(circles.is_empty(), "{}", circles.join("\n"));
}

/// The checker itself: it finds a circle through `use super::`, one through an inline
/// `crate::` path, and follows a re-export to the file that defines the name.
#[test]
fn the_circle_check_sees_circles() {
    let mut files = BTreeMap::new();
    let mut add = |module: &[&str], text: &str| {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        files.insert(
            module.clone(),
            (PathBuf::from(module.join("/")), parse_file(module, text)),
        );
    };
    add(&[], "mod a; mod b; mod c; pub use c::Shared;");
    add(&["a"], "use super::b::run; pub fn start() {}");
    add(
        &["b"],
        "/* crate::c::x */ pub fn run() { let s = \"crate::c::y\"; crate::a::start(); }",
    );
    add(&["c"], "pub struct Shared; fn f(_: crate::Shared) {}");
    let krate = Crate { files };
    let edges = krate.edges();
    let pairs: BTreeSet<_> = edges.keys().cloned().collect();
    let key = |s: &str| vec![s.to_owned()];
    assert!(pairs.contains(&(key("a"), key("b"))), "{pairs:?}");
    assert!(pairs.contains(&(key("b"), key("a"))), "{pairs:?}");
    // Comments and strings name nothing; the face's re-export leads to the defining file.
    assert!(!pairs.contains(&(key("b"), key("c"))), "{pairs:?}");
    assert!(
        !pairs.iter().any(|(from, _)| from == &key("c")),
        "{pairs:?}"
    );
    let nodes: Vec<Vec<String>> = krate.files.keys().cloned().collect();
    assert_eq!(circles(&nodes, &pairs), vec![vec![key("a"), key("b")]]);
}

// ---------------------------------------------------------------------------------------------
// Function length in the command line.

/// Every function in `text` (including methods, nested functions and tests): its name, first
/// line and length in lines, from `fn` to its closing brace.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let tokens = lex(text);
    let mut out = Vec::new();
    for (k, token) in tokens.iter().enumerate() {
        let (Token::Ident(word), Some(Token::Ident(name))) =
            (&token.token, tokens.get(k + 1).map(|t| &t.token))
        else {
            continue;
        };
        if word != "fn" {
            continue;
        }
        // The body opens at the first `{` outside parentheses, brackets and generics, unless a
        // `;` (a declaration without a body) comes first.
        let mut nesting = 0i32;
        let mut j = k + 2;
        let open = loop {
            match tokens.get(j).map(|t| &t.token) {
                Some(Token::Punct('(' | '[' | '<')) => nesting += 1,
                Some(Token::Punct(')' | ']' | '>')) => nesting -= 1,
                Some(Token::Punct('{')) if nesting <= 0 => break Some(j),
                Some(Token::Punct(';')) if nesting <= 0 => break None,
                None => break None,
                _ => {}
            }
            j += 1;
        };
        let Some(open) = open else { continue };
        let mut depth = 0;
        let close = tokens[open..].iter().position(|t| {
            match t.token {
                Token::Punct('{') => depth += 1,
                Token::Punct('}') => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        if let Some(close) = close {
            let end = tokens[open + close].line;
            out.push((name.clone(), token.line, end - token.line + 1));
        }
    }
    out
}

const MAX_FUNCTION_LINES: usize = 100;

#[test]
fn no_command_line_function_is_over_100_lines() {
    let src = root().join("src");
    let mut long = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable");
                for (name, line, lines) in functions(&text) {
                    if lines > MAX_FUNCTION_LINES {
                        let shown = path.strip_prefix(root()).expect("under the root");
                        long.push(format!(
                            "{}:{line}: {name} is {lines} lines",
                            shown.display()
                        ));
                    }
                }
            }
        }
    }
    long.sort();
    assert!(
        long.is_empty(),
        "command-line functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_counts_from_fn_to_its_closing_brace() {
    let text = "fn short() -> Vec<u8> { vec![] }\n\
                fn long<T: Into<u8>>(x: T)\nwhere T: Copy\n{\n    let s = \"}\";\n    let c = '{';\n}\n\
                trait Named { fn name(&self) -> &str; }\n";
    let found = functions(text);
    assert_eq!(
        found,
        vec![("short".to_owned(), 1, 1), ("long".to_owned(), 2, 6)]
    );
}
