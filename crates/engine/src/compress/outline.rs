//! Code in a language without a grammar here (Java, C, C++, C#, Kotlin, Swift, PHP, Ruby,
//! shell…): whole lines, chosen by the outline the indentation draws.
//!
//! **Units.** Each non-blank line is a unit, except that
//! - a statement whose brackets stay open runs on to the line that closes them (a signature
//!   over several lines is one unit);
//! - a line that opens a block is one unit with the lines that close it (`}`, `end`, `fi`…)
//!   and the lines that continue it at its own indentation (`} else {`, `catch`, `rescue`):
//!   an opener is never shown without its closer, so the braces the input balanced stay
//!   balanced;
//! - a line that is only `{` joins the line above it (Allman style).
//!
//! A line's parent is the nearest line above it with less indentation; a unit is shown only
//! with its parent.
//!
//! **Order.** Imports (`import`, `#include`, `using`, `package`, `require`…) at the top level;
//! with a query, the definitions whose opening line names one of the query's identifiers,
//! whole (a block, or a statement over several lines: `CREATE TABLE order_lines (` … `);`);
//! then every opener (the outline: classes, then their methods, shallower first); then the
//! lines beside them (fields, constants; with a query, those that mention its words first);
//! then body lines, with a query those that mention its words first, then short blocks before
//! long ones, each from its start; comments last. [`fit_units`] keeps the longest prefix that
//! fits, then smaller units after it.
//!
//! **Output.** The kept lines, byte-exact, in input order; each run of dropped lines becomes
//! one line at the run's indentation in the text's own comment syntax (`// … 12 lines omitted`,
//! `# …`, `-- …` or `% …`), the only text added; blank lines only between kept lines, one per run.
//!
//! **YAML** (a CI workflow, a manifest, a schema: [`super::detect::looks_like_yaml`]) is
//! outlined by indentation alone: every `key:` is a parent (not a label), no word closes a
//! block, only `#` starts a comment, and every line holds a value, so lines come shallower
//! first (the document's outline, then its detail), with a query the blocks it names whole and
//! the lines that mention its words before the rest; a document's `---` comes with anything
//! of it, and each document's top-level values (`kind: Service`) right after what the query
//! matches, so documents stay apart and named. Markers are `# …`. A report read the same way
//! (`kubectl describe`: [`super::detect::is_report`]) brings its rows that tell of a failure or a
//! warning (its `Warning` events) up with those top-level values.
//!
//! **XML** ([`super::detect::looks_like_xml`]) nests by its tags, not its indentation: a start
//! tag is one unit with its closing tag (and with its own lines while it is open, attributes one
//! per line), and its values are in its elements' text, so leaves come as YAML's lines do,
//! every element's first child before any's second, an element's tags only with something
//! inside them (or last); with a query, the element around the few lines that say most about
//! it, whole. Markers are `<!-- … N lines omitted -->`, never before the `<?xml` declaration.
//!
//! Not here: languages with a grammar ([`super::code`]), minified code (lines over 16 KiB:
//! `None`).

use super::Packed;
use super::query::QueryWords;
use super::units::{Count, LineUnits, Rendering, ancestors_first};

/// Lines longer than this mean minified or generated code: nothing to outline.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Words that continue a block at its own indentation.
const MIDDLE_WORDS: &[&str] = &["else", "elif", "elsif", "catch", "finally", "rescue", "ensure", "except", "when"];
/// Words that open a block of statements.
const CONTROL_WORDS: &[&str] = &[
    "if",
    "for",
    "foreach",
    "while",
    "do",
    "switch",
    "try",
    "else",
    "case",
    "default",
    "loop",
    "match",
    "unless",
    "until",
    "with",
    "synchronized",
    "select",
    "return",
    "catch",
    "finally",
    "elif",
    "elsif",
    "begin",
    "defer",
    "go",
];
/// Lines that close a block, whole.
const CLOSER_WORDS: &[&str] = &["end", "end;", "fi", "done", "esac", "endif", "endfor", "endwhile", "wend"];
/// Lines that bring in other files or name this one.
const IMPORT_PREFIXES: &[&str] = &[
    "import ",
    "package ",
    "#include",
    "#import",
    "using ",
    "require ",
    "require(",
    "require_relative ",
    "use ",
    "from ",
    "extern crate ",
    "library ",
    "open ",
    "load(",
    "source ",
];

#[derive(Debug, Clone)]
struct Unit {
    /// Line numbers, ascending.
    lines: Vec<usize>,
    parent: Option<usize>,
    /// Indentation of its first line.
    indent: usize,
    depth: usize,
    children: usize,
    import: bool,
    comment: bool,
    /// Its first line (an annotation or comment it took, if any).
    first: usize,
    /// Its own first line.
    head: usize,
}

fn indent_of(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

/// Calls `f` with each character of a line outside strings and comments (`//`, `/* … */` on
/// the line).
fn code_chars(t: &str, mut f: impl FnMut(char)) {
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = ' ';
    // A `/` is passed on once the next character shows it does not open a comment.
    let mut slash = false;
    for c in t.chars() {
        match (quote, comment) {
            (_, true) => comment = !(prev == '*' && c == '/'),
            (Some(q), _) if c == q && prev != '\\' => quote = None,
            (Some(_), _) => {}
            (None, _) => {
                if std::mem::take(&mut slash) {
                    match c {
                        '/' => return,
                        '*' => {
                            comment = true;
                            prev = c;
                            continue;
                        }
                        _ => f('/'),
                    }
                }
                match c {
                    '"' | '\'' | '`' => quote = Some(c),
                    '/' => slash = true,
                    _ => f(c),
                }
            }
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    if slash {
        f('/');
    }
}

/// The change in bracket depth over a line that its next lines must close: `( [ {` opened
/// and not closed on it, except the `{` that ends a block's opening line and the `}` that
/// starts a closing one (the outline pairs those).
fn bracket_balance(t: &str) -> i32 {
    let mut depth = 0;
    // The last character of code, a trailing comment left out (`if (c) { // why`).
    let mut last = ' ';
    code_chars(t, |c| {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if !c.is_whitespace() {
            last = c;
        }
    });
    if last == '{' {
        depth -= 1;
    }
    if t.starts_with('}') {
        depth += 1;
    }
    depth
}

fn is_comment(t: &str) -> bool {
    t.starts_with("//")
        || t.starts_with("/*") && t.find("*/").is_none_or(|e| t[e + 2..].trim().is_empty())
        || t.starts_with("* ")
        || t == "*"
        || t.starts_with("*/")
        || t.starts_with("--")
        || t.starts_with('#')
            && !t.starts_with("#include")
            && !t.starts_with("#import")
            && !t.starts_with("#!")
            && !t.starts_with("#define")
            && !t.starts_with("#if")
            && !t.starts_with("#else")
            && !t.starts_with("#endif")
            && !t.starts_with("#pragma")
}

/// A label or an access specifier alone on its line (`cleanup:`, `public:`), often outdented.
fn is_label(t: &str) -> bool {
    t.strip_suffix(':').is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// A C preprocessor line other than an include.
fn is_directive(t: &str) -> bool {
    t.strip_prefix('#').is_some_and(|r| {
        let w = r.trim_start();
        ["if", "ifdef", "ifndef", "else", "elif", "endif", "define", "undef", "pragma", "error", "line"]
            .iter()
            .any(|d| w.starts_with(d))
    })
}

fn first_word(t: &str) -> &str {
    t.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ';')).next().unwrap_or("")
}

/// The comment mark of the text: the one its comment lines use most (`//` when it has none;
/// `%` for TeX and its kin).
fn comment_mark(lines: &[&str]) -> &'static str {
    let (mut slash, mut hash, mut dash, mut percent, mut tex) = (0, 0, 0, 0, 0);
    for l in lines {
        let t = l.trim_start();
        // `\begin{equation}`, `\section{…}`: TeX, whose comments are `%`.
        if t.starts_with('\\') && t[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            tex += 1;
        }
        // (`/*!40101 SET NAMES utf8mb4 */;`, a MySQL dump's statement, is no comment.)
        if (t.starts_with("//") || t.starts_with("/*")) && !t.trim_end().ends_with("*/;") {
            slash += 1;
        } else if t.starts_with("--") && !t.chars().all(|c| c == '-') {
            dash += 1;
        } else if is_comment(t) && t.starts_with('#') {
            hash += 1;
        } else if t.starts_with("% ") || t.starts_with("%%") || t == "%" {
            // TeX, Erlang, MATLAB, Prolog.
            percent += 1;
        }
    }
    let most = slash.max(hash).max(dash);
    if percent > most || most == 0 && tex >= 3 {
        "%"
    } else if hash > slash && hash >= dash {
        "#"
    } else if dash > slash {
        "--"
    } else {
        "//"
    }
}

/// Whether an XML line leaves a tag open: a `<` with no `>` after it (or, for a line that
/// goes on with a tag already open, `inside`, no `>` at all).
fn open_tag(t: &str, inside: bool) -> bool {
    match (t.rfind('<'), t.rfind('>')) {
        (Some(lt), Some(gt)) => lt > gt,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => inside,
    }
}

/// Each XML line's depth: the elements open before it (a closing tag's line, the depth of the
/// element it closes). Counted from the tags: `<name` opens, `</` and `/>` close; comments,
/// `<?…?>` and `<!…>` do neither.
fn tag_depths(lines: &[&str]) -> Vec<usize> {
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let t = line.trim();
        let b = t.as_bytes();
        let (mut opens, mut closes) = (0usize, 0usize);
        for i in 0..b.len() {
            match b[i] {
                b'<' if b.get(i + 1) == Some(&b'/') => closes += 1,
                b'<' if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') => opens += 1,
                b'>' if i > 0 && b[i - 1] == b'/' => closes += 1,
                _ => {}
            }
        }
        // A line that opens with its closing tag sits at the depth of the element it closes.
        let leading_close = usize::from(t.starts_with("</"));
        depth = depth.saturating_sub(leading_close);
        out.push(depth);
        depth = (depth + opens).saturating_sub(closes.saturating_sub(leading_close));
    }
    out
}

/// Cuts `lines` into units (see the module docs). In YAML (`yaml`) indentation alone nests:
/// `key:` is a parent, not a label, and no word closes or continues a block (`end: 3`,
/// `when: …` are keys).
fn units(lines: &[&str], yaml: bool, xml: bool) -> Vec<Unit> {
    // Comments and preprocessor lines at a shallower indentation than the code after them
    // (`#if` at column 0 in a function) sit at that code's indentation; one before a closer
    // sits inside the block it closes.
    // YAML's one comment syntax is `#` (a `* item` or `/*` is text in a block scalar).
    let is_comment = |t: &str| {
        if yaml {
            t.starts_with('#')
        } else if xml {
            t.starts_with("<!--")
        } else {
            is_comment(t)
        }
    };
    // XML nests by its tags, whatever the indentation (`<rss>` and `<channel>` often share
    // column 0).
    let mut placement: Vec<usize> = if xml { tag_depths(lines) } else { lines.iter().map(|l| indent_of(l)).collect() };
    let mut next_code: Option<(usize, bool)> = None;
    for i in (0..lines.len()).rev() {
        let t = lines[i].trim();
        if t.is_empty() {
            continue;
        }
        let transparent = is_comment(t) || !yaml && !xml && (is_directive(t) || is_label(t));
        if transparent {
            if let Some((w, closer)) = next_code {
                let inside = if closer { w + 1 } else { w };
                placement[i] = placement[i].max(inside);
            }
        } else {
            let closer = if xml {
                t.starts_with("</")
            } else {
                t.starts_with(['}', ')', ']']) || CLOSER_WORDS.contains(&first_word(t))
            };
            next_code = Some((placement[i], closer));
        }
    }
    let mut units: Vec<Unit> = Vec::new();
    // Open blocks: (indent, unit).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut open_brackets = 0i32;
    let mut in_comment = false;
    let mut last: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        // A statement whose brackets are still open goes on, and so does a block comment.
        if (open_brackets > 0 || in_comment)
            && let Some(u) = last
        {
            units[u].lines.push(i);
            if in_comment {
                in_comment = !t.contains("*/");
            } else if xml {
                open_brackets = i32::from(open_tag(t, true));
            } else {
                open_brackets = (open_brackets + bracket_balance(t)).max(0);
            }
            continue;
        }
        let w = placement[i];
        let word = first_word(t);
        let closes = if xml {
            t.starts_with("</")
        } else {
            !yaml && (t.starts_with(['}', ']', ')']) || CLOSER_WORDS.contains(&word) && t.len() <= 8)
        };
        let middle = !yaml && !xml && (MIDDLE_WORDS.contains(&word) || closes && t.ends_with(['{', ':']));
        if closes || middle {
            while stack.last().is_some_and(|&(k, _)| k > w) {
                stack.pop();
            }
            if let Some(&(k, u)) = stack.last()
                && k == w
                && units[u].children > 0
            {
                units[u].lines.push(i);
                if !middle {
                    stack.pop();
                }
                last = Some(u);
                open_brackets = if xml { i32::from(open_tag(t, false)) } else { bracket_balance(t).max(0) };
                continue;
            }
        }
        // `{` alone joins the line above it at its indentation.
        if t == "{"
            && let Some(u) = last
            && units[u].indent == w
            && units[u].children == 0
        {
            units[u].lines.push(i);
            if stack.last().is_none_or(|&(_, top)| top != u) {
                stack.push((w, u));
            }
            continue;
        }
        while stack.last().is_some_and(|&(k, _)| k >= w) {
            stack.pop();
        }
        let parent = stack.last().map(|&(_, u)| u);
        if let Some(p) = parent {
            units[p].children += 1;
        }
        let depth = parent.map_or(0, |p| units[p].depth + 1);
        // XML's declaration must stay the document's first line: no marker may come before it.
        let import = parent.is_none()
            && if xml { t.starts_with("<?xml") } else { IMPORT_PREFIXES.iter().any(|p| t.starts_with(p)) };
        units.push(Unit {
            lines: vec![i],
            parent,
            indent: w,
            depth,
            children: 0,
            import,
            comment: is_comment(t),
            first: i,
            head: i,
        });
        let u = units.len() - 1;
        stack.push((w, u));
        last = Some(u);
        in_comment = !yaml && !xml && t.starts_with("/*") && !t.contains("*/");
        // In XML a start tag over several lines (attributes one per line) goes on to its `>`;
        // brackets in an element's text are words.
        open_brackets = if units[u].comment {
            0
        } else if xml {
            i32::from(open_tag(t, false))
        } else {
            bracket_balance(t).max(0)
        };
    }
    if !yaml && !xml {
        pair_braces(lines, &mut units);
    }
    // A YAML stream's `---` is the parent of its document's top-level keys: whatever of a
    // document is shown comes under its separator, so documents never run together (a
    // Service's `spec:` read as the Deployment's).
    if yaml {
        let mut separator: Option<usize> = None;
        for u in 0..units.len() {
            let head = lines[units[u].head].trim_end();
            if units[u].parent.is_none() && (head == "---" || head.starts_with("--- ") || head == "...") {
                separator = Some(u);
            } else if units[u].parent.is_none()
                && let Some(s) = separator
            {
                units[u].parent = Some(s);
                units[s].children += 1;
            }
        }
    }
    // An opener takes the annotations and the one-line comment right above it.
    for u in 1..units.len() {
        if units[u].children == 0 {
            continue;
        }
        let mut at = u;
        while at > 0 {
            let c = at - 1;
            let above = &units[c];
            let line = above.lines.first().map(|&l| lines[l].trim());
            let attached = above.lines.len() == 1
                && above.children == 0
                && above.parent == units[u].parent
                && above.indent == units[u].indent
                && above.lines[0] + 1 == units[at].first
                && line.is_some_and(|t| t.starts_with('@') || above.comment && t.len() <= 120);
            if !attached {
                break;
            }
            let l = units[c].lines[0];
            units[c].lines.clear();
            units[u].lines.insert(0, l);
            units[u].first = l;
            at = c;
            // Only one comment line; annotations may stack.
            if !line.is_some_and(|t| t.starts_with('@')) {
                break;
            }
        }
    }
    units
}

/// Makes each `{` and the `}` that closes it belong to one unit, or to a unit and one shown
/// whenever it is: where indentation misleads (`throws X {` under a signature, a block that
/// does not indent its content), the unit that holds the other brace is merged into the
/// outer one.
fn pair_braces(lines: &[&str], units: &mut [Unit]) {
    let mut unit_of = vec![usize::MAX; lines.len()];
    for (u, unit) in units.iter().enumerate() {
        for &l in &unit.lines {
            unit_of[l] = u;
        }
    }
    let is_ancestor = |units: &[Unit], a: usize, mut b: usize| {
        while let Some(p) = units[b].parent {
            if p == a {
                return true;
            }
            b = p;
        }
        false
    };
    let mut open: Vec<usize> = Vec::new();
    let mut in_comment = false;
    for (l, line) in lines.iter().enumerate() {
        let t = line.trim();
        if in_comment || t.starts_with("/*") && !t.contains("*/") {
            in_comment = !t.contains("*/");
            continue;
        }
        if unit_of[l] == usize::MAX || is_comment(t) {
            continue;
        }
        let mut events = Vec::new();
        code_chars(t, |c| match c {
            '{' => events.push(true),
            '}' => events.push(false),
            _ => {}
        });
        for opens in events {
            if opens {
                open.push(l);
                continue;
            }
            let Some(o) = open.pop() else { continue };
            let (a, b) = (unit_of[o], unit_of[l]);
            if a == b {
                continue;
            }
            // Merge into the outer unit: an ancestor of the other, else the earlier one.
            let (into, from) = if is_ancestor(units, b, a) { (b, a) } else { (a, b) };
            if is_ancestor(units, from, into) {
                continue;
            }
            let moved = std::mem::take(&mut units[from].lines);
            for &m in &moved {
                unit_of[m] = into;
            }
            units[into].lines.extend(moved);
            units[into].lines.sort_unstable();
            units[into].first = units[into].first.min(units[from].first);
            let grandchildren = units[from].children;
            units[from].children = 0;
            for unit in units.iter_mut().filter(|u| u.parent == Some(from)) {
                unit.parent = Some(into);
            }
            units[into].children += grandchildren;
            if units[from].parent == Some(into) {
                units[into].children -= 1;
            }
        }
    }
}

/// Compresses code of a language without a grammar; `None` for minified code or when nothing
/// fits (the caller then packs the text as lines).
pub fn compress_outline(text: &str, query: Option<&str>, budget: usize, count: &dyn Count) -> Option<Packed> {
    if budget == 0 || text.split('\n').any(|l| l.len() > MAX_LINE_BYTES) {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let yaml = super::detect::looks_like_yaml(text);
    let report = yaml && super::detect::is_report(text);
    let xml = !yaml && super::detect::looks_like_xml(text);
    let units = units(&lines, yaml, xml);
    if units.len() < 2 {
        return None;
    }
    let n = units.len();
    // Query words, lower case, and the units that mention them; the names it gives a
    // definition: its backticked or identifier-shaped words, else its words of 4+ letters.
    let (names, qwords): (Vec<String>, Vec<String>) = query.map_or_else(Default::default, |q| {
        let r = QueryWords::read(q, &[]);
        let lower = |v: &[String]| -> Vec<String> {
            let mut v: Vec<String> = v.iter().map(|w| w.to_lowercase()).filter(|w| w.len() >= 3).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut names = lower(&[r.phrases.clone(), r.identifiers.clone()].concat());
        names.retain(|w| !w.contains(char::is_whitespace));
        if names.is_empty() {
            names = lower(&r.words).into_iter().filter(|w| w.len() >= 4).collect();
        }
        (names, lower(&[r.phrases, r.identifiers, r.words].concat()))
    });
    let has_any = |u: &Unit, of: &[String]| -> bool {
        if of.is_empty() || u.lines.is_empty() {
            return false;
        }
        let words = super::code::words(lines[u.head]);
        of.iter().any(|q| words.iter().any(|w| w == q))
    };
    let mentions = |u: &Unit| usize::from(has_any(u, &qwords));
    // YAML: how much a line says about the query, each query word it holds (a plural `s`
    // aside: `limits` holds `limit`) weighed by how few lines hold it (`web`, in every name of
    // a manifest, says less than `memory`).
    let same = |w: &str, q: &str| w == q || w.strip_suffix('s') == Some(q) || q.strip_suffix('s') == Some(w);
    let line_words: Vec<Vec<String>> = if (yaml || xml) && !qwords.is_empty() {
        lines
            .iter()
            .map(|l| {
                let mut words = super::code::words(l);
                // XML text holds versions and ids whole (`2.3.0`, `ord-75`).
                if xml {
                    words.extend(
                        l.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
                            .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
                            .filter(|t| t.len() >= 3),
                    );
                }
                words
            })
            .collect()
    } else {
        Vec::new()
    };
    let idf: Vec<f64> = qwords
        .iter()
        .map(|q| {
            let holders = line_words.iter().filter(|ws| ws.iter().any(|w| same(w, q))).count();
            (1.0 + lines.len() as f64 / holders.max(1) as f64).ln()
        })
        .collect();
    let yaml_score = |u: &Unit| -> f64 {
        let Some(ws) = line_words.get(u.head) else { return 0.0 };
        qwords.iter().zip(&idf).filter(|(q, _)| ws.iter().any(|w| same(w, q))).map(|(_, f)| f).sum()
    };
    // A definition the query names: an opener whose first line has one of its names, or (for
    // a unit that brace pairing merged) one of its lines that opens a block.
    let opens_named = |u: &Unit| {
        has_any(u, &names)
            || u.lines.iter().any(|&l| {
                let t = lines[l].trim_end();
                l != u.head
                    && (t.ends_with('{') || t.ends_with(':'))
                    && !is_comment(t.trim_start())
                    && super::code::words(t).iter().any(|w| names.contains(w))
            })
    };
    // In YAML a block is named by its key (`deploy:` by "the deploy job"), not by a value
    // (`name: web` is not named by "web", which is in every name of a manifest).
    let yaml_key_named = |u: &Unit| {
        let t = lines[u.head].trim();
        let key = t.strip_prefix("- ").unwrap_or(t).split(':').next().unwrap_or("").trim().trim_matches(['"', '\'']);
        names.iter().any(|q| key.eq_ignore_ascii_case(q))
    };
    let opens_named = |u: &Unit| if yaml { yaml_key_named(u) } else { opens_named(u) };
    let mut named = vec![false; n];
    // XML: the element around the few lines that say most about the query comes whole (the
    // item whose title names the release asked about, with its description).
    // Each unit's score, read once (the order's key reads it too).
    let scores: Vec<f64> = if yaml || xml { units.iter().map(yaml_score).collect() } else { Vec::new() };
    if xml {
        let leaf = |u: usize| if units[u].children == 0 { scores[u] } else { 0.0 };
        let best = (0..n).map(leaf).fold(0.0, f64::max);
        let top: Vec<usize> = (0..n).filter(|&u| best > 0.0 && leaf(u) >= best).collect();
        if top.len() <= 3 {
            for u in top {
                if let Some(p) = units[u].parent {
                    named[p] = true;
                }
            }
        }
    }
    for u in 0..n {
        let p = units[u].parent;
        // A block, or a statement over several lines (`CREATE TABLE order_lines (` … `);`).
        let definition = units[u].children > 0 || units[u].lines.len() > 1;
        named[u] |= p.is_some_and(|p| named[p]) || definition && !names.is_empty() && opens_named(&units[u]);
    }
    let block_size = |u: &Unit| u.parent.map_or(lines.len(), |p| units[p].children);
    // The outline: openers whose parents are all in it, except the blocks of statements
    // (`if (…) {`, `for …`, `x = {`, `items.forEach(x -> {`): declarations, not control flow.
    let mut outline = vec![false; n];
    for u in 0..n {
        let t = lines[units[u].head].trim();
        let statement = CONTROL_WORDS.contains(&first_word(t).trim_end_matches(';'))
            || t.contains(" = ")
            || t.contains("->")
            || t.contains("=>")
            || t.starts_with(['}', ')', ']']);
        outline[u] = units[u].children > 0 && !statement && units[u].parent.is_none_or(|p| outline[p]);
    }
    // XML: each element's place among its parent's children (an item's title is its first).
    let mut sibling = vec![0usize; n];
    if xml {
        let mut seen = vec![0usize; n + 1];
        for u in 0..n {
            let slot = units[u].parent.unwrap_or(n);
            sibling[u] = seen[slot];
            seen[slot] += 1;
        }
    }
    // (tier, secondary, line): smaller first.
    let key = |i: usize| -> (u8, usize, usize) {
        let u = &units[i];
        if yaml || xml {
            // Every key holds a value: shallower first, the ones the query names or mentions
            // before the rest, comments last. In XML the values are in the elements' text: an
            // element's tags come only with a child of it (or last), and every element's first
            // child before any's second (each item's title, then each item's link…).
            let score = scores[i];
            // A document's top-level values (`kind: Service`) say what it is: they come right
            // after the lines the query matches.
            let top_value = yaml && u.depth == 0 && u.children == 0 && !u.comment;
            // In a report, a row or text line that tells of a failure or a warning (`Warning
            // BackOff … failed container` among its events) comes with them; keys do not, nor
            // does a configuration's line (`fail-fast: false`, `echo "build failed"`).
            let alarm = report
                && !u.comment
                && !super::detect::is_key_line(lines[u.head])
                && super::logs::raises_alarm(lines[u.head]);
            let tier = if xml && u.import {
                0
            } else if named[i] {
                1
            } else if u.comment {
                7
            } else if xml && u.children > 0 {
                8
            } else if score > 0.0 || top_value || alarm {
                2
            } else {
                3
            };
            // A definition the query names comes whole, in input order; lines that say more
            // about the query before those that say less.
            let secondary = match tier {
                1 => 0,
                // Top-level values and alarms right after the lines the query matches.
                2 => usize::MAX - (score * 1e6) as usize - usize::from(score > 0.0),
                _ if xml => sibling[i] * 64 + u.depth.min(63),
                _ => u.depth,
            };
            return (tier, secondary, u.first);
        }
        let tier = if u.import {
            0
        } else if named[i] {
            1
        } else if u.comment {
            8
        } else if outline[i] {
            2
        } else if u.parent.is_none_or(|p| units[p].depth == 0 && units[p].children > 0 && u.depth == 1) {
            // Top-level lines, and lines beside the methods of a top-level block (fields);
            // those that mention the query first.
            if mentions(u) > 0 { 3 } else { 4 }
        } else if mentions(u) > 0 {
            5
        } else {
            6
        };
        let secondary = match tier {
            2 => u.depth,
            6 => block_size(u),
            _ => 0,
        };
        (tier, secondary, u.first)
    };
    let mut sorted: Vec<usize> = (0..n).collect();
    // Each key once: it may read the unit's words for the query's.
    sorted.sort_by_cached_key(|&i| key(i));
    let order = ancestors_first(&sorted, &|u| units[u].parent);
    let mark = if yaml { "#" } else { comment_mark(&lines) };
    let marker = |indent: &str, n: usize| {
        let what = if n == 1 { "line" } else { "lines" };
        if xml {
            format!("{indent}<!-- … {n} {what} omitted -->")
        } else {
            format!("{indent}{mark} … {n} {what} omitted")
        }
    };
    let render = |chosen: &[usize]| -> Rendering {
        let mut keep = vec![false; lines.len()];
        for &u in chosen {
            for &l in &units[u].lines {
                keep[l] = true;
            }
        }
        let mut out = String::new();
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        let mut dropped_indent = "";
        let mut blank = false;
        let emit = |out: &mut String, line: &str, blank: &mut bool| {
            if !out.is_empty() {
                out.push('\n');
                if std::mem::take(blank) {
                    out.push('\n');
                }
            }
            out.push_str(line);
        };
        let mut last_dropped = 0usize;
        // A run of dropped lines becomes its marker; in YAML, one line no longer than its
        // marker is shown instead (`app: web` costs less than `# … 1 line omitted`). Its
        // parent is kept: the line above it is, and kept lines come with their ancestors.
        let close_run =
            |out: &mut String, kept: &mut Vec<usize>, n: usize, indent: &str, at: usize, blank: &mut bool| {
                let m = marker(indent, n);
                if yaml && n == 1 && lines[at].len() <= m.len() {
                    emit(out, lines[at], blank);
                    kept.push(at);
                } else {
                    emit(out, &m, blank);
                }
            };
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                blank |= dropped == 0 && !out.is_empty();
                continue;
            }
            if keep[i] {
                if dropped > 0 {
                    close_run(&mut out, &mut kept, dropped, dropped_indent, last_dropped, &mut blank);
                    dropped = 0;
                }
                emit(&mut out, line, &mut blank);
                kept.push(i);
            } else {
                if dropped == 0 {
                    dropped_indent = &line[..line.len() - line.trim_start().len()];
                }
                dropped += 1;
                last_dropped = i;
            }
        }
        if dropped > 0 {
            close_run(&mut out, &mut kept, dropped, dropped_indent, last_dropped, &mut blank);
        }
        kept.sort_unstable();
        (out, kept)
    };
    let weight = |l: usize| lines[l].trim().len() as f64;
    let unit_lines = |u: usize| units[u].lines.as_slice();
    let line_units =
        LineUnits { text, lines: &lines, unit_lines: &unit_lines, parent: &|u| units[u].parent, weight: &weight };
    line_units.fit(&order, &render, budget, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA: &str = include_str!("../../tests/support/Cache.java");

    /// About a token per four bytes, as BPE counts code.
    fn approx(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    /// Curly brackets outside strings and comments, in order, balance.
    fn balanced(s: &str) -> bool {
        let mut depth = 0i32;
        for l in s.lines() {
            let t = l.trim_start();
            if t.starts_with("//") || t.starts_with('*') || t.starts_with("/*") {
                continue;
            }
            for c in t.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth < 0 {
                    return false;
                }
            }
        }
        depth == 0
    }

    #[test]
    fn java_keeps_imports_and_the_outline_with_balanced_braces_and_marked_elisions() {
        assert!(balanced(JAVA));
        let total = approx(JAVA);
        for budget in [total / 2, total / 4, total / 8] {
            let p = compress_outline(JAVA, None, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget, "{budget}: {}", p.text);
            assert!(balanced(&p.text), "{budget}:\n{}", p.text);
            assert!(p.text.contains("import java.util.Map;"), "{}", p.text);
            // Every line is an input line, whole, or a marker of omitted lines.
            for l in p.text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(JAVA.lines().any(|o| o == l) || l.trim_start().starts_with("// … "), "{l}");
            }
            assert!(p.text.contains(" lines omitted"), "{}", p.text);
        }
        let p = compress_outline(JAVA, None, total / 2, &approx).unwrap();
        for sig in ["public class Cache<K, V> {", "    public V get(K key) {", "    public void put(K key, V value) {"]
        {
            assert!(p.text.contains(sig), "{sig}:\n{}", p.text);
        }
    }

    /// Each kept line of `out` that is indented has its parent (the nearest line above it
    /// with less indentation, comments left out) kept too.
    /// Whether every element `out` opens it closes, in order, and a declaration comes first.
    fn well_formed(out: &str) -> bool {
        if out.contains("<?xml") && !out.starts_with("<?xml") {
            return false;
        }
        let mut open: Vec<String> = Vec::new();
        let mut rest = out;
        while let Some(at) = rest.find('<') {
            rest = &rest[at..];
            let end =
                if rest.starts_with("<!--") { rest.find("-->").map(|e| e + 3) } else { rest.find('>').map(|e| e + 1) };
            let Some(end) = end else { return false };
            let tag = &rest[..end];
            let name =
                |t: &str| t.split(|c: char| c.is_whitespace() || c == '>' || c == '/').next().unwrap_or("").to_string();
            if let Some(closing) = tag.strip_prefix("</") {
                if open.pop() != Some(name(closing)) {
                    return false;
                }
            } else if !tag.starts_with("<!") && !tag.starts_with("<?") && !tag.ends_with("/>") {
                open.push(name(&tag[1..]));
            }
            rest = &rest[end..];
        }
        open.is_empty()
    }

    fn feed() -> String {
        let mut xml =
            String::from("<?xml version=\"1.0\"?>\n<rss version=\"2.0\">\n<channel>\n  <title>Releases</title>\n");
        for i in 0..30 {
            xml.push_str(&format!(
                "  <item>\n    <title>Release {}.{}.0 of the toolkit</title>\n    <link\n      href=\"https://example.com/{i}\"/>\n    <description>Release {i} fixes bug {} (see the notes).</description>\n  </item>\n",
                i / 10,
                i % 10,
                1000 + i
            ));
        }
        xml.push_str("</channel>\n</rss>\n");
        xml
    }

    #[test]
    fn xml_keeps_every_kept_element_closed_and_the_asked_element_whole() {
        let xml = feed();
        assert!(crate::compress::detect::looks_like_xml(&xml));
        let total = approx(&xml);
        for budget in [total / 10, total / 4, total / 2, total * 3 / 4] {
            for query in [None, Some("what does release 2.3.0 fix?")] {
                let p = compress_outline(&xml, query, budget, &approx).unwrap();
                assert!(well_formed(&p.text), "{budget} {query:?}:\n{}", p.text);
                assert!(approx(&p.text) <= budget);
                assert!(p.text.contains("<!-- … "), "{}", p.text);
            }
        }
        // Every item's title before any item's description.
        let p = compress_outline(&xml, None, total / 2, &approx).unwrap();
        assert!(p.text.matches("of the toolkit</title>").count() >= 20, "{}", p.text);
        assert!(!p.text.contains("fixes bug"), "{}", p.text);
        // The item the query names comes whole.
        let p = compress_outline(&xml, Some("what does release 2.3.0 fix?"), total / 10, &approx).unwrap();
        assert!(p.text.contains("fixes bug 1023"), "{}", p.text);
    }

    fn parents_kept(input: &str, out: &str) -> bool {
        let lines: Vec<&str> = input.lines().collect();
        let kept: Vec<&str> = out.lines().collect();
        let indent = |l: &str| l.len() - l.trim_start().len();
        // Kept lines are found in input order, so a repeated line is matched where it was kept.
        let mut at = 0;
        let mut kept_input = vec![false; lines.len()];
        for k in kept.iter().filter(|k| !k.trim().is_empty() && !k.trim_start().starts_with("# … ")) {
            let Some(i) = (at..lines.len()).find(|&i| lines[i] == *k) else { return false };
            kept_input[i] = true;
            at = i + 1;
        }
        (0..lines.len()).filter(|&i| kept_input[i] && indent(lines[i]) > 0).all(|i| {
            let parent = (0..i).rev().find(|&j| {
                !lines[j].trim().is_empty()
                    && !lines[j].trim_start().starts_with('#')
                    && indent(lines[j]) < indent(lines[i])
            });
            parent.is_none_or(|j| kept_input[j])
        })
    }

    #[test]
    fn yaml_keeps_its_shallow_keys_under_their_parents_with_hash_markers() {
        let yaml = include_str!("../../tests/support/deploy.yml");
        let total = approx(yaml);
        for budget in [total / 2, total / 3, total / 5] {
            let p = compress_outline(yaml, None, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget, "{budget}: {}", p.text);
            assert!(parents_kept(yaml, &p.text), "{budget}:\n{}", p.text);
            for l in p.text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(yaml.lines().any(|o| o == l) || l.trim_start().starts_with("# … "), "{l}");
            }
            assert!(p.text.contains("  # … "), "{}", p.text);
            // The top of the document and its jobs come before deeper detail (`jobs:` and
            // `build:` are parents, not labels).
            for line in ["name: deploy", "jobs:", "  build:", "  deploy:"] {
                assert!(p.text.lines().any(|l| l == line), "{budget}: {line}\n{}", p.text);
            }
            if budget >= total / 3 {
                assert!(p.text.lines().any(|l| l == "    name: Build the image"), "{budget}:\n{}", p.text);
            }
        }
        // With a query naming a job, that job comes whole.
        let p = compress_outline(yaml, Some("what does the deploy job run"), total / 2, &approx).unwrap();
        let start = yaml.find("  deploy:\n").unwrap();
        assert!(p.text.contains(yaml[start..].trim_end()), "{}", p.text);
    }

    #[test]
    fn elisions_are_marked_in_the_text_s_own_comment_syntax() {
        assert_eq!(comment_mark(&["% Template for a section.", "% Remove this.", "\\section{Intro}"]), "%");
        assert_eq!(comment_mark(&["# setup", "x=1"]), "#");
        assert_eq!(comment_mark(&["-- schema", "CREATE TABLE t (", ");"]), "--");
        assert_eq!(comment_mark(&["int x = 5 % 3;", "// why"]), "//");
    }

    #[test]
    fn a_statement_over_several_lines_that_the_query_names_comes_whole() {
        // SQL: `CREATE TABLE order_lines (` … `);` is one unit (its brackets), not a block.
        let sql = include_str!("../../tests/support/schema.sql");
        let p =
            compress_outline(sql, Some("which columns does order_lines have"), approx(sql) * 2 / 5, &approx).unwrap();
        let start = sql.find("CREATE TABLE order_lines (").unwrap();
        let end = start + sql[start..].find(");").unwrap() + 2;
        assert!(p.text.contains(&sql[start..end]), "{}", p.text);
        assert!(p.text.contains("-- … "), "{}", p.text);
    }

    #[test]
    fn tex_without_comment_lines_is_marked_with_percent() {
        let mut tex = String::from("\\documentclass{article}\n\\begin{document}\n");
        for k in 0..12 {
            tex.push_str(&format!(
                "\\section{{Results {k}}}\nThe median lead time fell to {k} days across the {} services we measured.\n\
                 \\begin{{itemize}}\n  \\item Deploys per week rose by {}.\n  \\item Rollbacks fell by {}.\n\\end{{itemize}}\n",
                10 + k,
                3 * k,
                k
            ));
        }
        tex.push_str("\\end{document}\n");
        assert_eq!(comment_mark(&tex.lines().collect::<Vec<_>>()), "%");
        if let Some(p) = compress_outline(&tex, None, approx(&tex) / 3, &approx) {
            assert!(p.text.lines().all(|l| !l.trim_start().starts_with("//")), "{}", p.text);
        }
        // A language with `//` comments keeps them.
        assert_eq!(comment_mark(&["// a comment", "int x = 1;"]), "//");
    }

    #[test]
    fn the_documents_of_a_yaml_stream_never_run_together() {
        let yaml = include_str!("../../tests/support/web.k8s.yaml");
        // Which input document each line of a text is in, by its `---` lines.
        let documents = |text: &str| -> Vec<Vec<String>> {
            text.split("\n---\n")
                .map(|d| d.lines().filter(|l| !l.trim_start().starts_with("# … ")).map(String::from).collect())
                .collect()
        };
        let input = documents(yaml);
        for query in
            [Some("what memory limit does the web container have"), Some("which host does the ingress route"), None]
        {
            for share in [3, 4, 6] {
                let p = compress_outline(yaml, query, approx(yaml) * share / 10, &approx).unwrap();
                // Each output document is (part of) one input document, in order.
                let mut next = 0;
                for doc in documents(&p.text).iter().filter(|d| !d.is_empty()) {
                    let k = (next..input.len()).find(|&k| doc.iter().all(|l| input[k].contains(l)));
                    assert!(k.is_some(), "{query:?} {share}: documents run together:\n{}", p.text);
                    next = k.unwrap() + 1;
                }
            }
        }
    }

    #[test]
    fn a_manifest_answers_with_its_rarest_matching_line_and_shows_short_lines_for_markers() {
        let yaml = include_str!("../../tests/support/web.k8s.yaml");
        // `web` is in every name; `memory` in one line, which comes with its parents.
        let p = compress_outline(
            yaml,
            Some("what memory limit does the web container have"),
            approx(yaml) * 3 / 10,
            &approx,
        )
        .unwrap();
        assert!(p.text.contains("          resources:\n            limits:\n"), "{}", p.text);
        assert!(p.text.lines().any(|l| l == "              memory: 512Mi"), "{}", p.text);
        assert!(parents_kept(yaml, &p.text), "{}", p.text);
        // A single line no longer than its marker is shown instead of the marker.
        let p = compress_outline(yaml, None, approx(yaml) * 2 / 5, &approx).unwrap();
        assert!(
            !p.text.contains("# … 1 line omitted") || !p.text.contains("  labels:\n    # … 1 line omitted"),
            "{}",
            p.text
        );
        assert!(p.text.contains("  labels:\n    app: web\n"), "{}", p.text);
        assert!(parents_kept(yaml, &p.text), "{}", p.text);
    }

    #[test]
    fn the_definition_a_query_names_comes_whole() {
        let total = approx(JAVA);
        let p = compress_outline(JAVA, Some("how does put evict entries"), total / 2, &approx).unwrap();
        let start = JAVA.find("    public void put(").unwrap();
        let end = start + JAVA[start..].find("\n    }\n").unwrap() + 6;
        assert!(p.text.contains(&JAVA[start..end]), "{}", p.text);
        assert!(balanced(&p.text));
    }

    #[test]
    fn a_block_opened_on_a_continuation_line_is_closed_with_it() {
        // `throws …{` sits deeper than its signature: indentation alone would make it a body
        // line that can be dropped while the signature's `}` stays.
        let body = "        total += i;\n        count++;\n".repeat(6);
        let java = format!(
            "class Totals {{\n    void add(int i)\n            throws IllegalStateException {{\n{body}    }}\n\n    int total() {{\n{body}        return total;\n    }}\n}}\n"
        );
        for budget in [approx(&java) / 2, approx(&java) / 3, approx(&java) / 5] {
            let p = compress_outline(&java, None, budget, &approx).unwrap();
            assert!(balanced(&p.text), "{budget}:\n{}", p.text);
            assert_eq!(
                p.text.contains("void add(int i)"),
                p.text.contains("throws IllegalStateException {"),
                "{}",
                p.text
            );
        }
    }

    #[test]
    fn a_named_definition_is_found_where_brace_pairing_merged_it() {
        // The name sits on a continuation line under the return type: the line with `{` is
        // merged into the unit of the line above it, whose first line does not name it.
        let body = "        total += 1;\n        count += 2;\n".repeat(8);
        let method = |name: &str, ret: &str| {
            format!(
                "    public static <T> List<T>\n            {name}(List<T> a) {{\n{body}        return {ret};\n    }}\n"
            )
        };
        let java = format!("class Lists {{\n{}\n{}}}\n", method("other", "a"), method("target", "null"));
        let p = compress_outline(&java, Some("how does `target` work"), approx(&java) * 2 / 3, &approx).unwrap();
        assert!(p.text.contains(&format!("target(List<T> a) {{\n{body}        return null;\n    }}")), "{}", p.text);
        assert!(balanced(&p.text), "{}", p.text);
    }

    #[test]
    fn a_comment_after_an_opening_brace_does_not_hold_the_block_open() {
        assert_eq!(bracket_balance("if (c == '(') { // skip comments"), 0);
        assert_eq!(bracket_balance("call(a, /* b */ c,"), 1);
        assert_eq!(bracket_balance("x = a / b;"), 0);
        let body = "        if (c == '(') { // skip a comment\n            depth++;\n        }\n".repeat(6);
        let java = format!(
            "class P {{\n    int parse() {{\n{body}        return 0;\n    }}\n\n    int target() {{\n        return 1;\n    }}\n}}\n"
        );
        let p = compress_outline(&java, Some("`target`"), approx(&java) / 2, &approx).unwrap();
        assert!(p.text.contains("    int target() {\n        return 1;\n    }"), "{}", p.text);
        assert!(balanced(&p.text), "{}", p.text);
    }

    #[test]
    fn ruby_blocks_close_with_end_and_elisions_use_its_comments() {
        let ruby = "require 'json'\n\n# A store of users.\nclass Store\n  def initialize(path)\n    @path = path\n    @users = {}\n    load!\n  end\n\n  def find(id)\n    user = @users[id]\n    raise KeyError, id unless user\n    user\n  rescue KeyError\n    nil\n  end\n\n  def save(user)\n    @users[user.id] = user\n    File.write(@path, JSON.dump(@users))\n  end\nend\n";
        let p = compress_outline(ruby, None, approx(ruby) * 3 / 4, &approx).unwrap();
        assert!(p.text.starts_with("require 'json'"), "{}", p.text);
        assert!(p.text.contains("  def find(id)"), "{}", p.text);
        assert!(p.text.contains("  rescue KeyError"), "{}", p.text);
        assert!(p.text.contains("# … "), "{}", p.text);
        let defs = p.text.lines().filter(|l| l.trim_start().starts_with("def ") || l.starts_with("class ")).count();
        let ends = p.text.lines().filter(|l| l.trim() == "end").count();
        assert_eq!(defs, ends, "{}", p.text);
    }

    #[test]
    fn allman_braces_and_long_signatures_stay_with_their_line() {
        let body = "    total += a * b;\n    printf(\"%d %d\\n\", a, b);\n    fflush(stdout);\n".repeat(4);
        let c = format!(
            "#include <stdio.h>\n\nstatic int total = 0;\n\nstatic int add(int a,\n               int b)\n{{\n{body}    return a + b;\n}}\n\n\
             int main(void)\n{{\n{body}    return add(1, 2);\n}}\n"
        );
        let c = c.as_str();
        let p = compress_outline(c, None, approx(c) / 2, &approx).unwrap();
        assert!(balanced(&p.text), "{}", p.text);
        assert!(p.text.contains("static int add(int a,\n               int b)\n{"), "{}", p.text);
        assert!(p.text.contains("int main(void)\n{"), "{}", p.text);
        // A directive at column 0 inside a function stays inside it.
        let c = c.replace("    return add(1, 2);", "#ifdef DEBUG\n    puts(\"debug\");\n#endif\n    return add(1, 2);");
        let p = compress_outline(&c, None, approx(&c) / 3, &approx).unwrap();
        assert!(balanced(&p.text), "{}", p.text);
        assert!(p.text.contains("int main(void)\n{"), "{}", p.text);
        // It is a line of the body, not a block of the outline.
        assert!(!p.text.contains("#ifdef DEBUG"), "{}", p.text);
    }
}
