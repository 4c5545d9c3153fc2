//! Source-code compression with tree-sitter: imports and signatures before bodies.
//!
//! Languages: Rust, Python, JavaScript, TypeScript (parsed with the TSX grammar) and Go, told
//! apart by keyword heuristics and confirmed by parsing: the best-guessed grammar that parses
//! without errors wins; failing that, the one whose error nodes cover least of the text, if
//! under 10%. Anything else (other languages, prose, minified code with a line over 16 KiB)
//! is `None`, and so is, without a parse, a text with lines only C, C++, C# or Java have
//! (`#include`, `package x;`, `public class`) or SQL statements (`CREATE TABLE`, `INSERT
//! INTO` at a line's start) with no keyword of the five languages: [`super::outline`] takes
//! those.
//!
//! Segments are the input's lines (split on `\n`), and the output is always a subset of
//! whole input lines in input order, byte-exact, joined by `\n`: nothing is added, nothing is
//! rewritten. Top-level items (and the members of `impl`/`trait`/`mod`/class bodies) become
//! *pieces* that are kept or dropped whole:
//! - an import (`use`, `import`, `from … import`, `package`, `extern crate`, `mod x;`);
//! - a definition kept whole (struct, enum, type, const, interface, short functions…);
//! - a function's *skeleton*: its attributes and summary line, the signature lines up to and
//!   including the line of the body's `{`, and the line of the closing `}` — an empty body,
//!   which still parses. In Python, where a body cannot be empty, the skeleton keeps the
//!   signature plus one short statement of the body (the docstring when there is one);
//! - a function's *body statements*: each direct statement (or comment) of the body, as whole
//!   lines, shown only together with the skeleton — so a long body can be kept in part, from
//!   its start (without a query) or its statements mentioning the query first;
//! - *doc comments*: attributes, decorators and a one-line first comment (the summary) belong
//!   to the item's skeleton; each further comment above the item (a `///` line, a `/** */`
//!   block) is a piece of its own, kept in order;
//! - a container's skeleton (`impl X {` … `}`, `class A:` plus one short member; `const _: ()
//!   = {` … `};` in Rust), whose members are pieces of their own (a Python docstring is a doc
//!   piece);
//! - a Python compound statement that holds an import (`if __name__ == "__main__":`, a `try:`
//!   around an optional import in a function): its clause headers plus one statement per block
//!   are its skeleton, and each block's statements are pieces of their own, so its imports can
//!   be kept without the rest.
//!
//! A body collapses only when its `{` ends its line and its `}` starts its line, so cutting
//! the lines between them cannot leave half a statement; otherwise the function is kept or
//! dropped whole.
//!
//! Priority: imports (top-level ones, then nested ones); then skeletons and definitions (top
//! level first, compact ones first). With a query, then doc comments, then body statements,
//! bodies and statements mentioning the query's words first (identifiers are split on `_`
//! and camelCase). Without one, whole bodies, shortest first (each body's statements
//! together, from its start), then doc comments' first paragraphs, then the rest of the doc
//! comments (details, examples): a definition kept whole tells more than the second page of
//! another's documentation. Lines outside any item (stray statements, unattached comments)
//! come last. Blank lines are kept only between kept lines, one per run.
//! A piece is only shown with the pieces it needs (a statement with its function's skeleton,
//! a method with its class's), and the longest prefix of this order that fits is kept, then
//! smaller later pieces fill what is left.
//!
//! The result is parsed again with the same grammar; when it has errors that the input did
//! not have, the selection is redone with whole top-level items only (that result is returned
//! as it is). The parse is skipped when it cannot find anything: whole top-level items only,
//! or, in Rust and Go, whole pieces only (no piece with some of its lines shown and others
//! not).
//!
//! Elisions are marked: where a shown function's body lost lines, one line comment at their
//! indentation says how many (`// … 12 lines omitted`; `# … 12 lines omitted` in Python, whose
//! skeleton keeps one statement so the body stays valid). It is the only text this module
//! adds; every other line is an input line.
//!
//! With a query that names a definition (in backticks, or a `snake_case` / `camelCase` word,
//! or any word of 4+ letters that is a definition's exact name), that definition comes right
//! after the imports: its skeleton, then its body from the start, then its members.
//! Imports wrapped in `if TYPE_CHECKING:` or `try:` / `except ImportError:` count as imports.
//! Nested imports in that definition or in what holds it (its module's `use` lines, its
//! class's) come right after its signature and before the rest of it, with the headers they
//! need; nested imports elsewhere (other bodies, `if __name__ == "__main__":`) after all of it.
//!
//! What it does not do: it never keeps part of a line or of a multi-line
//! statement inside a body; it does not cut inside huge single expressions (a 3,000-line
//! `module.exports = {…}` is one piece, kept or dropped whole).
//!
//! Invariants of `Some(p)`: `count(&p.text) <= budget`, checked on the final text;
//! `retained_indices` are the kept line numbers (0-based, ascending); `kept_information` is the
//! kept share of the non-blank lines' bytes, with import and signature lines weighted 3;
//! 1.0 only when the text is returned unchanged.

use tree_sitter::{Language, Node, Parser, Tree};

use super::Packed;
use super::query::QueryWords;
use super::text::is_stopword;
use super::units::Count;
use super::units::{ancestors_first, fit_units};

/// Container nesting (class in class…) segmented at most this deep; deeper items are whole.
const MAX_DEPTH: usize = 16;

/// Text with a longer line is not handled as code (minified or generated code).
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Bytes of the text looked at to guess the language.
const SAMPLE_BYTES: usize = 64 * 1024;

/// A language this module parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Go,
}

impl Lang {
    fn grammar(self) -> Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }
}

/// True when `text` parses as `lang` without an error node (what `eval` checks outputs with).
pub fn parses_cleanly(lang: Lang, text: &str) -> bool {
    parse(lang, text).is_some_and(|t| !t.root_node().has_error())
}

fn parse(lang: Lang, text: &str) -> Option<Tree> {
    let mut parser = Parser::new();
    parser.set_language(&lang.grammar()).ok()?;
    parser.parse(text, None)
}

/// Size from which a file is parsed as two halves on two threads.
const SPLIT_PARSE_BYTES: usize = 128 * 1024;

/// The syntax trees of `text`: one, or, for a large file, one per half, parsed at the same
/// time on two threads. Each half's tree has the whole text's byte and row positions (the
/// parser reads only its range), so the halves' top-level items, read in order, are the
/// file's. The cut is a top-level item boundary near the middle (a line at column 0 after a
/// blank line); if either half does not parse cleanly (the cut fell inside a string, a
/// comment or a block), the file is parsed whole.
fn parse_trees(lang: Lang, text: &str) -> Option<Vec<Tree>> {
    if text.len() >= SPLIT_PARSE_BYTES
        && let Some(cut) = top_level_cut(text)
    {
        let half = |range: tree_sitter::Range| -> Option<Tree> {
            let mut parser = Parser::new();
            parser.set_language(&lang.grammar()).ok()?;
            parser.set_included_ranges(&[range]).ok()?;
            parser.parse(text, None)
        };
        let whole = tree_sitter::Range {
            start_byte: 0,
            end_byte: text.len(),
            start_point: tree_sitter::Point { row: 0, column: 0 },
            end_point: point_at(text, text.len()),
        };
        let first = tree_sitter::Range { end_byte: cut, end_point: point_at(text, cut), ..whole };
        let second = tree_sitter::Range { start_byte: cut, start_point: point_at(text, cut), ..whole };
        let (a, b) = std::thread::scope(|scope| {
            let b = scope.spawn(|| half(second));
            (half(first), b.join().ok().flatten())
        });
        if let (Some(a), Some(b)) = (a, b)
            && !a.root_node().has_error()
            && !b.root_node().has_error()
        {
            return Some(vec![a, b]);
        }
    }
    parse(lang, text).map(|t| vec![t])
}

/// The start of the line nearest the middle of `text` that begins a top-level item: at
/// column 0, not a closing bracket, right after a blank line.
fn top_level_cut(text: &str) -> Option<usize> {
    let mid = text.len() / 2;
    let at = |i: usize| -> bool {
        i > 1
            && text.as_bytes()[i - 1] == b'\n'
            && text[..i - 1].rsplit('\n').next().is_some_and(|l| l.trim().is_empty())
            && text.as_bytes().get(i).is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'}' | b')' | b']'))
    };
    let after = text[mid..].match_indices('\n').map(|(i, _)| mid + i + 1).find(|&i| at(i));
    let before = text[..mid].rmatch_indices('\n').map(|(i, _)| i + 1).find(|&i| at(i));
    match (before, after) {
        (Some(b), Some(a)) => Some(if mid - b <= a - mid { b } else { a }),
        (b, a) => b.or(a),
    }
}

/// The row and byte column of byte `at` of `text`.
fn point_at(text: &str, at: usize) -> tree_sitter::Point {
    let before = &text.as_bytes()[..at];
    let row = before.iter().filter(|&&b| b == b'\n').count();
    let column = at - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    tree_sitter::Point { row, column }
}

/// How many languages this module parses.
const LANGUAGES: usize = 5;

/// Guesses the language from keyword patterns: up to three candidates with evidence, best
/// first; all five, best first, when none has enough evidence (the parse then decides).
pub fn guess_languages(text: &str) -> Vec<Lang> {
    let sample = super::detect::prefix(text, SAMPLE_BYTES);
    let mut score = [0usize; LANGUAGES];
    let mut add = |lang: Lang, n: usize| score[lang as usize] += n;
    for line in sample.lines().take(2000) {
        let t = line.trim();
        let has = |p: &str| t.contains(p);
        let starts = |p: &str| t.starts_with(p);
        if starts("fn ") || starts("pub fn ") || starts("pub(crate) fn ") || has(" fn ") {
            add(Lang::Rust, 3);
        }
        if starts("use ") && t.ends_with(';') && has("::") {
            add(Lang::Rust, 4);
        }
        if starts("impl ") || starts("impl<") || has("let mut ") || has("&self") || starts("#[") {
            add(Lang::Rust, 3);
        }
        if has("println!") || has(".unwrap()") || has("Vec<") || has("Result<") || has("Option<") {
            add(Lang::Rust, 2);
        }
        if starts("def ") || starts("async def ") || starts("elif ") || starts("class ") && t.ends_with(':') {
            add(Lang::Python, 3);
        }
        if starts("from ") && has(" import ") || starts("import ") && !t.ends_with(';') && !has(" from ") && !has("\"")
        {
            add(Lang::Python, 3);
        }
        if has("self.") || has("None") || has("__init__") || t.ends_with(':') && !t.ends_with("::") {
            add(Lang::Python, 1);
        }
        if starts("package ") && !t.ends_with(';') {
            add(Lang::Go, 5);
        }
        if starts("func ") || has(":= ") || has("err != nil") || has("fmt.") || starts("import (") {
            add(Lang::Go, 3);
        }
        if starts("function ")
            || starts("async function ")
            || has("console.")
            || has("require(")
            || has("===")
            || has("module.exports")
        {
            add(Lang::JavaScript, 3);
            add(Lang::TypeScript, 2);
        }
        if starts("const ")
            || starts("let ")
            || starts("var ")
            || has("=> ")
            || starts("export ")
            || starts("import ") && has(" from ")
        {
            add(Lang::JavaScript, 1);
            add(Lang::TypeScript, 1);
        }
        if has(": string")
            || has(": number")
            || has(": boolean")
            || has("readonly ")
            || starts("interface ")
            || starts("export interface ")
            || starts("export type ")
            || has("implements ")
            || has("private ") && t.ends_with(';')
        {
            add(Lang::TypeScript, 3);
        }
    }
    let mut langs: [Lang; LANGUAGES] = [Lang::Rust, Lang::Python, Lang::JavaScript, Lang::TypeScript, Lang::Go];
    langs.sort_by_key(|&l| std::cmp::Reverse(score[l as usize]));
    let strong: Vec<Lang> = langs.iter().copied().filter(|&l| score[l as usize] >= 3).take(3).collect();
    if strong.is_empty() {
        // Little evidence (a short snippet): let the parsers decide, best guesses first.
        return langs.to_vec();
    }
    strong
}

/// True when the start of `text` has lines only C, C++, C# or Java have.
fn foreign_marks(text: &str) -> bool {
    super::detect::prefix(text, SAMPLE_BYTES).lines().take(2000).any(|l| {
        let t = l.trim();
        t.starts_with("#include")
            || t.starts_with("#define ")
            || (t.starts_with("package ") || t.starts_with("using ")) && t.ends_with(';')
            || t.starts_with("public class ")
            || t.starts_with("public final class ")
            || t.starts_with("template <")
            || t.starts_with("template<")
            || t == "@Override"
    })
}

/// True when the start of `text` has SQL statements at a line's start (`CREATE TABLE`,
/// `INSERT INTO`): a dump or a migration, unless the text shows a language of its own (SQL in a
/// Python string is Python's).
fn sql_statements(text: &str) -> bool {
    super::detect::prefix(text, SAMPLE_BYTES).lines().take(2000).any(|l| {
        let t = l.trim();
        t.starts_with("CREATE TABLE ") || t.starts_with("INSERT INTO ")
    })
}

/// Inclusive range of line numbers.
type LineRange = (usize, usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    Import,
    /// A definition kept whole, or a function/container skeleton.
    Signature,
    /// Doc comments beyond an item's first line.
    Doc,
    /// A statement of a function body, or a function that cannot collapse.
    Body,
    Other,
}

#[derive(Debug, Clone)]
struct Piece {
    /// Inclusive line ranges.
    lines: Vec<(usize, usize)>,
    parent: Option<usize>,
    kind: PieceKind,
    depth: usize,
    /// The function body a statement piece belongs to (an index into the body ranges).
    group: Option<usize>,
    /// Position of a statement in its body.
    seq: usize,
    /// The name of the definition this piece opens (its skeleton or whole item), if any.
    name: Option<(usize, usize)>,
    /// A doc comment past its first paragraph (details, examples).
    detail: bool,
}

/// Splits the tree into pieces; `whole_only` keeps every top-level item whole.
struct Segmenter<'a> {
    text: &'a str,
    lang: Lang,
    line_starts: &'a [usize],
    pieces: Vec<Piece>,
    /// Interior line ranges of the function bodies split into statements.
    groups: Vec<LineRange>,
    whole_only: bool,
}

fn is_comment_like(kind: &str) -> bool {
    matches!(
        kind,
        "comment" | "line_comment" | "block_comment" | "attribute_item" | "inner_attribute_item" | "decorator"
    )
}

impl Segmenter<'_> {
    fn line_text(&self, row: usize) -> &str {
        let start = self.line_starts[row];
        let end = self.line_starts.get(row + 1).map_or(self.text.len(), |&e| e - 1);
        &self.text[start..end.max(start)]
    }

    /// Segments the named children of `parent` (the root or a container body).
    fn children(&mut self, parent: Node<'_>, parent_piece: Option<usize>, depth: usize) {
        let mut cursor = parent.walk();
        let kids: Vec<Node<'_>> = parent.named_children(&mut cursor).collect();
        let mut pending: Vec<Node<'_>> = Vec::new();
        for node in kids {
            if is_comment_like(node.kind()) {
                pending.push(node);
                continue;
            }
            // Comments and attributes directly above (no blank line between) belong to the item.
            let mut first = node.start_position().row;
            let mut attached = 0;
            for c in pending.iter().rev() {
                if last_row(*c) + 1 >= first {
                    first = c.start_position().row;
                    attached += 1;
                } else {
                    break;
                }
            }
            let loose = pending.len() - attached;
            for c in pending.drain(..loose) {
                self.push_other(c, parent_piece, depth);
            }
            let attached: Vec<Node<'_>> = std::mem::take(&mut pending);
            self.item(node, &attached, parent_piece, depth);
        }
        for c in pending {
            self.push_other(c, parent_piece, depth);
        }
    }

    fn push_other(&mut self, node: Node<'_>, parent: Option<usize>, depth: usize) {
        self.push(vec![(node.start_position().row, last_row(node))], parent, PieceKind::Other, depth);
    }

    fn push(&mut self, lines: Vec<(usize, usize)>, parent: Option<usize>, kind: PieceKind, depth: usize) -> usize {
        self.pieces.push(Piece { lines, parent, kind, depth, group: None, seq: 0, name: None, detail: false });
        self.pieces.len() - 1
    }

    /// One item with the comments and attributes attached above it: attributes and a
    /// one-line first comment (the summary) go with the item, each further comment becomes a
    /// `Doc` piece that needs the item.
    fn item(&mut self, node: Node<'_>, attached: &[Node<'_>], parent: Option<usize>, depth: usize) {
        let mut with_item: Vec<LineRange> = Vec::new();
        let mut doc: Vec<(LineRange, bool)> = Vec::new();
        let mut summary_taken = false;
        let mut past_first_paragraph = false;
        for c in attached {
            let range = (c.start_position().row, last_row(*c));
            if matches!(c.kind(), "attribute_item" | "inner_attribute_item" | "decorator") {
                with_item.push(range);
            } else if !summary_taken && range.0 == range.1 {
                summary_taken = true;
                with_item.push(range);
            } else {
                summary_taken = true;
                doc.push((range, past_first_paragraph));
                let text = &self.text[c.byte_range()];
                past_first_paragraph |=
                    text.trim_matches(|ch: char| ch.is_whitespace() || "/*!#".contains(ch)).is_empty();
            }
        }
        let before = self.pieces.len();
        self.item_body(node, parent, depth);
        // The item's first piece is its skeleton or the whole item.
        if self.pieces.len() > before {
            self.pieces[before].name = definition_name(node).map(|n| (n.start_byte(), n.end_byte()));
            self.pieces[before].lines.extend(with_item);
            // One piece per comment node (a `///` line, a `/** … */` block), kept in order.
            for (seq, (range, detail)) in doc.into_iter().enumerate() {
                let p = self.push(vec![range], Some(before), PieceKind::Doc, depth);
                self.pieces[p].seq = seq;
                self.pieces[p].detail = detail;
            }
        }
    }

    fn item_body(&mut self, node: Node<'_>, parent: Option<usize>, depth: usize) {
        let first = node.start_position().row;
        let last = last_row(node);
        let kind = node.kind();
        if is_import(kind, node) || (parent.is_none() && imports_only(node)) {
            self.push(vec![(first, last)], parent, PieceKind::Import, depth);
            return;
        }
        if self.whole_only || depth > MAX_DEPTH {
            let k = if is_definition(kind) { PieceKind::Signature } else { PieceKind::Other };
            self.push(vec![(first, last)], parent, k, depth);
            return;
        }
        // Unwrap `export …` and decorated Python definitions: the header starts at the wrapper.
        let inner = match kind {
            "export_statement" => node.child_by_field_name("declaration"),
            "decorated_definition" => node.child_by_field_name("definition"),
            _ => None,
        };
        let target = inner.unwrap_or(node);
        if let Some(body) = container_body(target)
            && let Some((head, tail)) = self.split(first, last, body)
        {
            let mut lines = vec![head];
            lines.extend(tail);
            let skeleton = self.push(lines, parent, PieceKind::Signature, depth);
            if self.lang == Lang::Python {
                // `class A:` needs one statement: a short first member, else the smallest one
                // (a long class docstring is a piece of its own, not a toll on every member).
                let anchor_lines = self.python_anchor(body);
                self.pieces[skeleton].lines.extend(anchor_lines);
            }
            self.children(body, Some(skeleton), depth + 1);
            return;
        }
        if let Some(body) = function_body(target) {
            if let Some((head, tail)) = self.split(first, last, body) {
                let mut lines = vec![head];
                let interior = if self.lang == Lang::Python {
                    lines.extend(self.python_anchor(body));
                    (head.1 + 1, last)
                } else {
                    lines.extend(tail);
                    (head.1 + 1, tail.map_or(last, |t| t.0.saturating_sub(1)))
                };
                let skeleton = self.push(lines, parent, PieceKind::Signature, depth);
                // Each statement of the body is a piece of its own, so a budget can hold the
                // start of a long body; the group ranks the body as a whole.
                let group = self.groups.len();
                self.groups.push(interior);
                self.statements(body, interior, skeleton, group, depth);
                return;
            }
            // A function that cannot collapse: short ones read like signatures.
            let k = if last - first <= 3 { PieceKind::Signature } else { PieceKind::Body };
            self.push(vec![(first, last)], parent, k, depth);
            return;
        }
        if self.compound(node, parent, PieceKind::Other, depth).is_some() {
            return;
        }
        let k = if is_definition(target.kind()) {
            PieceKind::Signature
        } else if self.lang == Lang::Python && is_string_statement(target) {
            // A docstring (of a module or a class) reads like a doc comment.
            PieceKind::Doc
        } else {
            PieceKind::Other
        };
        self.push(vec![(first, last)], parent, k, depth);
    }

    /// Each direct statement of `body` (within the `interior` lines) becomes a piece of
    /// `group` under `skeleton`: imports as imports, a Python compound statement holding
    /// imports as a skeleton of its own (see [`compound`](Self::compound)), the rest as body
    /// statements.
    fn statements(&mut self, body: Node<'_>, interior: LineRange, skeleton: usize, group: usize, depth: usize) {
        let mut cursor = body.walk();
        let stmts: Vec<Node<'_>> = body.named_children(&mut cursor).collect();
        for (seq, stmt) in stmts.into_iter().enumerate() {
            let s = stmt.start_position().row.max(interior.0);
            let e = last_row(stmt).min(interior.1);
            if s > e {
                continue;
            }
            let p = if is_import(stmt.kind(), stmt) {
                self.push(vec![(s, e)], Some(skeleton), PieceKind::Import, depth)
            } else if let Some(p) = self.compound(stmt, Some(skeleton), PieceKind::Body, depth) {
                p
            } else {
                self.push(vec![(s, e)], Some(skeleton), PieceKind::Body, depth)
            };
            self.pieces[p].group = Some(group);
            self.pieces[p].seq = seq;
            // A function defined inside a body can be what the query names (most statements
            // define nothing: their name is not looked for).
            if may_define(stmt) {
                self.pieces[p].name = definition_name(stmt).map(|n| (n.start_byte(), n.end_byte()));
            }
        }
    }

    /// A Python compound statement (`if`, `try`, `with`, `for`, `while`) with an import in
    /// it, such as `if __name__ == "__main__":` or a `try:` around an optional import in a
    /// function: its clause headers and one statement of each block are its skeleton (a
    /// piece of `kind`), and each block's statements are pieces of a group of their own, so
    /// its imports can be kept without the rest, and what is cut is marked. Returns the
    /// skeleton, or None (nothing pushed) when the statement is not such a compound or a
    /// block shares a line with its header.
    fn compound(&mut self, node: Node<'_>, parent: Option<usize>, kind: PieceKind, depth: usize) -> Option<usize> {
        if self.lang != Lang::Python
            || self.whole_only
            || depth > MAX_DEPTH
            || !matches!(
                node.kind(),
                "if_statement" | "try_statement" | "with_statement" | "for_statement" | "while_statement"
            )
            || !contains_import(node)
        {
            return None;
        }
        // The blocks: the statement's own and those of its clauses (`elif`, `else`,
        // `except`, `finally`).
        let mut blocks: Vec<Node<'_>> = Vec::new();
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            if child.kind() == "block" {
                blocks.push(child);
            } else if child.kind().ends_with("_clause") {
                let mut inner = child.walk();
                blocks.extend(child.named_children(&mut inner).filter(|c| c.kind() == "block"));
            }
        }
        // Headers are the lines between blocks; each block starts on a line of its own,
        // right under its header.
        let (first, last) = (node.start_position().row, last_row(node));
        let mut lines: Vec<LineRange> = Vec::new();
        let mut interiors: Vec<LineRange> = Vec::new();
        let mut at = first;
        for b in &blocks {
            let (b0, b1) = (b.start_position().row, last_row(*b));
            if b0 <= at || self.line_text(b0 - 1).trim().is_empty() {
                return None;
            }
            lines.push((at, b0 - 1));
            interiors.push((b0, b1));
            at = b1 + 1;
        }
        if blocks.is_empty() || at <= last {
            return None;
        }
        for b in &blocks {
            lines.extend(self.python_anchor(*b));
        }
        let skeleton = self.push(lines, parent, kind, depth);
        for (b, interior) in blocks.into_iter().zip(interiors) {
            let group = self.groups.len();
            self.groups.push(interior);
            self.statements(b, interior, skeleton, group, depth + 1);
        }
        Some(skeleton)
    }

    /// Head and tail line ranges of an item whose body may be cut out, or None when cutting
    /// lines would split a statement.
    fn split(&self, first: usize, last: usize, body: Node<'_>) -> Option<(LineRange, Option<LineRange>)> {
        let (b0, b1) = (body.start_position().row, body.end_position().row);
        if self.lang == Lang::Python {
            // The body starts on its own line after the `:` line.
            if b0 <= first || b0 > b1 || b1 < b0 + 1 && b0 == first {
                return None;
            }
            if self.line_text(b0 - 1).trim().is_empty() {
                return None;
            }
            return Some(((first, b0 - 1), None));
        }
        if b1 < b0 + 2 {
            return None;
        }
        let open_line = self.line_text(b0);
        let after_open = &self.text[body.start_byte() + 1..self.line_starts[b0] + open_line.len()];
        let after = after_open.trim();
        if !(after.is_empty() || after.starts_with("//")) {
            return None;
        }
        let close_start = self.line_starts[b1];
        let before_close = &self.text[close_start..body.end_byte().saturating_sub(1).max(close_start)];
        if !before_close.trim().is_empty() {
            return None;
        }
        Some(((first, b0), Some((b1, last))))
    }

    /// The lines of a Python body's anchor statement: the first statement when it is short
    /// (typically the docstring), else the shortest one.
    fn python_anchor(&self, body: Node<'_>) -> Vec<(usize, usize)> {
        let mut cursor = body.walk();
        let stmts: Vec<Node<'_>> = body.named_children(&mut cursor).filter(|n| !is_comment_like(n.kind())).collect();
        let span = |n: &Node<'_>| n.end_position().row - n.start_position().row;
        let pick = match stmts.first() {
            Some(f) if span(f) <= 2 => Some(*f),
            _ => stmts.iter().min_by_key(|n| span(n)).copied(),
        };
        pick.map(|n| self.python_minimal(n)).unwrap_or_default()
    }

    /// The smallest line set of a Python statement that still parses: a function's skeleton,
    /// or the whole statement.
    fn python_minimal(&self, node: Node<'_>) -> Vec<(usize, usize)> {
        let (first, last) = (node.start_position().row, node.end_position().row);
        let target = if node.kind() == "decorated_definition" {
            node.child_by_field_name("definition").unwrap_or(node)
        } else {
            node
        };
        if let Some(body) = function_body(target).or_else(|| container_body(target))
            && let Some((head, _)) = self.split(first, last, body)
        {
            let mut lines = vec![head];
            lines.extend(self.python_anchor(body));
            return lines;
        }
        vec![(first, last)]
    }
}

fn is_import(kind: &str, node: Node<'_>) -> bool {
    match kind {
        "use_declaration"
        | "extern_crate_declaration"
        | "import_statement"
        | "import_from_statement"
        | "future_import_statement"
        | "import_declaration"
        | "package_clause" => true,
        // `mod foo;` declares a file, like an import.
        "mod_item" => node.child_by_field_name("body").is_none(),
        _ => false,
    }
}

/// The last line of a node's text: a node that ends with a newline (a `//` comment in Rust)
/// ends at column 0 of the next line, which is not its own.
fn last_row(node: Node<'_>) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row { end.row - 1 } else { end.row }
}

/// True when an import statement is somewhere under `node`.
fn contains_import(node: Node<'_>) -> bool {
    let mut cursor = node.walk();
    loop {
        let n = cursor.node();
        if is_import(n.kind(), n) {
            return true;
        }
        // Expressions hold no statements; skip their insides.
        let descend = n.kind().ends_with("statement")
            || n.kind().ends_with("_clause")
            || n.kind().ends_with("definition")
            || n.kind() == "block";
        if descend && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node() == node {
                return false;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return false;
            }
        }
    }
}

/// A Python statement that is only a string (a docstring).
fn is_string_statement(node: Node<'_>) -> bool {
    node.kind() == "expression_statement"
        && node.named_child_count() == 1
        && node.named_child(0).is_some_and(|c| c.kind() == "string")
}

/// A statement made of imports only, such as Python's `if TYPE_CHECKING:` or `try:` /
/// `except ImportError:` around imports: it is kept as an import.
fn imports_only(node: Node<'_>) -> bool {
    fn walk(node: Node<'_>, found: &mut bool) -> bool {
        let kind = node.kind();
        if is_import(kind, node) {
            *found = true;
            return true;
        }
        match kind {
            "pass_statement" | "comment" => true,
            // `brotli = None` in the `except ImportError:` branch.
            "expression_statement" => {
                node.start_position().row == node.end_position().row
                    && node.named_child(0).is_some_and(|c| c.kind() == "assignment")
            }
            "if_statement" | "try_statement" | "else_clause" | "elif_clause" | "except_clause" | "finally_clause"
            | "block" => {
                let mut cursor = node.walk();
                let kids: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                kids.into_iter().all(|k| {
                    // Conditions and exception types are not statements.
                    let statement_like = matches!(
                        k.kind(),
                        "block" | "else_clause" | "elif_clause" | "except_clause" | "finally_clause"
                    ) || kind == "block";
                    !statement_like || walk(k, found)
                })
            }
            _ => false,
        }
    }
    if !matches!(node.kind(), "if_statement" | "try_statement") {
        return false;
    }
    let mut found = false;
    walk(node, &mut found) && found
}

/// The name node of a definition (unwrapping `export` and decorators; the first declarator
/// of `const f = …`).
fn definition_name<'t>(node: Node<'t>) -> Option<Node<'t>> {
    let target = match node.kind() {
        "export_statement" => node.child_by_field_name("declaration")?,
        "decorated_definition" => node.child_by_field_name("definition")?,
        _ => node,
    };
    if let Some(n) = target.child_by_field_name("name") {
        return Some(n);
    }
    let mut cursor = target.walk();
    let kids: Vec<Node<'t>> = target.named_children(&mut cursor).collect();
    kids.into_iter()
        .find(|k| matches!(k.kind(), "variable_declarator" | "type_spec" | "const_spec"))
        .and_then(|d| d.child_by_field_name("name"))
}

/// True for a node that can be a definition with a name (see [`definition_name`]).
fn may_define(node: Node<'_>) -> bool {
    let kind = node.kind();
    is_definition(kind)
        || matches!(
            kind,
            "export_statement"
                | "decorated_definition"
                | "lexical_declaration"
                | "variable_declaration"
                | "class_definition"
                | "class_declaration"
        )
        || function_body(node).is_some()
        || container_body(node).is_some()
}

/// Identifiers the query names: those in backticks, else every word that looks like an
/// identifier (`snake_case`, `camelCase`, `CamelCase`, or 4+ letters and not a stopword).
fn named_identifiers(query: &str) -> Vec<&str> {
    let ident = |w: &&str| {
        !w.is_empty()
            && w.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !w.starts_with(|c: char| c.is_ascii_digit())
    };
    let quoted: Vec<&str> =
        query.split('`').skip(1).step_by(2).flat_map(|q| q.split(['.', ':', '(', ')', ' '])).filter(ident).collect();
    if !quoted.is_empty() {
        return quoted;
    }
    query
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(ident)
        .filter(|w| {
            let shaped = w.contains('_') || w.chars().skip(1).any(char::is_uppercase);
            let lower = w.to_lowercase();
            shaped || (w.len() >= 4 && !is_stopword(&lower) && !CODE_WORDS.contains(&lower.as_str()))
        })
        .collect()
}

fn is_definition(kind: &str) -> bool {
    matches!(
        kind,
        "struct_item"
            | "enum_item"
            | "union_item"
            | "type_item"
            | "const_item"
            | "static_item"
            | "trait_item"
            | "function_signature_item"
            | "macro_definition"
            | "associated_type"
            | "type_declaration"
            | "const_declaration"
            | "var_declaration"
            | "interface_declaration"
            | "type_alias_declaration"
            | "enum_declaration"
            | "function_signature"
            | "abstract_method_signature"
            | "method_signature"
            | "field_declaration"
            | "public_field_definition"
            | "field_definition"
            | "ambient_declaration"
    )
}

/// The body of a class-like item whose members are segmented on their own.
fn container_body<'t>(node: Node<'t>) -> Option<Node<'t>> {
    match node.kind() {
        "impl_item"
        | "trait_item"
        | "mod_item"
        | "class_declaration"
        | "class"
        | "abstract_class_declaration"
        | "class_definition"
        | "internal_module"
        | "module" => node.child_by_field_name("body"),
        // `const _: () = { use …; impl … };`: items in a block, like a module.
        "const_item" | "static_item" => node.child_by_field_name("value").filter(|v| v.kind() == "block"),
        _ => None,
    }
}

/// The body of a function-like item (including `const f = () => { … }`).
fn function_body<'t>(node: Node<'t>) -> Option<Node<'t>> {
    match node.kind() {
        "function_item"
        | "function_definition"
        | "function_declaration"
        | "method_declaration"
        | "generator_function_declaration"
        | "method_definition" => node.child_by_field_name("body"),
        "lexical_declaration" | "variable_declaration" => {
            let mut cursor = node.walk();
            let declarator = node.named_children(&mut cursor).find(|n| n.kind() == "variable_declarator")?;
            let value = declarator.child_by_field_name("value")?;
            match value.kind() {
                "arrow_function" | "function_expression" | "function" => {
                    value.child_by_field_name("body").filter(|b| b.kind() == "statement_block")
                }
                _ => None,
            }
        }
        "expression_statement" => {
            // `module.exports.f = function () { … }` and similar.
            let inner = node.named_child(0)?;
            if inner.kind() != "assignment_expression" {
                return None;
            }
            let value = inner.child_by_field_name("right")?;
            match value.kind() {
                "arrow_function" | "function_expression" | "function" => {
                    value.child_by_field_name("body").filter(|b| b.kind() == "statement_block")
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Bytes covered by error and missing nodes (outermost ones only).
fn error_bytes(tree: &Tree) -> usize {
    let root = tree.root_node();
    if !root.has_error() {
        return 0;
    }
    let mut total = 0;
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        let descend = if node.is_error() || node.is_missing() {
            total += (node.end_byte() - node.start_byte()).max(1);
            false
        } else {
            node.has_error()
        };
        if descend && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return total;
            }
        }
    }
}

/// Lower-case words of a text, identifiers split on `_` and camelCase (and kept whole).
pub(crate) fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_word(s, &mut |w| out.push(w.to_string()));
    out
}

/// Calls `f` with what [`words`] returns, in order, without allocating per word: each
/// lower-cased word, then, for identifiers, its parts (split on `_` and camelCase).
fn each_word(s: &str, f: &mut dyn FnMut(&str)) {
    let mut buf = String::new();
    let mut part = String::new();
    let lower = |buf: &mut String, w: &str| {
        buf.clear();
        if w.is_ascii() {
            buf.push_str(w);
            buf.make_ascii_lowercase();
        } else {
            buf.push_str(&w.to_lowercase());
        }
    };
    for w in s.split(|c: char| !c.is_alphanumeric() && c != '_') {
        if w.is_empty() {
            continue;
        }
        lower(&mut buf, w);
        f(&buf);
        part.clear();
        let mut prev_lower = false;
        for c in w.chars() {
            if (c == '_' || (c.is_uppercase() && prev_lower)) && !part.is_empty() {
                lower(&mut buf, &part);
                f(&buf);
                part.clear();
            }
            if c != '_' {
                part.push(c);
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
        if !part.is_empty() && part.len() < w.len() {
            lower(&mut buf, &part);
            f(&buf);
        }
    }
}

/// Words that say nothing in a question about code (beside the stopwords of every kind).
const CODE_WORDS: &[&str] = &["function", "method", "code", "file", "called", "call", "calls"];

/// Compresses source code; see the module docs.
pub fn compress_code(text: &str, query: Option<&str>, budget: usize, count: &dyn Count) -> Option<Packed> {
    if budget == 0 || text.trim().is_empty() {
        return None;
    }
    // Minified or generated code: whole-line selection has nothing to work with.
    if text.split('\n').any(|l| l.len() > MAX_LINE_BYTES) {
        return None;
    }
    // C's `#include`, Java's `package x;`, YAML: a language without a grammar here (the
    // outline's). A diff that the diff handler could not fit is outlined too.
    // The JavaScript grammar would read much of it with few errors, and none of its meaning.
    let candidates = guess_languages(text);
    // SQL statements with no other language's evidence (every candidate kept): no grammar
    // here reads SQL, yet one of them may accept it with few errors and none of its meaning.
    let no_evidence = candidates.len() == LANGUAGES;
    if foreign_marks(text)
        || no_evidence && sql_statements(text)
        || super::detect::looks_like_yaml(text)
        || super::detect::looks_like_xml(text)
        || super::diff::is_diff(text)
    {
        return None;
    }
    // The first candidate that parses cleanly; else the one with the least text in error
    // nodes, if that is under a tenth of the text (a fragment or a small syntax slip).
    let mut chosen: Option<(Lang, Vec<Tree>, usize)> = None;
    for &lang in &candidates {
        let Some(trees) = parse_trees(lang, text) else {
            continue;
        };
        let errors = trees.iter().map(error_bytes).sum::<usize>();
        if errors == 0 {
            chosen = Some((lang, trees, 0));
            break;
        }
        if errors * 10 < text.len() && chosen.as_ref().is_none_or(|c| errors < c.2) {
            chosen = Some((lang, trees, errors));
        }
    }
    let (lang, trees, _) = chosen?;
    let trees = FreedAside(trees);
    let lines: Vec<&str> = text.split('\n').collect();
    let total_tokens = count.count(text);
    if total_tokens <= budget {
        return Some(Packed {
            text: text.to_string(),
            retained_indices: (0..lines.len()).collect(),
            kept_information: 1.0,
        });
    }
    let input_had_errors = trees.iter().any(|t| t.root_node().has_error());
    // Pieces are estimated at the text's average density; the real count decides the fit.
    let tokens_per_byte = total_tokens as f64 / text.len().max(1) as f64;
    let mut line_starts = Vec::with_capacity(lines.len());
    let mut offset = 0;
    for l in &lines {
        line_starts.push(offset);
        offset += l.len() + 1;
    }
    let query_words: Vec<String> = {
        let mut w: Vec<String> = QueryWords::read(query.unwrap_or(""), CODE_WORDS)
            .identifiers
            .iter()
            .flat_map(|i| words(i))
            .filter(|w| w.len() > 1 && !is_stopword(w))
            .collect();
        w.sort();
        w.dedup();
        w
    };

    let named = named_identifiers(query.unwrap_or(""));
    for whole_only in [false, true] {
        let mut seg =
            Segmenter { text, lang, line_starts: &line_starts, pieces: Vec::new(), groups: Vec::new(), whole_only };
        for tree in trees.iter() {
            seg.children(tree.root_node(), None, 0);
        }
        let (pieces, groups) = (seg.pieces, seg.groups);
        if pieces.is_empty() {
            return None;
        }
        let units = Units {
            targets: targets(text, &pieces, &named),
            lines: &lines,
            line_starts: &line_starts,
            pieces: &pieces,
            groups: &groups,
            comment: if lang == Lang::Python { "#" } else { "//" },
        };
        // When the finer pieces cannot fit, whole items cannot either.
        let (out, kept) = select(&units, &query_words, budget, count, tokens_per_byte)?;
        // Parsing the result again only matters when it may differ from a selection of whole
        // top-level items (which is what the fallback below would return unchecked).
        let parses = input_had_errors
            || trees.iter().all(|t| whole_items_only(t, &lines, &kept))
            || whole_pieces_only(lang, &lines, &pieces, &kept)
            || parse(lang, &out).is_some_and(|t| !t.root_node().has_error());
        debug_assert!(
            input_had_errors
                || !whole_pieces_only(lang, &lines, &pieces, &kept)
                || parse(lang, &out).is_some_and(|t| !t.root_node().has_error()),
            "whole pieces that do not parse:\n{out}"
        );
        if !parses && !whole_only {
            continue;
        }
        let retained_indices: Vec<usize> = (0..lines.len()).filter(|&i| kept[i]).collect();
        let kept_information = information(&lines, &pieces, &kept);
        return Some(Packed { text: out, retained_indices, kept_information });
    }
    None
}

/// Syntax trees that a large file's compression does not wait to free: freeing the two
/// trees of a 100,000-token file costs a tenth of its compression, so another thread does it.
struct FreedAside(Vec<Tree>);

impl std::ops::Deref for FreedAside {
    type Target = [Tree];
    fn deref(&self) -> &[Tree] {
        &self.0
    }
}

impl Drop for FreedAside {
    fn drop(&mut self) {
        if self.0.len() > 1 {
            let trees = std::mem::take(&mut self.0);
            // If no thread can be started, the trees are freed here as the closure is dropped.
            let _ = std::thread::Builder::new().name("free-trees".into()).spawn(move || drop(trees));
        }
    }
}

/// True when the output cannot have a syntax error the input did not have, so it need not be
/// parsed again: every piece has all or none of its non-blank lines shown, every dropped
/// non-blank line belongs to a piece, and the language is one where dropping whole items,
/// statements and comments (and adding a line comment between lines) cannot join what is
/// left into something else — Rust and Go, not Python (indentation) nor JavaScript and
/// TypeScript (semicolon insertion).
fn whole_pieces_only(lang: Lang, lines: &[&str], pieces: &[Piece], shown: &[bool]) -> bool {
    if !matches!(lang, Lang::Rust | Lang::Go) {
        return false;
    }
    let n = lines.len();
    let mut covered = vec![false; n];
    for p in pieces {
        let (mut any, mut all) = (false, true);
        for &(a, b) in &p.lines {
            for i in a..=b.min(n - 1) {
                if !lines[i].trim().is_empty() {
                    any |= shown[i];
                    all &= shown[i];
                    covered[i] = true;
                }
            }
        }
        if any && !all {
            return false;
        }
    }
    (0..n).all(|i| shown[i] || covered[i] || lines[i].trim().is_empty())
}

/// True when every top-level node of `tree` has all or none of its non-blank lines shown.
fn whole_items_only(tree: &Tree, lines: &[&str], shown: &[bool]) -> bool {
    let root = tree.root_node();
    let mut cursor = root.walk();
    let last = lines.len().saturating_sub(1);
    root.children(&mut cursor).all(|c| {
        let (a, b) = (c.start_position().row, c.end_position().row.min(last));
        let (mut any, mut all) = (false, true);
        for i in a..=b {
            if !lines[i].trim().is_empty() {
                any |= shown[i];
                all &= shown[i];
            }
        }
        !any || all
    })
}

/// A file cut into pieces, with what rendering needs.
struct Units<'a> {
    lines: &'a [&'a str],
    /// The byte offset of each line in the input.
    line_starts: &'a [usize],
    pieces: &'a [Piece],
    /// Interior line ranges of the function bodies split into statements.
    groups: &'a [LineRange],
    /// Pieces of the definitions the query names (with their bodies and members).
    targets: Vec<bool>,
    /// The language's line comment, for elision markers.
    comment: &'static str,
}

/// Which pieces belong to a definition the query names: the definition's own piece and every
/// piece under it.
fn targets(text: &str, pieces: &[Piece], named: &[&str]) -> Vec<bool> {
    let mut t: Vec<bool> = pieces.iter().map(|p| p.name.is_some_and(|(a, b)| named.contains(&&text[a..b]))).collect();
    // Parents come before their children.
    for i in 0..pieces.len() {
        if let Some(p) = pieces[i].parent
            && t[p]
        {
            t[i] = true;
        }
    }
    t
}

/// Orders the pieces, then keeps the longest prefix that fits. Returns the text and which
/// lines are shown.
fn select(
    units: &Units<'_>,
    query_words: &[String],
    budget: usize,
    count: &dyn Count,
    tokens_per_byte: f64,
) -> Option<(String, Vec<bool>)> {
    let (lines, pieces, groups) = (units.lines, units.pieces, units.groups);
    // Which of the query's words each line holds, as bits: the text is read once, pieces and
    // bodies then only combine their lines' bits (words never span lines).
    let stride = query_words.len().div_ceil(64);
    let mut line_hits = vec![0u64; lines.len() * stride];
    if stride > 0 {
        let may_hold = lines_that_may_hold(lines, query_words);
        for (i, line) in lines.iter().enumerate().filter(|&(i, _)| may_hold[i]) {
            let hits = &mut line_hits[i * stride..(i + 1) * stride];
            each_word(line, &mut |w| {
                if let Ok(k) = query_words.binary_search_by(|q| q.as_str().cmp(w)) {
                    hits[k / 64] |= 1 << (k % 64);
                }
            });
        }
    }
    // Share of the query's words found in some lines.
    let mut seen = vec![0u64; stride];
    let mut relevance = |rows: &mut dyn Iterator<Item = usize>| -> f64 {
        if stride == 0 {
            return 0.0;
        }
        seen.fill(0);
        for i in rows {
            for (s, h) in seen.iter_mut().zip(&line_hits[i * stride..(i + 1) * stride]) {
                *s |= h;
            }
        }
        let found: u32 = seen.iter().map(|s| s.count_ones()).sum();
        found as f64 / query_words.len() as f64
    };
    // Each line's text is counted for the first piece that covers it only, so that items
    // sharing one long line (minified code) cannot make this quadratic.
    let mut owned = vec![false; lines.len()];
    let mut piece_bytes = Vec::with_capacity(pieces.len());
    let mut piece_rel = Vec::with_capacity(pieces.len());
    for p in pieces {
        let mut rows = Vec::new();
        for &(a, b) in &p.lines {
            let b = b.min(lines.len() - 1);
            for (i, o) in owned.iter_mut().enumerate().take(b + 1).skip(a) {
                if !std::mem::replace(o, true) {
                    rows.push(i);
                }
            }
        }
        piece_bytes.push(rows.iter().map(|&i| lines[i].len() + 1).sum::<usize>());
        piece_rel.push(relevance(&mut rows.into_iter()));
    }
    let group_rel: Vec<f64> = groups
        .iter()
        .map(|&(a, b)| if query_words.is_empty() || a > b { 0.0 } else { relevance(&mut (a..=b.min(lines.len() - 1))) })
        .collect();
    // The pieces that hold a definition the query names (its module, its class): their own
    // imports are the named definition's too.
    let mut encloses = vec![false; pieces.len()];
    for (i, p) in pieces.iter().enumerate() {
        if units.targets[i] && p.parent.is_none_or(|q| !units.targets[q]) {
            let mut up = p.parent;
            while let Some(q) = up {
                encloses[q] = true;
                up = pieces[q].parent;
            }
        }
    }
    let score: Vec<f64> = pieces
        .iter()
        .zip(&piece_rel)
        .enumerate()
        .map(|(i, (p, &rel))| {
            let line_count: usize = p.lines.iter().map(|(a, b)| (b + 1).saturating_sub(*a)).sum();
            let depth = p.depth as f64;
            match p.kind {
                PieceKind::Import if p.parent.is_none() => 100.0,
                // The signature of the definition the query names,
                _ if units.targets[i] && p.parent.is_none_or(|q| !units.targets[q]) => 95.0 - 0.1 * depth,
                // then the nested imports in it and around it (its module's, its class's), which
                // bring the headers they sit under,
                PieceKind::Import if units.targets[i] || p.parent.is_some_and(|q| encloses[q]) => 92.0,
                // then the rest of that definition, whole, from its start,
                _ if units.targets[i] => 90.0 - 0.001 * p.seq.min(1000) as f64 - depth,
                // then the other nested imports (in other bodies, under `if __name__ ==
                // "__main__":`, in a module); without a query, right after the top-level ones.
                PieceKind::Import => 85.0,
                // Compact signatures first: many of them say more than one long definition.
                PieceKind::Signature => 60.0 - 2.0 * depth + 20.0 * rel - 0.2 * (line_count.min(20) as f64),
                // Without a query, a doc comment's details and examples wait for the bodies.
                PieceKind::Doc if p.detail && query_words.is_empty() => 15.0 - 0.001 * p.seq.min(1000) as f64,
                PieceKind::Doc => 30.0 + 20.0 * rel - 0.001 * p.seq.min(1000) as f64,
                // Statements. Without a query, whole bodies after every signature, shortest
                // first, each body's statements together (equal scores keep input order);
                // with one, bodies about it first and matching statements first within them.
                PieceKind::Body => {
                    let (body_lines, body_rel) = p.group.map_or((line_count, rel), |g| {
                        (groups[g].1 + 1 - groups[g].0.min(groups[g].1 + 1), group_rel[g])
                    });
                    let seq = p.seq.min(1000) as f64;
                    if query_words.is_empty() {
                        38.0 + 22.0 / (1.0 + body_lines as f64 / 5.0)
                    } else {
                        20.0 + 15.0 * body_rel + 15.0 * rel - 0.001 * seq
                    }
                }
                PieceKind::Other => 12.0 + 30.0 * rel,
            }
        })
        .collect();
    let mut by_score: Vec<usize> = (0..pieces.len()).collect();
    by_score.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let order = ancestors_first(&by_score, &|c| pieces[c].parent);
    // A function's skeleton shown without all of its body brings an elision line.
    let mut has_body = vec![false; pieces.len()];
    for c in pieces {
        if let (Some(p), Some(_)) = (c.parent, c.group) {
            has_body[p] = true;
        }
    }
    let marker_bytes = elision("        ", units.comment, 10, false).len() + 1;
    let est: Vec<usize> = order
        .iter()
        .map(|&p| {
            let bytes = piece_bytes[p] + if has_body[p] { marker_bytes } else { 0 };
            (bytes as f64 * tokens_per_byte).ceil() as usize
        })
        .collect();
    let trailing_newline = lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty());
    let render = |chosen: &[usize]| {
        let mut r = render_lines(units, chosen);
        // A piece that runs to the end of the input may already show the final empty line.
        if trailing_newline && !r.text.is_empty() && !r.shown[lines.len() - 1] {
            r.text.push('\n');
        }
        r
    };
    let measure = |r: &Rendering| {
        let n = count.count_spliced(&r.text, &r.runs);
        debug_assert_eq!(n, count.count(&r.text), "the runs of a rendering are not copies of the input");
        n
    };
    let (_, out) = fit_units(&order, &est, &|p| pieces[p].parent, &render, &measure, budget)?;
    Some((out.text, out.shown))
}

/// Which lines may hold one of the (lower-case) `words` as a word or as a part of an
/// identifier, a cheap filter before [`each_word`] reads them: an ASCII line only if a word
/// occurs in it as a substring, ignoring ASCII case (every part [`each_word`] gives of an
/// ASCII line is such a substring), and every line with other characters, whose lower case
/// may differ in more than ASCII letters.
fn lines_that_may_hold(lines: &[&str], words: &[String]) -> Vec<bool> {
    let finders: Vec<memchr::memmem::Finder<'_>> =
        words.iter().filter(|w| w.is_ascii()).map(|w| memchr::memmem::Finder::new(w.as_bytes())).collect();
    let mut lower = Vec::new();
    lines
        .iter()
        .map(|line| {
            if !line.is_ascii() {
                return true;
            }
            lower.clear();
            lower.extend_from_slice(line.as_bytes());
            lower.make_ascii_lowercase();
            finders.iter().any(|f| f.find(&lower).is_some())
        })
        .collect()
}

/// A candidate output: its text, which input lines it shows, and where it copies the input
/// (`(at, start, len)`: `text[at..at + len]` is `input[start..start + len]`), for the counter.
#[derive(Default)]
struct Rendering {
    text: String,
    shown: Vec<bool>,
    runs: Vec<(usize, usize, usize)>,
}

/// The chosen pieces' lines in input order; where a shown function's body lost lines, one
/// comment line says how many (`// … 12 lines omitted`, `# …` in Python), indented like them.
fn render_lines(units: &Units<'_>, chosen: &[usize]) -> Rendering {
    let (lines, pieces) = (units.lines, units.pieces);
    let n = lines.len();
    let mut kept = vec![false; n];
    for &p in chosen {
        for &(a, b) in &pieces[p].lines {
            for k in kept.iter_mut().take(b.min(n - 1) + 1).skip(a) {
                *k = true;
            }
        }
    }
    // Blank lines survive between two kept lines.
    let mut next_kept = vec![false; n + 1];
    for i in (0..n).rev() {
        next_kept[i] = if lines[i].trim().is_empty() { next_kept[i + 1] } else { kept[i] };
    }
    // Blank lines inside a kept piece stay (they may be inside a string literal); others
    // survive, one per run, between two kept lines.
    let mut shown = kept.clone();
    let mut prev_kept = false;
    let mut blank_shown = false;
    for i in 0..n {
        if lines[i].trim().is_empty() {
            if !kept[i] && prev_kept && next_kept[i + 1] && !blank_shown {
                shown[i] = true;
            }
            blank_shown |= shown[i];
        } else {
            prev_kept = kept[i];
            blank_shown = false;
        }
    }
    // Interiors of the bodies whose function is shown: dropped lines there get a marker.
    let mut body_of = vec![None; n];
    let mut skeleton_shown = vec![false; units.groups.len()];
    let mut is_chosen = vec![false; pieces.len()];
    for &p in chosen {
        is_chosen[p] = true;
    }
    for c in pieces {
        if let (Some(p), Some(g)) = (c.parent, c.group)
            && is_chosen[p]
        {
            skeleton_shown[g] = true;
        }
    }
    for (g, &(a, b)) in units.groups.iter().enumerate() {
        if skeleton_shown[g] && a <= b {
            for slot in body_of.iter_mut().take(b.min(n - 1) + 1).skip(a) {
                *slot = Some(g);
            }
        }
    }
    let cr = lines.first().is_some_and(|l| l.ends_with('\r'));
    let mut out = String::new();
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut first = true;
    // A run of dropped body lines: (group, lines, indentation of its first line).
    let mut run: Option<(usize, usize, &str)> = None;
    let emit = |out: &mut String, first: &mut bool, line: &str| {
        if !*first {
            out.push('\n');
        }
        *first = false;
        out.push_str(line);
    };
    for i in 0..n {
        if !shown[i] {
            if let Some(g) = body_of[i]
                && !lines[i].trim().is_empty()
            {
                match &mut run {
                    Some((rg, k, _)) if *rg == g => *k += 1,
                    _ => {
                        if let Some((_, k, indent)) = run.take() {
                            emit(&mut out, &mut first, &elision(indent, units.comment, k, cr));
                        }
                        let indent = &lines[i][..lines[i].len() - lines[i].trim_start().len()];
                        run = Some((g, 1, indent));
                    }
                }
            }
            continue;
        }
        if let Some((_, k, indent)) = run.take() {
            emit(&mut out, &mut first, &elision(indent, units.comment, k, cr));
        }
        emit(&mut out, &mut first, lines[i]);
        // The line, and the line break before it when the line before it is shown too.
        let (at, start, len) = (out.len() - lines[i].len(), units.line_starts[i], lines[i].len());
        match runs.last_mut() {
            Some(last) if last.0 + last.2 + 1 == at && last.1 + last.2 + 1 == start => last.2 += len + 1,
            _ => runs.push((at, start, len)),
        }
    }
    if let Some((_, k, indent)) = run.take() {
        emit(&mut out, &mut first, &elision(indent, units.comment, k, cr));
    }
    Rendering { text: out, shown, runs }
}

/// The marker of `k` dropped body lines: a line comment, so the output still parses (with the
/// input's `\r` when its lines end in `\r\n`).
fn elision(indent: &str, comment: &str, k: usize, cr: bool) -> String {
    let unit = if k == 1 { "line" } else { "lines" };
    let cr = if cr { "\r" } else { "" };
    format!("{indent}{comment} \u{2026} {k} {unit} omitted{cr}")
}

/// True for the lines this module adds to mark dropped body lines; see [`elision`].
pub fn is_elision_line(line: &str) -> bool {
    let t = line.trim();
    let rest = t.strip_prefix("// \u{2026} ").or_else(|| t.strip_prefix("# \u{2026} "));
    rest.is_some_and(|r| {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && matches!(&r[digits..], " line omitted" | " lines omitted")
    })
}

fn information(lines: &[&str], pieces: &[Piece], shown: &[bool]) -> f64 {
    let mut weight = vec![1.0f64; lines.len()];
    for p in pieces {
        if matches!(p.kind, PieceKind::Import | PieceKind::Signature) {
            for &(a, b) in &p.lines {
                for w in weight.iter_mut().take(b.min(lines.len() - 1) + 1).skip(a) {
                    *w = 3.0;
                }
            }
        }
    }
    let mut total = 0.0;
    let mut kept = 0.0;
    for (i, l) in lines.iter().enumerate() {
        let w = weight[i] * l.trim().len() as f64;
        total += w;
        if shown[i] {
            kept += w;
        }
    }
    (kept / total.max(1.0)).min(0.999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    /// Top-level items as (kind, first byte, last byte, first row).
    fn items(trees: &[Tree]) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        for t in trees {
            let root = t.root_node();
            let mut c = root.walk();
            for n in root.named_children(&mut c) {
                let kind = n.kind().to_string();
                out.push((kind, n.start_byte(), n.end_byte(), n.start_position().row));
            }
        }
        out
    }

    #[test]
    fn c_and_java_are_left_to_the_outline() {
        let c = "#include <stdio.h>\n\nstatic int add(int a, int b) {\n    int s = a + b;\n    printf(\"%d\\n\", s);\n    return s;\n}\n\nint main(void) {\n    return add(1, 2);\n}\n";
        assert!(compress_code(c, None, 12, &|s: &str| s.len() / 4).is_none());
        // Java whose bodies the TypeScript grammar reads (only its signatures are errors).
        let body = "        if (count > limit) {\n            count = count - limit;\n            total = total + count;\n        }\n".repeat(8);
        let java = format!(
            "package com.acme;\n\npublic class Counter implements Runnable {{\n    private int count;\n    public void run() {{\n{body}    }}\n    public int next() {{\n{body}        return count;\n    }}\n}}\n"
        );
        assert!(compress_code(&java, None, 60, &|s: &str| s.len() / 4).is_none());
    }

    #[test]
    fn a_large_file_parsed_as_two_halves_has_the_items_of_the_whole() {
        let mut text = String::from("use std::fmt;\n\n");
        let mut i = 0;
        while text.len() < 2 * SPLIT_PARSE_BYTES {
            text.push_str(&format!(
                "/// Item {i}.\npub struct S{i} {{\n    v: u32,\n}}\n\nimpl S{i} {{\n    pub fn get(&self) -> u32 {{\n        self.v + {i}\n    }}\n}}\n\n"
            ));
            i += 1;
        }
        let halves = parse_trees(Lang::Rust, &text).unwrap();
        assert_eq!(halves.len(), 2, "a file this large is parsed in two halves");
        let whole = vec![parse(Lang::Rust, &text).unwrap()];
        assert_eq!(items(&halves), items(&whole));

        // A string from just after the middle to the end: whatever the cut, the same items.
        let mid = text.len() / 2;
        let line = mid + text[mid..].find("\n\n").unwrap() + 1;
        let mut tricky = text.clone();
        tricky.insert_str(line, "const RAW: &str = r\"\n");
        let end = tricky.len() - 1;
        tricky.insert_str(end, "\";\n");
        let trees = parse_trees(Lang::Rust, &tricky).unwrap();
        assert_eq!(items(&trees), items(&[parse(Lang::Rust, &tricky).unwrap()]));
    }

    const RUST: &str = r#"//! Inventory service.
use std::collections::HashMap;
use std::fmt;

/// One item in stock.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub quantity: u32,
}

/// Stock keeping.
pub struct Inventory {
    items: HashMap<String, Item>,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Self {
        let items = HashMap::new();
        let inventory = Inventory { items };
        println!("created an empty inventory with {} items", inventory.items.len());
        println!("this line only makes the body longer than the signature");
        inventory
    }

    /// Adds `quantity` of `name`.
    pub fn add(&mut self, name: &str, quantity: u32) {
        let entry = self.items.entry(name.to_string()).or_insert(Item {
            name: name.to_string(),
            quantity: 0,
        });
        entry.quantity += quantity;
        println!("added {quantity} of {name}, now {}", entry.quantity);
        if entry.quantity > 1000 {
            println!("warning: {name} is overstocked");
        }
    }

    /// Removes up to `quantity` of `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str, quantity: u32) -> u32 {
        let Some(entry) = self.items.get_mut(name) else {
            return 0;
        };
        let removed = entry.quantity.min(quantity);
        entry.quantity -= removed;
        if entry.quantity == 0 {
            self.items.remove(name);
        }
        removed
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.items.keys().collect();
        names.sort();
        for name in names {
            let item = &self.items[name];
            writeln!(f, "{}: {}", item.name, item.quantity)?;
        }
        writeln!(f, "total kinds: {}", self.items.len())?;
        Ok(())
    }
}

fn restock_threshold(kind: &str) -> u32 {
    match kind {
        "bolts" => 500,
        "nuts" => 400,
        "washers" => 300,
        "screws" => 250,
        "nails" => 200,
        _ => 100,
    }
}
"#;

    const PYTHON: &str = r#""""Inventory service."""
import os
import json
from collections import defaultdict


class Inventory:
    """Stock keeping."""

    def __init__(self, path):
        self.path = path
        self.items = defaultdict(int)
        if os.path.exists(path):
            with open(path) as f:
                for name, quantity in json.load(f).items():
                    self.items[name] = quantity
        print("loaded", len(self.items), "items from", path)

    def add(self, name, quantity):
        """Adds quantity of name."""
        self.items[name] += quantity
        if self.items[name] > 1000:
            print("warning:", name, "is overstocked")
        self.save()
        return self.items[name]

    def save(self):
        with open(self.path, "w") as f:
            json.dump(self.items, f, indent=2, sort_keys=True)
        print("saved", len(self.items), "items to", self.path)
        print("this line only makes the body longer than the signature")


def restock_threshold(kind):
    if kind == "bolts":
        return 500
    if kind == "nuts":
        return 400
    if kind == "washers":
        return 300
    return 100


def main():
    inventory = Inventory(os.environ.get("INVENTORY", "inventory.json"))
    inventory.add("bolts", 10)
    inventory.add("nuts", 20)
    for name, quantity in sorted(inventory.items.items()):
        print(name, quantity, restock_threshold(name))
"#;

    const JS: &str = r#"import fs from 'fs';
import { join } from 'path';

/** Stock keeping. */
export class Inventory {
  constructor(path) {
    this.path = path;
    this.items = new Map();
    if (fs.existsSync(path)) {
      const data = JSON.parse(fs.readFileSync(path, 'utf8'));
      for (const [name, quantity] of Object.entries(data)) {
        this.items.set(name, quantity);
      }
    }
  }

  add(name, quantity) {
    const now = (this.items.get(name) || 0) + quantity;
    this.items.set(name, now);
    if (now > 1000) {
      console.warn(`${name} is overstocked`);
    }
    this.save();
    return now;
  }

  save() {
    const data = Object.fromEntries(this.items);
    fs.writeFileSync(this.path, JSON.stringify(data, null, 2));
    console.log(`saved ${this.items.size} items to ${this.path}`);
    console.log('this line only makes the body longer than the signature');
  }
}

export function restockThreshold(kind) {
  switch (kind) {
    case 'bolts':
      return 500;
    case 'nuts':
      return 400;
    default:
      return 100;
  }
}

const report = (inventory) => {
  const lines = [];
  for (const [name, quantity] of inventory.items) {
    lines.push(`${name}: ${quantity}`);
  }
  lines.sort();
  return lines.join('\n');
};

export default report;
"#;

    const TS: &str = r#"import { readFileSync, writeFileSync } from 'fs';
import type { Stats } from './stats';

export interface Item {
  name: string;
  quantity: number;
}

export class Inventory {
  private items: Map<string, Item> = new Map();

  constructor(private readonly path: string) {
    const data: Record<string, number> = JSON.parse(readFileSync(path, 'utf8'));
    for (const [name, quantity] of Object.entries(data)) {
      this.items.set(name, { name, quantity });
    }
    console.log(`loaded ${this.items.size} items from ${path}`);
  }

  add(name: string, quantity: number): number {
    const item = this.items.get(name) ?? { name, quantity: 0 };
    item.quantity += quantity;
    this.items.set(name, item);
    if (item.quantity > 1000) {
      console.warn(`${name} is overstocked`);
    }
    return item.quantity;
  }

  save(): void {
    const data: Record<string, number> = {};
    for (const item of this.items.values()) {
      data[item.name] = item.quantity;
    }
    writeFileSync(this.path, JSON.stringify(data, null, 2));
  }
}

export function stats(inventory: Inventory): Stats {
  const total = 0;
  console.log('computing stats for the inventory, this takes a moment');
  console.log('this line only makes the body longer than the signature');
  console.log('and so does this one, with a few more words in it');
  return { total } as Stats;
}
"#;

    const GO: &str = r#"// Package inventory keeps stock.
package inventory

import (
	"encoding/json"
	"fmt"
	"os"
)

// Item is one item in stock.
type Item struct {
	Name     string
	Quantity int
}

// Inventory keeps items by name.
type Inventory struct {
	path  string
	items map[string]*Item
}

// Open loads an inventory from a file.
func Open(path string) (*Inventory, error) {
	inv := &Inventory{path: path, items: map[string]*Item{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &inv.items); err != nil {
		return nil, err
	}
	return inv, nil
}

// Add adds quantity of name.
func (inv *Inventory) Add(name string, quantity int) int {
	item, ok := inv.items[name]
	if !ok {
		item = &Item{Name: name}
		inv.items[name] = item
	}
	item.Quantity += quantity
	if item.Quantity > 1000 {
		fmt.Println("warning:", name, "is overstocked")
	}
	return item.Quantity
}

// Save writes the inventory back.
func (inv *Inventory) Save() error {
	data, err := json.MarshalIndent(inv.items, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println("saving", len(inv.items), "items to", inv.path)
	return os.WriteFile(inv.path, data, 0o644)
}
"#;

    fn check(lang: Lang, src: &str, must_keep_2x: &[&str], must_keep_4x: &[&str]) {
        assert_eq!(guess_languages(src).first(), Some(&lang), "language of {src}");
        assert!(!parse(lang, src).unwrap().root_node().has_error());
        for (ratio, must) in [(0.5, must_keep_2x), (0.25, must_keep_4x)] {
            let budget = (approx(src) as f64 * ratio) as usize;
            let p = compress_code(src, None, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget, "{lang:?} over budget at {ratio}");
            assert!(approx(&p.text) * 100 >= budget * 80, "{lang:?} far under budget at {ratio}: {}", p.text);
            let tree = parse(lang, &p.text).unwrap();
            assert!(!tree.root_node().has_error(), "{lang:?} at {ratio} does not parse:\n{}", p.text);
            for line in must {
                assert!(p.text.lines().any(|l| l == *line), "{lang:?} at {ratio} lost {line:?}:\n{}", p.text);
            }
            // Every output line is an input line, in input order.
            let input: Vec<&str> = src.split('\n').collect();
            let mut at = 0;
            for l in p.text.split('\n').filter(|l| !is_elision_line(l)) {
                at += input[at..].iter().position(|x| *x == l).expect("line from the input") + 1;
            }
            assert!(p.kept_information > 0.0 && p.kept_information < 1.0);
        }
    }

    #[test]
    fn rust_keeps_uses_and_signatures() {
        let sigs = [
            "use std::collections::HashMap;",
            "use std::fmt;",
            "impl Inventory {",
            "    pub fn add(&mut self, name: &str, quantity: u32) {",
            "    pub fn remove(&mut self, name: &str, quantity: u32) -> u32 {",
            "fn restock_threshold(kind: &str) -> u32 {",
        ];
        check(Lang::Rust, RUST, &sigs, &[sigs[0], sigs[1], sigs[2], sigs[5]]);
    }

    #[test]
    fn python_keeps_imports_and_signatures() {
        let sigs = [
            "import os",
            "import json",
            "from collections import defaultdict",
            "class Inventory:",
            "    def add(self, name, quantity):",
            "    def save(self):",
            "def restock_threshold(kind):",
            "def main():",
        ];
        check(Lang::Python, PYTHON, &sigs, &[sigs[0], sigs[1], sigs[2], sigs[3], sigs[6]]);
    }

    #[test]
    fn javascript_keeps_imports_and_signatures() {
        let sigs = [
            "import fs from 'fs';",
            "import { join } from 'path';",
            "export class Inventory {",
            "  add(name, quantity) {",
            "export function restockThreshold(kind) {",
        ];
        check(Lang::JavaScript, JS, &sigs, &sigs[..3]);
    }

    #[test]
    fn typescript_keeps_imports_and_signatures() {
        let sigs = [
            "import { readFileSync, writeFileSync } from 'fs';",
            "import type { Stats } from './stats';",
            "export class Inventory {",
            "  add(name: string, quantity: number): number {",
            "export function stats(inventory: Inventory): Stats {",
        ];
        check(Lang::TypeScript, TS, &sigs, &sigs[..3]);
    }

    #[test]
    fn go_keeps_imports_and_signatures() {
        let sigs = [
            "package inventory",
            "\t\"encoding/json\"",
            "func Open(path string) (*Inventory, error) {",
            "func (inv *Inventory) Add(name string, quantity int) int {",
            "func (inv *Inventory) Save() error {",
        ];
        // At the tightest budget the elision lines of the first bodies take the room of
        // the last signatures.
        check(Lang::Go, GO, &sigs, &sigs[..3]);
    }

    #[test]
    fn query_brings_the_matching_body() {
        let budget = approx(RUST) / 2;
        let p = compress_code(RUST, Some("how is the restock threshold for washers chosen"), budget, &approx).unwrap();
        assert!(p.text.contains("\"washers\" => 300,"), "{}", p.text);
        assert!(approx(&p.text) <= budget);
    }

    #[test]
    fn unknown_text_is_refused_and_fitting_code_unchanged() {
        assert!(compress_code("Just a sentence about nothing in particular.", None, 3, &approx).is_none());
        let java = "package demo;\n\npublic class Main {\n    private int count;\n\n    public static void main(String[] args) {\n        System.out.println(\"hi\");\n        int[] xs = new int[] {1, 2};\n        for (int x : xs) {\n            count += x;\n        }\n    }\n}\n";
        assert!(compress_code(java, None, 10, &approx).is_none());
        let p = compress_code(GO, None, 100_000, &approx).unwrap();
        assert_eq!(p.text, GO);
        assert_eq!(p.kept_information, 1.0);
    }

    #[test]
    fn every_budget_gives_parseable_input_lines_within_budget() {
        let samples = [
            (Lang::Rust, RUST),
            (Lang::Python, PYTHON),
            (Lang::JavaScript, JS),
            (Lang::TypeScript, TS),
            (Lang::Go, GO),
        ];
        for (lang, src) in samples {
            let n = approx(src);
            for pct in (2..100).step_by(7) {
                let budget = n * pct / 100;
                for query in [None, Some("quantity overstocked warning")] {
                    let Some(p) = compress_code(src, query, budget, &approx) else {
                        assert!(budget < 20, "{lang:?} refused at {pct}%");
                        continue;
                    };
                    assert!(approx(&p.text) <= budget);
                    assert!(!p.text.is_empty());
                    let tree = parse(lang, &p.text).unwrap();
                    assert!(!tree.root_node().has_error(), "{lang:?} at {pct}%:\n{}", p.text);
                    assert!(p.retained_indices.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }
    }

    #[test]
    fn python_decorators_nested_classes_and_docstrings_stay_valid() {
        let src = r#"import functools


def traced(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        print("calling", f.__name__, args, kwargs)
        result = f(*args, **kwargs)
        print("returned", result)
        return result
    return wrapper


class Outer:
    """Outer docs
    span two lines.

    And a blank line inside the docstring.
    """

    class Inner:
        def method(self):
            value = 1
            value += 2
            value *= 3
            return value

    @traced
    def run(self, n):
        total = 0
        for i in range(n):
            total += i
        return total
"#;
        for pct in [20, 35, 50, 70] {
            let budget = approx(src) * pct / 100;
            let p = compress_code(src, None, budget, &approx).unwrap();
            let tree = parse(Lang::Python, &p.text).unwrap();
            assert!(!tree.root_node().has_error(), "at {pct}%:\n{}", p.text);
            assert!(p.text.starts_with("import functools"));
        }
    }

    #[test]
    fn the_definition_the_query_names_is_kept_whole_and_cut_bodies_are_marked() {
        let save = &GO[GO.find("func (inv *Inventory) Save() error {").unwrap()..];
        let save = &save[..save.find("\n}\n").unwrap() + 2];
        let budget = approx(GO) * 45 / 100;
        let q = "How is the method `Save` implemented?";
        let p = compress_code(GO, Some(q), budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        assert!(p.text.contains(save), "{}", p.text);
        // Other bodies were cut, and say so with a comment the parser accepts.
        assert!(p.text.lines().any(is_elision_line), "{}", p.text);
        assert!(!parse(Lang::Go, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn python_imports_under_type_checking_and_try_are_imports() {
        let body: String = (0..40).map(|i| format!("    total += {i} * weight\n")).collect();
        let src = format!(
            "import os\nimport typing\n\nif typing.TYPE_CHECKING:\n    from hashlib import _Hash\n\n\
             try:\n    import brotli\nexcept ImportError:\n    brotli = None\n\n\n\
             def total(weight):\n    total = 0\n{body}    return total\n"
        );
        let p = compress_code(&src, None, approx(&src) / 3, &approx).unwrap();
        for line in ["    from hashlib import _Hash", "    import brotli", "    brotli = None"] {
            assert!(p.text.lines().any(|l| l == line), "{line}:\n{}", p.text);
        }
        assert!(p.text.lines().any(is_elision_line), "{}", p.text);
        assert!(!parse(Lang::Python, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn python_imports_nested_in_main_blocks_and_bodies_survive_with_their_headers() {
        let body: String = (0..40).map(|i| format!("    total += {i} * weight\n")).collect();
        let main: String = (0..30).map(|i| format!("    print(total({i}), {i} * 2, 'a line of output')\n")).collect();
        let src = format!(
            "import os\n\n\ndef total(weight):\n    \"\"\"Sums weights.\"\"\"\n    total = 0\n{body}    \
             if os.environ.get('FAST'):\n        try:\n            import numpy as np\n        \
             except ImportError:\n            np = None\n        total += 1\n    return total\n\n\n\
             if __name__ == \"__main__\":\n    print('starting the report')\n    import sys\n    \
             from pathlib import Path\n{main}    sys.exit(0)\n"
        );
        let main_imports = ["    import sys", "    from pathlib import Path", "if __name__ == \"__main__\":"];
        for (pct, query) in [(40, None), (25, None), (25, Some("how is `total` computed"))] {
            let budget = approx(&src) * pct / 100;
            let p = compress_code(&src, query, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget);
            // The import inside `total` always; the `__main__` block's only without the query:
            // with it, their room goes to the body of the function it asks about.
            assert!(p.text.lines().any(|l| l == "            import numpy as np"), "{pct}%:\n{}", p.text);
            for line in main_imports {
                assert_eq!(p.text.lines().any(|l| l == line), query.is_none(), "{pct}% {line}:\n{}", p.text);
            }
            // What was cut around them is marked, and the result is still Python.
            assert!(p.text.lines().any(is_elision_line), "{}", p.text);
            let tree = parse(Lang::Python, &p.text).unwrap();
            assert!(!tree.root_node().has_error(), "{pct}%:\n{}", p.text);
        }
    }

    #[test]
    fn the_imports_of_the_module_that_holds_the_named_test_come_with_it() {
        let helpers: String = (0..8)
            .map(|i| {
                format!(
                    "pub fn helper_{i}(x: u32) -> u32 {{\n    use std::ops::Mul;\n    let y = x.mul({i});\n    \
                     y + {i}\n}}\n\n"
                )
            })
            .collect();
        let src = format!(
            "use std::collections::HashMap;\n\n{helpers}#[cfg(test)]\nmod tests {{\n    use super::*;\n    \
             use std::collections::BTreeMap;\n\n    #[test]\n    fn counts_words() {{\n        \
             let mut seen = BTreeMap::new();\n        for w in [\"a\", \"b\", \"a\"] {{\n            \
             *seen.entry(w).or_insert(0) += 1;\n        }}\n        assert_eq!(seen[\"a\"], 2);\n        \
             assert_eq!(helper_1(3), 4);\n    }}\n}}\n"
        );
        let counts = &src[src.find("    #[test]").unwrap()..src.rfind("}\n").unwrap()];
        let budget = approx(&src) * 35 / 100;
        let p = compress_code(&src, Some("How is the function `counts_words` implemented?"), budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        assert!(p.text.contains(counts), "{}", p.text);
        for line in ["    use super::*;", "    use std::collections::BTreeMap;"] {
            assert!(p.text.lines().any(|l| l == line), "lost {line}:\n{}", p.text);
        }
        // The helpers' own imports wait for the named test.
        assert!(p.text.matches("use std::ops::Mul;").count() < 8, "{}", p.text);
        assert!(!parse(Lang::Rust, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn a_long_class_docstring_does_not_crowd_out_the_method_the_query_names() {
        let doc: String =
            (0..40).map(|i| format!("    Argument number {i} of the panel, described at length.\n")).collect();
        let others: String = (0..12)
            .map(|i| {
                format!(
                    "    def other_{i}(self):\n        value = self.width * {i}\n        \
                     return value + {i}\n\n"
                )
            })
            .collect();
        let src = format!(
            "from typing import Optional\n\n\nclass Panel:\n    \"\"\"A panel.\n\n{doc}    \"\"\"\n\n\
             {others}    @classmethod\n    def fit(\n        cls,\n        width: Optional[int] = None,\n    \
             ) -> \"Panel\":\n        \"\"\"Fits the panel.\"\"\"\n        return cls(width=width)\n"
        );
        let budget = approx(&src) / 4;
        let p = compress_code(&src, Some("How is the method `fit` implemented?"), budget, &approx).unwrap();
        let fit = &src[src.find("    @classmethod").unwrap()..];
        assert!(p.text.contains(fit), "{}", p.text);
        assert!(approx(&p.text) <= budget);
        assert!(!parse(Lang::Python, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn rust_uses_inside_a_const_block_are_kept() {
        let bodies: String = (0..20)
            .map(|i| {
                format!(
                    "    fn call_{i}(&mut self) -> u32 {{\n        let x = {i} * 3;\n        \
                     let y = x + self.base();\n        y * 2\n    }}\n\n"
                )
            })
            .collect();
        let src = format!(
            "use std::fmt;\n\nconst _: () = {{\n    use crate::serve;\n\n    impl Router {{\n{bodies}    }}\n}};\n"
        );
        let budget = approx(&src) / 4;
        let p = compress_code(&src, None, budget, &approx).unwrap();
        assert!(p.text.lines().any(|l| l == "    use crate::serve;"), "{}", p.text);
        assert!(approx(&p.text) <= budget);
        assert!(!parse(Lang::Rust, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn without_a_query_whole_short_functions_come_before_a_docs_examples() {
        // One type with a long doc comment (a summary, then details and an example), and
        // short functions: at half the tokens, every function is kept whole and it is the
        // example that goes, not their bodies.
        let example: String = (0..30).map(|i| format!("/// let value_{i} = Config::load(\"path/{i}\");\n")).collect();
        let functions: String = (0..6)
            .map(|i| format!("pub fn step_{i}(x: u32) -> u32 {{\n    let y = x * {i};\n    y + 1\n}}\n\n"))
            .collect();
        let src = format!(
            "use std::fs;\n\n/// The settings.\n/// Loaded once at start.\n///\n/// # Example\n///\n/// ```\n{example}/// ```\n\
             pub struct Config {{\n    pub path: String,\n}}\n\n{functions}"
        );
        let budget = approx(&src) / 2;
        let p = compress_code(&src, None, budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        for i in 0..6 {
            let whole = format!("pub fn step_{i}(x: u32) -> u32 {{\n    let y = x * {i};\n    y + 1\n}}");
            assert!(p.text.contains(&whole), "step_{i} not whole:\n{}", p.text);
        }
        assert!(p.text.contains("/// The settings.\n/// Loaded once at start.\n"), "{}", p.text);
        assert!(p.text.contains("pub struct Config {"), "{}", p.text);
        assert!(!p.text.contains("value_29"), "{}", p.text);
        // With a query about the example, the example comes first again.
        let p = compress_code(&src, Some("load config value path"), budget, &approx).unwrap();
        assert!(p.text.contains("value_0"), "{}", p.text);
    }

    #[test]
    fn renderings_counted_from_the_inputs_pieces_count_exactly() {
        // Bodies cut at several budgets: elision lines, blank lines and CRLF between copies.
        for src in [RUST.to_string(), RUST.replace('\n', "\r\n"), GO.to_string()] {
            let counter = crate::tokens::PieceCounter::new(crate::tokens::Encoding::Cl100k, &src);
            let total = counter.source_tokens();
            for budget in [total / 5, total / 3, total / 2] {
                let p = compress_code(&src, Some("restock threshold"), budget, &counter).unwrap();
                assert!(crate::tokens::Encoding::Cl100k.count(&p.text) <= budget, "{budget}: {}", p.text);
            }
        }
    }

    #[test]
    fn the_line_filter_keeps_every_line_whose_words_match() {
        let lines = [
            "let total = updateEntries(x);",
            "fn update_entries_total() {}",
            "    // nothing here",
            "let ÉTAT = Total;",
            "TOTALLY_UNRELATED",
            "",
        ];
        let query: Vec<String> = ["entries", "total", "état"].map(String::from).to_vec();
        let filter = lines_that_may_hold(&lines, &query);
        for (i, line) in lines.iter().enumerate() {
            let holds = words(line).iter().any(|w| query.contains(w));
            assert!(filter[i] || !holds, "line {i} holds a query word but was filtered out: {line}");
        }
        assert!(!filter[2] && !filter[5], "{filter:?}");
    }

    #[test]
    fn crlf_line_endings_survive() {
        let src = GO.replace('\n', "\r\n");
        let budget = approx(&src) / 3;
        let p = compress_code(&src, None, budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        assert!(p.text.contains("func Open(path string) (*Inventory, error) {\r\n"), "{}", p.text);
        // Every line keeps its `\r`, the elision lines included.
        let body: Vec<&str> = p.text.split('\n').collect();
        for l in &body[..body.len() - 1] {
            assert!(l.ends_with('\r'), "{l:?}");
        }
        assert!(body.iter().any(|l| is_elision_line(l)), "{}", p.text);
        assert!(!parse(Lang::Go, &p.text).unwrap().root_node().has_error());
    }

    #[test]
    fn sql_in_a_python_string_is_python_and_a_dump_is_not_parsed() {
        let mut py = String::from(
            "import sqlite3\n\nSCHEMA = \"\"\"\nCREATE TABLE users (\n    id INTEGER PRIMARY KEY\n);\n\"\"\"\n\n",
        );
        for i in 0..8 {
            py.push_str(&format!("def load_{i}(db):\n    rows = db.execute(\"SELECT * FROM users\").fetchall()\n    return [r[{i}] for r in rows]\n\n"));
        }
        let p = compress_code(&py, None, approx(&py) / 2, &approx).expect("parsed as Python");
        assert!(p.text.contains("def load_0(db):"), "{}", p.text);
        let dump = "CREATE TABLE users (\n  id int NOT NULL,\n  name varchar(20)\n);\n\
                    INSERT INTO users VALUES (1,'ann'),(2,'bo');\nINSERT INTO users VALUES (3,'cy');\n";
        assert!(compress_code(&dump.repeat(6), None, 40, &approx).is_none());
    }

    #[test]
    fn huge_lines_are_refused() {
        let a = "a".repeat(1 << 20);
        assert!(compress_code(&a, None, 100, &approx).is_none());
        let minified = "const x = require('y'); ".repeat(44_000);
        assert!(compress_code(&minified, None, 1000, &approx).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn random_edits_of_code_never_panic_and_obey_the_rules(
            sample in 0usize..5,
            cut in 0usize..4000,
            junk in "[ -~\\PC\t\n]{0,30}",
            pct in 5usize..95,
        ) {
            let src = [RUST, PYTHON, JS, TS, GO][sample];
            let mut at = cut.min(src.len());
            while !src.is_char_boundary(at) {
                at -= 1;
            }
            let text = format!("{}{junk}{}", &src[..at], &src[at..]);
            let budget = approx(&text) * pct / 100;
            if let Some(p) = compress_code(&text, Some("quantity"), budget, &approx) {
                proptest::prop_assert!(approx(&p.text) <= budget);
                proptest::prop_assert!(!p.text.is_empty());
                let input: Vec<&str> = text.split('\n').collect();
                let mut pos = 0;
                for l in p.text.split('\n').filter(|l| !is_elision_line(l)) {
                    let found = input[pos..].iter().position(|x| *x == l);
                    proptest::prop_assert!(found.is_some(), "line not from input: {l:?}");
                    pos += found.unwrap_or(0) + 1;
                }
            }
        }
    }
}
