//! Content-type detection: prose, markdown, code, JSON, logs or chat.
//!
//! Cheap by construction: only JSON looks at the whole text (a linear bracket-depth scan and
//! `serde_json`'s iterative validator, run only when the trimmed text starts and ends like an
//! object or array); every other test looks at the first [`SAMPLE_LINES`] lines, each cut to
//! [`LINE_PREFIX`] bytes, within the first [`SAMPLE_BYTES`] bytes. A 1 MB single line or 1 MB of
//! one character costs a few microseconds beyond the JSON check.
//!
//! Order of the tests, first match wins:
//! 1. JSON: the trimmed text is an object or array that parses (see `json_syntax::is_json`).
//! 2. A unified diff (a file header, then a hunk header with its counts) is code: the diff
//!    handler (`diff.rs`) reads it.
//! 3. Chat: the lines have the shape of a conversation (`[hh:mm] <nick> …`, `<nick> …`,
//!    `User:` / `Assistant:` / `Human:` … role labels, or `nick: …` names that recur); see
//!    [`chat::parse`](super::chat) for the exact rule.
//! 4. XML ([`looks_like_xml`]) is code, before chat (`<title>…</title>` is no IRC line).
//! 5. Subtitles (SRT, WebVTT: at least 3 cue timing lines `00:00:06,500 --> 00:00:09,000`,
//!    and a fifth of the lines) are prose, each cue one segment (`segment.rs`).
//! 6. Logs: at least 3 lines, and at least 40% of the non-blank lines, carry a timestamp or a
//!    level word (`INFO`, `WARN`, `ERROR`, `DEBUG`, …) near their start; or, whatever the
//!    format, the lines are regular machine text: at least [`REGULAR_MIN_LINES`] lines, and
//!    at least 60% of them begin with one of three *shapes* that look machine-written (see
//!    [`is_regular_machine_text`]); or the text is a failed build's or test run's output
//!    ([`is_failed_run`]). A stack trace's frames ([`is_trace_frame`]: `at a.b.C(C.java:12)`,
//!    `Caused by:`, `... 21 more`, `File "x.py", line 3`) count for neither side. Table rows
//!    (`| … |`) and numbered clauses (`2.1 The …`) have no machine shape.
//! 7. YAML in block style (see [`looks_like_yaml`]) is code: the outline (`outline.rs`)
//!    keeps its keys under their parents. So is a report of aligned `Key Of Words:   value`
//!    lines (`kubectl describe`), whose continued values and tables under a key count with its
//!    keys while they do not outnumber them ([`is_report`]).
//! 8. Markdown / code (on the lines outside fenced blocks): markdown when the sample has a code
//!    fence and the lines around it are not mostly code; code when at least two lines
//!    and 30% of the non-blank lines (C-style comment lines left out when there are 3 or more
//!    and 5 code lines) look like code (keywords at the start, lines ending in
//!    `{ } ; (`, assignments, indented code punctuation) and they outnumber markdown lines
//!    (`# comment` lines count for neither); else markdown when headings, lists, tables,
//!    quotes or links make up 10% of the lines (at least two of them).
//! 9. Prose otherwise.
//!
//! It does not decide the programming language; `code.rs` does that.

use super::ContentType;
use super::json_syntax::is_json;

/// Lines looked at.
const SAMPLE_LINES: usize = 400;
/// Bytes of each line looked at.
const LINE_PREFIX: usize = 400;
/// Bytes of the text looked at.
const SAMPLE_BYTES: usize = 64 * 1024;

/// Log level words (also never a chat speaker's name).
pub(crate) const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "SEVERE",
    "PANIC",
];

const CODE_STARTS: &[&str] = &[
    // SQL statements, as dumps and migrations write them.
    "INSERT INTO ",
    "CREATE TABLE ",
    "CREATE INDEX ",
    "CREATE UNIQUE INDEX ",
    "ALTER TABLE ",
    "DROP TABLE ",
    "LOCK TABLES ",
    "UNLOCK TABLES;",
    "fn ",
    "pub ",
    "use ",
    "impl ",
    "impl<",
    "struct ",
    "enum ",
    "trait ",
    "mod ",
    "let ",
    "const ",
    "static ",
    "match ",
    "def ",
    "class ",
    "import ",
    "from ",
    "return ",
    "return;",
    "if ",
    "if(",
    "elif ",
    "else",
    "for ",
    "for(",
    "while ",
    "while(",
    "try:",
    "try {",
    "except",
    "catch",
    "finally",
    "with ",
    "async ",
    "await ",
    "yield ",
    "raise ",
    "lambda ",
    "package ",
    "func ",
    "type ",
    "var ",
    "interface ",
    "export ",
    "function ",
    "function(",
    "#include",
    "#define",
    "#[",
    "@",
    "switch ",
    "case ",
    "default:",
    "break;",
    "continue;",
    "public ",
    "private ",
    "protected ",
    "namespace ",
    "using ",
    "template<",
    "//",
    "/*",
    "*/",
    "print(",
    "println!",
    "console.",
    "self.",
    "this.",
    "} ",
    "}",
    "{",
    ")",
    "]",
    "#!",
];

/// Detects the content type of `text`; see the module docs.
pub fn detect(text: &str) -> ContentType {
    let trimmed = text.trim();
    if is_json(trimmed) {
        return ContentType::Json;
    }
    let sample = prefix(text, SAMPLE_BYTES);
    let lines: Vec<&str> =
        sample.lines().filter(|l| !l.trim().is_empty()).take(SAMPLE_LINES).map(|l| prefix(l, LINE_PREFIX)).collect();
    if lines.is_empty() {
        return ContentType::Prose;
    }
    let n = lines.len();

    // A unified diff (`git show`, `git log -p`): its `Date:` lines are not a log's, its `-`
    // and `+` lines not a list.
    if super::diff::is_diff(sample) {
        return ContentType::Code;
    }
    // XML before chat: `<title>…</title>` is no IRC nick's line.
    if looks_like_xml(sample) {
        return ContentType::Code;
    }
    if super::chat::is_chat(sample) {
        return ContentType::Chat;
    }

    // Subtitles (SRT, WebVTT) are a transcript: their timing lines are not a log's. The
    // segmenter keeps each cue whole.
    let cues = lines.iter().filter(|l| super::segment::is_cue_timing(l)).count();
    if cues >= 3 && cues * 5 >= n {
        return ContentType::Prose;
    }
    let log_lines = lines.iter().filter(|l| is_log_line(l)).count();
    // A stack trace's frames belong to the log line above them: they count for neither side.
    let frames = lines.iter().filter(|l| is_trace_frame(l)).count();
    if (log_lines >= 3 && log_lines * 10 >= (n - frames) * 4)
        || is_regular_machine_text(&lines)
        || is_failed_run(&lines)
    {
        return ContentType::Logs;
    }

    // YAML (a CI workflow, a manifest, a compose file) is indented structure, not markdown:
    // the outline of its keys keeps it readable (`outline.rs`).
    if looks_like_yaml(sample) {
        return ContentType::Code;
    }

    let fence = lines.iter().any(|l| l.trim_start().starts_with("```"));
    // Lines inside fenced blocks say nothing about the text around them: a README's code
    // samples do not make it code, nor a docstring's example make a source file markdown.
    let mut inside = false;
    let outside: Vec<&str> = lines
        .iter()
        .filter(|l| {
            let fence_line = l.trim_start().starts_with("```");
            inside ^= fence_line;
            !inside && !fence_line
        })
        .copied()
        .collect();
    let lines = outside;
    // C-style comment lines (a licence header, Javadoc, `///` docs with their own lists and
    // fences) are neither code nor markdown: when there are a few, with code around them, the
    // shares are taken over the other lines.
    // (`/*!40101 SET NAMES utf8mb4 */;` in a MySQL dump is a statement, not a comment.)
    let is_slash_comment = |l: &str| {
        let t = l.trim_start();
        (t.starts_with("/*") || t.starts_with("*/") || t.starts_with("//") || t.starts_with('*') && l.starts_with(' '))
            && !t.trim_end().ends_with("*/;")
    };
    let slash_comments = lines.iter().filter(|l| is_slash_comment(l)).count();
    let code_outside_comments = lines.iter().filter(|l| !is_slash_comment(l) && is_code_line(l)).count();
    let lines: Vec<&str> = if slash_comments >= 3 && code_outside_comments >= 5 {
        lines.into_iter().filter(|l| !is_slash_comment(l)).collect()
    } else {
        lines
    };
    let n = lines.len().max(1);
    let md = lines.iter().filter(|l| is_markdown_line(l)).count();
    let code = lines.iter().filter(|l| is_code_line(l)).count();
    let code_wins = code * 10 >= n * 3 && code > md && code >= 2;
    if fence && !code_wins {
        return ContentType::Markdown;
    }
    // `# text` is a level-1 heading or a Python/shell comment: code decides on the rest.
    let hash_comments = lines.iter().filter(|l| l.trim_start().starts_with("# ")).count();
    if code * 10 >= n * 3 && code > md.saturating_sub(hash_comments) && code >= 2 {
        return ContentType::Code;
    }
    let headings = lines.iter().filter(|l| is_heading(l)).count();
    if (md >= 2 && md * 10 >= n) || (headings >= 1 && md >= 1 && n <= 5) {
        return ContentType::Markdown;
    }
    if code * 10 >= n * 3 && code >= 2 {
        return ContentType::Code;
    }
    ContentType::Prose
}

/// XML (a feed, a build or layout file, a SOAP answer, an SVG drawing): a `<?xml` prolog, or
/// lines that are mostly tags, most ending with one and a quarter closing one, under a root that is not HTML's
/// (a page is read as text, its tags around it). It is code: the outline (`outline.rs`) keeps
/// every kept element's opening and closing tags.
pub(crate) fn looks_like_xml(text: &str) -> bool {
    let sample = prefix(text, SAMPLE_BYTES);
    let start = sample.trim_start();
    if start.starts_with("<?xml") {
        return true;
    }
    let root = start.strip_prefix('<').map_or(String::new(), |r| {
        r.split(|c: char| !(c.is_alphanumeric() || matches!(c, ':' | '-' | '_')))
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    });
    const HTML_ROOTS: &[&str] = &[
        "a", "article", "body", "br", "div", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header",
        "html", "img", "li", "main", "nav", "ol", "p", "section", "span", "table", "ul",
    ];
    if root.is_empty() || HTML_ROOTS.contains(&root.as_str()) {
        return false;
    }
    let lines: Vec<&str> = sample.lines().map(str::trim).filter(|l| !l.is_empty()).take(SAMPLE_LINES).collect();
    let tags = lines.iter().filter(|l| l.starts_with('<')).count();
    let closing = lines.iter().filter(|l| l.contains("</") || l.ends_with("/>")).count();
    // An IRC line opens with `<nick>` too, but rarely ends with a tag.
    let ended = lines.iter().filter(|l| l.ends_with('>')).count();
    lines.len() >= 4 && tags * 10 >= lines.len() * 8 && closing * 4 >= lines.len() && ended * 10 >= lines.len() * 6
}

/// A YAML document in block style: among the sampled lines outside block scalars (`run: |`
/// and the deeper lines under it), comments and `---` / `...` markers left out, at least 90%
/// are `key:` lines (a key without spaces, or quoted, then `:` and a space or the line's end)
/// (or a key of up to four words that opens a block: `Release x86:`) or `- ` items, at least
/// half of them and at least 3 are `key:` lines, and the keys nest: a
/// `key:` line that ends with its colon has a deeper line under it, and at least two key or
/// item lines are indented. Chat (`Alice: hi`) and `Title: …` passages have prose lines and
/// no nesting; a markdown list has no keys.
pub(crate) fn looks_like_yaml(text: &str) -> bool {
    let sample = prefix(text, SAMPLE_BYTES);
    let (mut content, mut keys, mut items, mut indented, mut nested) = (0usize, 0usize, 0usize, 0usize, false);
    // Lines under a key that are neither keys nor items, and the indentation of the last key.
    let (mut values, mut last_key) = (0usize, None::<usize>);
    // The indentation of the key line that opened a block scalar, while inside it.
    let mut scalar_of: Option<usize> = None;
    // The indentation of the last key line that ended with its colon, until the next line.
    let mut open_key: Option<usize> = None;
    for line in sample.lines().filter(|l| !l.trim().is_empty()).take(SAMPLE_LINES) {
        let line = prefix(line, LINE_PREFIX);
        let indent = line.len() - line.trim_start().len();
        if line.starts_with('\t') {
            return false;
        }
        if let Some(k) = scalar_of {
            if indent > k {
                continue;
            }
            scalar_of = None;
        }
        let t = line.trim();
        if let Some(k) = open_key.take() {
            nested |= indent > k;
        }
        if t.starts_with('#') || t == "---" || t == "..." {
            continue;
        }
        content += 1;
        let (item, rest) = match t.strip_prefix("- ") {
            Some(r) => (true, r.trim_start()),
            None => (t == "-", t),
        };
        let value = yaml_key(rest).or_else(|| (!item).then(|| report_key(t)).flatten());
        match value {
            Some(v) => {
                keys += 1;
                let v = v.split(" #").next().unwrap_or("").trim();
                if v.is_empty() {
                    open_key = Some(indent);
                } else if matches!(v.trim_end_matches(['-', '+']), "|" | ">") {
                    scalar_of = Some(indent);
                }
            }
            None if item => items += 1,
            // A value continued under its key (`Labels:  app=web` then `        team=x`), or a
            // row of a table a key opened (`Events:` then `  Type  Reason  Age …`).
            None if last_key.is_some_and(|k| indent > k) => {
                values += 1;
                continue;
            }
            None => continue,
        }
        last_key = Some(indent);
        if indent > 0 {
            indented += 1;
        }
    }
    let structured = keys + items;
    // Values under keys fill in a report, never outnumber its keys (a changelog's entries
    // under `Bug fixes:` do).
    keys >= 3
        && keys * 2 >= structured
        && values <= keys
        && (structured + values) * 10 >= content * 9
        && nested
        && indented >= 2
}

/// Whether an outlined text is a report (`kubectl describe`, `systemctl show`) rather than a
/// configuration: at least three of its key lines align their values in a column, two or more
/// spaces after the colon, and they are at least a fifth of its key lines.
pub(crate) fn is_report(text: &str) -> bool {
    let (mut keys, mut aligned) = (0usize, 0usize);
    for line in prefix(text, SAMPLE_BYTES).lines().take(SAMPLE_LINES) {
        let t = line.trim();
        if !is_key_line(t) {
            continue;
        }
        keys += 1;
        aligned += usize::from(t.split_once(':').is_some_and(|(_, v)| v.starts_with("  ") && !v.trim().is_empty()));
    }
    aligned >= 3 && aligned * 5 >= keys
}

/// Whether a line of YAML or of a report is a key's (`key: value`, `- key: value`, `Start
/// Time:   …`) rather than a row or text under one.
pub(crate) fn is_key_line(line: &str) -> bool {
    let t = line.trim();
    let rest = t.strip_prefix("- ").map_or(t, str::trim_start);
    yaml_key(rest).is_some() || report_key(t).is_some()
}

/// The value of a report's `Key Of Words:   value` line (`kubectl describe`, `systemctl
/// status`): a key of one to four capitalised words, its colon, then the line's end or at least
/// two spaces before the value, which aligns the values of a block into a column.
fn report_key(t: &str) -> Option<&str> {
    let (key, rest) = t.split_once(':')?;
    let words = key.split(' ').collect::<Vec<_>>();
    let is_word = |w: &&str| {
        w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    let aligned = rest.is_empty() || rest.starts_with("  ");
    (key.len() <= 40 && words.len() <= 4 && words.iter().all(is_word) && aligned).then_some(rest)
}

/// The value after a YAML `key:` at the start of `t` (empty when the line ends there), or
/// `None` when `t` does not start with a key.
fn yaml_key(t: &str) -> Option<&str> {
    let end = if let Some(q) = t.strip_prefix('"').or_else(|| t.strip_prefix('\'')) {
        let close = q.find(['"', '\''])?;
        close + 2
    } else {
        t.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '$' | '@' | '<')))
            .unwrap_or(t.len())
    };
    let Some(rest) = t[end..].strip_prefix(':') else {
        // A short key of a few words that opens a block (`Release SIMD:`).
        let words = t.strip_suffix(':').filter(|k| k.len() <= 40 && !k.contains(": "))?;
        return (words.split(' ').count() <= 4).then_some("");
    };
    (end > 0 && (rest.is_empty() || rest.starts_with(' '))).then_some(rest)
}

/// The longest prefix of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Lines needed before regularity alone says "logs".
const REGULAR_MIN_LINES: usize = 8;

/// Many lines sharing a machine-written shape: the test for logs in formats the timestamp and
/// level tests do not know (`081109 203615 148 INFO dfs.DataNode…`, `134681 node-246 unix.hw
/// …`, `1117838570 R02-M1 …`, `[notice] …`, `Step_LSC|30002312|…`).
///
/// Tokens are split on white space and `|`. A token's shape writes runs of digits `0` and
/// runs of ASCII letters `a` (`081109` → `0`, `node-246` → `a-0`, `[notice]` → `[a]`). A
/// token looks machine-written when it has a digit, one of `[ ] | < > { } _ $ @ \`, or a
/// `:` `.` `/` `=` inside it (see [`looks_machine_written`]). A line's shape is its first
/// token's shape when that token looks machine-written (then the class of the second
/// token's first character); or, after a plain word (a host, a component), the second
/// token's shape when it holds a digit (`sshd[24200]:`). Lines that start like markdown or
/// comments (`#`, `|`, `>`, `-`, `*`, `+`, `/`, a backtick) or with punctuation alone,
/// numbered-list items (`1.`), `word:` labels and chat lines with a `<nick>` have no shape.
/// At least 60% of the lines must have one of the three most common shapes, each held by
/// two lines or more.
fn is_regular_machine_text(lines: &[&str]) -> bool {
    let n = lines.len();
    if n < REGULAR_MIN_LINES {
        return false;
    }
    let mut shapes: Vec<(String, usize)> = Vec::new();
    for line in lines {
        let Some(shape) = machine_shape(line) else {
            continue;
        };
        if let Some((_, c)) = shapes.iter_mut().find(|(s, _)| *s == shape) {
            *c += 1;
        } else if shapes.len() < 64 {
            // Few shapes matter; a text with very many is not regular anyway.
            shapes.push((shape, 1));
        }
    }
    shapes.sort_by_key(|s| std::cmp::Reverse(s.1));
    let top: usize = shapes.iter().take(3).map(|(_, c)| *c).filter(|&c| c >= 2).sum();
    top * 10 >= n * 6
}

/// The machine-written shape of a line's start, if it has one; see
/// [`is_regular_machine_text`].
fn machine_shape(line: &str) -> Option<String> {
    // A table row (`| Team | $794/mo | 5 |`, markdown or a database shell's) is no log line,
    // whatever its cells hold; a log's fields may open with a `|` (`|Step_LSC|3000|…`).
    let t = line.trim();
    if t.len() > 1 && t.starts_with('|') && t.ends_with('|') {
        return None;
    }
    let mut tokens = line.split(|c: char| c.is_whitespace() || c == '|').filter(|t| !t.is_empty());
    let first = tokens.next()?;
    let second = tokens.next().unwrap_or("");
    let chat_nick = |t: &str| t.len() > 2 && t.starts_with('<') && !t[1..].starts_with(|c: char| c.is_ascii_digit());
    if first.starts_with(['#', '|', '>', '-', '*', '+', '/', '`'])
        || !first.contains(|c: char| c.is_alphanumeric())
        || chat_nick(first)
        || chat_nick(second)
    {
        return None;
    }
    let first_shape = token_shape(first);
    if matches!(first_shape.as_str(), "0." | "0)" | "a:") || is_clause_number(first, second) {
        return None;
    }
    if looks_machine_written(first) {
        let mut shape = first_shape;
        shape.push(' ');
        shape.push(match second.chars().next() {
            Some(c) if c.is_ascii_digit() => '0',
            Some(c) if c.is_alphabetic() => 'a',
            Some(c) => c,
            None => '$',
        });
        return Some(shape);
    }
    // A word (a host, a component), then a field with a number (`sshd[24200]:`, a pid).
    let second_shape = token_shape(second);
    (first_shape == "a" && second_shape.contains('0')).then(|| format!("a {second_shape}"))
}

/// A numbered clause or section of a document (`2.1 This Agreement…`, `4.3.2 "Fees" means…`):
/// two to four groups of at most three digits, then a capital, a quote or a bracket. An
/// epoch timestamp (`1617181920.123`) has longer groups.
fn is_clause_number(first: &str, second: &str) -> bool {
    let groups: Vec<&str> = first.strip_suffix('.').unwrap_or(first).split('.').collect();
    (2..=4).contains(&groups.len())
        && groups.iter().all(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()))
        && second.starts_with(|c: char| c.is_uppercase() || matches!(c, '"' | '“' | '(' | '\''))
}

/// A token with runs of digits written `0` and runs of ASCII letters `a` (at most 48
/// characters looked at).
fn token_shape(token: &str) -> String {
    let mut shape = String::new();
    for c in token.chars().take(48) {
        let class = if c.is_ascii_digit() {
            '0'
        } else if c.is_ascii_alphabetic() {
            'a'
        } else {
            c
        };
        if !(matches!(class, '0' | 'a') && shape.ends_with(class)) {
            shape.push(class);
        }
    }
    shape
}

/// A digit, one of `[ ] | < > { } _ $ @ \`, or a `:` `.` `/` `=` between letters or digits
/// with at least two of them after it (`dfs.DataNode`, `a=b0`, not `U.S.`).
fn looks_machine_written(token: &str) -> bool {
    let b = token.as_bytes();
    if b.iter().any(|c| {
        c.is_ascii_digit() || matches!(c, b'[' | b']' | b'|' | b'<' | b'>' | b'{' | b'}' | b'_' | b'$' | b'@' | b'\\')
    }) {
        return true;
    }
    (1..b.len()).any(|i| {
        matches!(b[i], b':' | b'.' | b'/' | b'=')
            && b[i - 1].is_ascii_alphanumeric()
            && b.get(i + 1..i + 3).is_some_and(|r| r.iter().all(u8::is_ascii_alphanumeric))
    })
}

/// The output of a build, a test run or a command that failed: at least two unindented lines
/// open with an error word (`error[E0308]: …`, `FAILED tests/…`, pytest's `E   assert …`,
/// `Traceback …`, `fatal: …`), and little of the text is prose (lines ending with a period),
/// code (lines ending with `;`, `{`, `}`, `)` or `,`; under 30% each) or markdown (headings,
/// fences). The log handler keeps its
/// errors, their locations and its summary first, and folds repeats (`Compiling …`).
fn is_failed_run(lines: &[&str]) -> bool {
    const ERROR_WORDS: &[&str] =
        &["critical", "error", "exception", "fail", "failed", "failure", "fatal", "panic", "panicked", "traceback"];
    let n = lines.len();
    // At the line's start, not indented (code's `err = …` and `error: null,` are).
    let opens_with_error = |l: &str| {
        let word = l.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
        // pytest's `E` lines: the capital, then a run of spaces.
        if word == "E" {
            return l[1..].starts_with("  ");
        }
        ERROR_WORDS.contains(&word.to_ascii_lowercase().as_str())
    };
    let errors = lines.iter().filter(|l| opens_with_error(l)).count();
    let prose = lines.iter().filter(|l| l.trim_end().ends_with('.')).count();
    let code = lines.iter().filter(|l| l.trim_end().ends_with([';', '{', '}', ')', ','])).count();
    let markdown = lines.iter().any(|l| l.starts_with("```") || l.starts_with("# ") || l.starts_with("## "));
    errors >= 2 && !markdown && prose * 10 < n * 3 && code * 10 < n * 3
}

/// A line of a stack trace under a log line: a Java or JavaScript frame (`at a.b.C.m(C.java:12)`,
/// `at handler (/srv/app.js:10:5)`), `Caused by: …`, `... 21 more` / `... 21 common frames
/// omitted`, or a Python traceback's `Traceback (most recent call last):` and
/// `File "x.py", line 3, in f`.
fn is_trace_frame(line: &str) -> bool {
    let t = line.trim();
    if let Some(frame) = t.strip_prefix("at ") {
        let site = frame.split_whitespace().next().unwrap_or("");
        let located = t.ends_with(')') || t.ends_with(|c: char| c.is_ascii_digit());
        return located && !site.is_empty() && site.contains(['.', '/', '(', ':']) && !site.ends_with(',');
    }
    if let Some(rest) = t.strip_prefix("... ") {
        return rest.starts_with(|c: char| c.is_ascii_digit())
            && (rest.ends_with(" more") || rest.ends_with(" omitted"));
    }
    t.starts_with("Caused by: ")
        || t.starts_with("Suppressed: ")
        || t == "Traceback (most recent call last):"
        || (t.starts_with("File \"") && t.contains("\", line "))
}

/// The line that names an exception and its message, which ends a stack trace:
/// `requests.exceptions.HTTPError: 429 …`, `ValueError: bad input`,
/// `java.lang.IllegalStateException`, `Exception in thread "main" …`, Rust's `thread 'main'
/// panicked at …`.
pub(crate) fn is_exception_line(line: &str) -> bool {
    let t = line.trim();
    if t.starts_with("Exception in thread ") || (t.starts_with("thread '") && t.contains("' panicked at ")) {
        return true;
    }
    // A class name, dotted or not, then `:` and the message (or, dotted, alone).
    let name = t.split(':').next().unwrap_or("");
    let last = name.rsplit('.').next().unwrap_or("");
    let identifier = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    name.split('.').all(identifier)
        && last.len() > 5
        && last.starts_with(|c: char| c.is_ascii_uppercase())
        && (last.ends_with("Error") || last.ends_with("Exception"))
        && (name.len() < t.len() || name.contains('.'))
}

/// A timestamp or level word near the start of the line.
pub(crate) fn is_log_line(line: &str) -> bool {
    let head = prefix(line, 80);
    has_timestamp(head) || has_level(head)
}

fn has_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    for i in 0..b.len() {
        // 2024-05-01 or 2024/05/01
        if digit(i)
            && digit(i + 1)
            && digit(i + 2)
            && digit(i + 3)
            && matches!(b.get(i + 4), Some(b'-' | b'/'))
            && digit(i + 5)
            && digit(i + 6)
        {
            return true;
        }
        // 10:04:11
        if digit(i)
            && digit(i + 1)
            && b.get(i + 2) == Some(&b':')
            && digit(i + 3)
            && digit(i + 4)
            && b.get(i + 5) == Some(&b':')
            && digit(i + 6)
            && digit(i + 7)
        {
            return true;
        }
    }
    // [12345.678] kernel style
    s.strip_prefix('[').and_then(|r| r.split_once(']')).is_some_and(|(inside, _)| {
        let inside = inside.trim();
        inside.contains('.')
            && inside.starts_with(|c: char| c.is_ascii_digit())
            && inside.chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

fn has_level(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_alphabetic()).take(8).any(|w| LEVELS.contains(&w))
}

fn is_heading(line: &str) -> bool {
    let t = line.trim_start();
    let hashes = t.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes) && t[hashes..].starts_with(' ')
}

fn is_markdown_line(line: &str) -> bool {
    let t = line.trim_start();
    if is_heading(line) || t.starts_with("```") || t.starts_with("> ") {
        return true;
    }
    if (t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ")) && t.len() > 2 {
        return true;
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 4 && t[digits..].starts_with(". ") {
        return true;
    }
    if t.starts_with('|') && t.trim_end().ends_with('|') {
        return true;
    }
    // Links and emphasis.
    t.contains("](") || (t.starts_with("**") && t[2..].contains("**"))
}

fn is_code_line(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() {
        return false;
    }
    if CODE_STARTS.iter().any(|k| t.starts_with(k)) {
        // A sentence that starts with "If " or "For " is not code: keywords are lower case.
        return true;
    }
    let last = t.as_bytes()[t.len() - 1];
    if matches!(last, b'{' | b'}' | b';' | b'(') && !t.ends_with(". {") {
        return true;
    }
    if last == b':' && line.starts_with(char::is_alphabetic) && t.contains('(') {
        return true; // python `def f(x):`-like lines caught above; `if x(y):`
    }
    if line.starts_with("    ") || line.starts_with('\t') {
        // Indented lines with code punctuation.
        return t.contains(" = ") || t.contains("()") || t.contains("->") || t.contains("=>");
    }
    if t.starts_with("\"\"\"") || t.starts_with("'use strict'") {
        return true;
    }
    is_assignment(t) || (t.contains(" = ") && (t.ends_with(')') || t.ends_with(']') || t.ends_with('"')))
}

/// `name = …`, `obj.field += …`, `items[0] = …`: an identifier path, then an assignment.
fn is_assignment(t: &str) -> bool {
    let lhs_end =
        t.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '$'))).unwrap_or(t.len());
    if lhs_end == 0 || t[..lhs_end].starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let rest = &t[lhs_end..];
    let assigned = [" = ", " += ", " -= ", " := "].iter().any(|op| rest.starts_with(op));
    let annotated = [": str", ": int", ": bool", ": float"]
        .iter()
        .any(|ty| rest == *ty || rest.strip_prefix(ty).is_some_and(|r| r.starts_with(" =")));
    assigned || annotated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_lines_are_told_from_prose_and_frames() {
        for l in [
            "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests",
            "ValueError: invalid literal for int() with base 10: 'x'",
            "java.lang.IllegalStateException",
            "Exception in thread \"main\" java.lang.NullPointerException",
            "thread 'main' panicked at src/main.rs:4:5:",
        ] {
            assert!(is_exception_line(l), "{l}");
        }
        for l in [
            "Error: could not connect",
            "The error: nothing was saved.",
            "  File \"/opt/run.py\", line 112, in <module>",
            "MyError",
            "raise HTTPError(http_error_msg, response=self)",
        ] {
            assert!(!is_exception_line(l), "{l}");
        }
    }

    #[test]
    fn detects_json() {
        assert_eq!(detect(" {\"a\": [1, 2, {\"b\": null}]}\n"), ContentType::Json);
        assert_eq!(detect("[1, 2, 3]"), ContentType::Json);
        // Looks like JSON but does not parse.
        assert_ne!(detect("{\"a\": 1,, }"), ContentType::Json);
        // Deeper than serde_json goes is still JSON (the engine then keeps it valid).
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(detect(&deep), ContentType::Json);
    }

    #[test]
    fn a_table_of_names_and_numbers_is_markdown_not_a_log() {
        let mut table = String::from("| Plan | Price | Requests/s |\n|---|---|---|\n");
        let plans =
            ["Hobby", "Starter", "Team", "Business", "Scale", "Growth", "Premium", "Enterprise", "Custom", "Edu"];
        for (k, plan) in plans.iter().enumerate() {
            table.push_str(&format!("| {plan} | ${}/mo | {} |\n", 100 * k + 9, 5 * k + 1));
        }
        assert_eq!(detect(&table), ContentType::Markdown);
        assert_eq!(detect(&format!("# Pricing\n\nOur plans.\n\n{table}")), ContentType::Markdown);
    }

    #[test]
    fn numbered_clauses_are_a_document_and_epoch_stamped_lines_a_log() {
        let mut contract = String::from("SERVICES AGREEMENT\n\n");
        for section in 1..=4 {
            contract.push_str(&format!("{section}. SECTION {section}\n\n"));
            for clause in 1..=3 {
                contract.push_str(&format!(
                    "{section}.{clause} The Supplier shall give the Customer notice of change {clause} in writing.\n\n"
                ));
            }
        }
        assert_ne!(detect(&contract), ContentType::Logs);
        let log: String = (0..12).map(|i| format!("1617181920.{i:03} INFO worker {i} done\n")).collect();
        assert_eq!(detect(&log), ContentType::Logs);
    }

    #[test]
    fn xml_is_code_and_a_page_or_an_irc_log_is_not() {
        let mut pom = String::from("<project>\n  <dependencies>\n");
        for i in 0..6 {
            pom.push_str(&format!("    <dependency>\n      <artifactId>lib-{i}</artifactId>\n    </dependency>\n"));
        }
        pom.push_str("  </dependencies>\n</project>\n");
        assert_eq!(detect(&pom), ContentType::Code);
        assert_eq!(detect("<?xml version=\"1.0\"?>\n<note><to>Tove</to></note>\n"), ContentType::Code);
        let page = include_str!("../../tests/support/article.html");
        assert_ne!(detect(page), ContentType::Code);
        let irc = "<alice> anyone seen the build break?\n<bob> yes, since </div> was removed\n<alice> ok\n<carol> fixed now\n";
        assert!(!looks_like_xml(irc));
    }

    #[test]
    fn a_failed_build_or_test_run_is_a_log_and_code_handling_errors_is_not() {
        let build = "   Compiling serde v1.0.210\n   Compiling billing v0.3.1 (/srv/billing)\n\
                     error[E0308]: mismatched types\n  --> src/invoice.rs:42:20\n   |\n\
                     42 |     let total: u32 = lines.iter().sum::<u64>();\n   |                ^^^ expected `u32`\n\n\
                     error[E0425]: cannot find function `round_cents` in this scope\n  --> src/invoice.rs:57:5\n\
                     error: could not compile `billing` (lib) due to 2 previous errors\n";
        assert_eq!(detect(build), ContentType::Logs);
        let pytest = "collected 214 items\n\ntests/test_billing.py ....F..F [62%]\n\n\
                      >       assert invoice_total([10, 20]) == 31\nE       assert 30 == 31\n\n\
                      tests/test_billing.py:120: AssertionError\n\
                      FAILED tests/test_billing.py::test_refund_partial - RefundError: cannot refund 30\n\
                      FAILED tests/test_billing.py::test_invoice_totals - assert 30 == 31\n";
        assert_eq!(detect(pytest), ContentType::Logs);
        let go = "func load(path string) (*Config, error) {\n\tdata, err := os.ReadFile(path)\n\
                  \tif err != nil {\n\t\treturn nil, err\n\t}\n\terr = json.Unmarshal(data, &cfg)\n\
                  \tif err != nil {\n\t\treturn nil, fmt.Errorf(\"parse %s: %w\", path, err)\n\t}\n\treturn &cfg, nil\n}\n";
        assert_ne!(detect(go), ContentType::Logs);
    }

    #[test]
    fn a_log_with_long_stack_traces_is_a_log() {
        let mut log = String::new();
        for i in 0..6 {
            log.push_str(&format!(
                "2024-07-22 14:31:{i:02}.475  INFO 4187 --- [main] c.a.App : GET /api/invoices/{i} -> 200\n"
            ));
        }
        log.push_str("2024-07-22 14:31:32.146 ERROR 4187 --- [job-1] c.a.Job : Invoice generation failed\n");
        log.push_str("org.springframework.dao.DataIntegrityViolationException: could not execute statement\n");
        for i in 0..25 {
            log.push_str(&format!("\tat org.springframework.aop.Proxy{i}.invoke(Proxy{i}.java:{})\n", 100 + i));
        }
        log.push_str("Caused by: org.postgresql.util.PSQLException: duplicate key\n\t... 21 common frames omitted\n");
        log.push_str("2024-07-22 14:31:42.688  INFO 4187 --- [job-1] c.a.Job : finished: 1,282 generated, 2 failed\n");
        assert_eq!(detect(&log), ContentType::Logs);
        let python = "2024-05-01 10:00:01,120 INFO etl: batch 17 started\n2024-05-01 10:00:02,340 ERROR etl: load failed\n\
                      Traceback (most recent call last):\n  File \"/app/etl/main.py\", line 142, in run\n    load(batch)\n\
                      \x20 File \"/app/etl/load.py\", line 88, in load\n    raise LoadError(batch.id)\n\
                      etl.errors.LoadError: batch 17\n2024-05-01 10:00:03,001 INFO etl: retrying batch 17\n";
        assert_eq!(detect(python), ContentType::Logs);
        // Prose that mentions being "at" places is no stack trace.
        let prose =
            "We met at the station. At noon the train left.\nShe was at home (mostly).\nThey arrived at 10:30.\n";
        assert_ne!(detect(prose), ContentType::Logs);
    }

    #[test]
    fn meeting_transcripts_and_chat_app_copies_are_chats() {
        let mut teams = String::new();
        for (i, (who, said)) in [
            ("Speaker 1", "Hey, can you hear me okay?"),
            ("Speaker 2", "Yeah, loud and clear. Just waiting for Olu."),
            ("Speaker 3", "Morning! Sorry, my camera is being weird today."),
            ("Speaker 1", "No worries at all. How was the offsite?"),
            ("Speaker 2", "Good, we agreed on the Q3 budget request."),
        ]
        .iter()
        .enumerate()
        {
            teams.push_str(&format!("{who} (00:0{i}:1{i}):\n{said}\n\n"));
        }
        assert_eq!(detect(&teams), ContentType::Chat);
        let named = teams.replace("Speaker 1", "Hannah Whitfield").replace("Speaker 2", "Nadia Petrova");
        assert_eq!(detect(&named), ContentType::Chat);
        let turns = super::super::chat::parse(&teams).unwrap();
        assert_eq!(turns.len(), 5);
        let copy = "You said:\nHow do I fix a CORS error from my Flask API?\nChatGPT said:\n\nEnable CORS in Flask with flask-cors.\n\n\
                    You said:\nthat worked! what about production?\nChatGPT said:\n\nList the production origins explicitly.\n";
        assert_eq!(detect(copy), ContentType::Chat);
        let turns = super::super::chat::parse(copy).unwrap();
        assert_eq!(turns.len(), 4);
        assert_eq!(&copy[turns[1].speaker.unwrap().0..turns[1].speaker.unwrap().1], "ChatGPT");
    }

    #[test]
    fn detects_chat() {
        let chat = "User: Hi, can you help me plan a trip to Lisbon?\n\
                    Assistant: Of course. When are you travelling?\n\
                    User: In May, for four days.\n\
                    Assistant: May is a good month. Here is a plan.\n";
        assert_eq!(detect(chat), ContentType::Chat);
        let bracketed = "[system] You are terse.\n[user] what is 2+2\n[assistant] 4\n";
        assert_eq!(detect(bracketed), ContentType::Chat);
        let human = "Human: tell me a joke\n\nAI: Why did the chicken cross the road?\n";
        assert_eq!(detect(human), ContentType::Chat);
    }

    #[test]
    fn detects_logs() {
        let logs = "2024-05-01 10:00:01,123 INFO  [main] Starting service v1.2.3\n\
                    2024-05-01 10:00:02,456 WARN  [pool] Pool is nearly full\n\
                    2024-05-01 10:00:03,789 ERROR [worker-1] Job failed\n\
                    java.lang.IllegalStateException: boom\n\
                    \tat com.acme.Job.run(Job.java:10)\n\
                    2024-05-01 10:00:04,000 INFO  [main] Retrying\n";
        assert_eq!(detect(logs), ContentType::Logs);
        let syslog = "May  1 10:00:01 host sshd[123]: Accepted key\n\
                      May  1 10:00:02 host sshd[123]: session opened\n\
                      May  1 10:00:03 host CRON[9]: job ran\n";
        assert_eq!(detect(syslog), ContentType::Logs);
    }

    #[test]
    fn detects_logs_by_their_regularity() {
        let hdfs = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating\n\
                    081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating\n\
                    081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864\n\
                    081109 204015 308 INFO dfs.DataNode$PacketResponder: PacketResponder 2 for block blk_8229193803249955061 terminating\n\
                    081109 204106 329 INFO dfs.DataNode$PacketResponder: Received block blk_-6670958622368987959 of size 67108864 from /10.251.43.115\n";
        assert_eq!(detect(&hdfs.repeat(2)), ContentType::Logs);
        let hpc = "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=5266)\n\
                   134682 node-109 action start 1077804743 1 clusterAddMember (command 1902)\n\
                   134683 node-246 unix.hw state_change.unavailable 1077804745 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=5269)\n\
                   134684 node-70 node status 1077804747 1 running\n\
                   134685 node-71 node status 1077804748 1 running\n";
        assert_eq!(detect(&hpc.repeat(2)), ContentType::Logs);
        let no_time = "[notice] jk2_init() Found child 6725 in scoreboard slot 10\n\
                       [error] mod_jk child workerEnv in error state 6\n\
                       [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties\n\
                       [notice] jk2_init() Found child 6726 in scoreboard slot 8\n\
                       [error] mod_jk child workerEnv in error state 7\n";
        assert_eq!(detect(&no_time.repeat(2)), ContentType::Logs);
    }

    #[test]
    fn regular_text_that_is_not_machine_written_is_not_logs() {
        let list = "1. Open the app.\n2. Sign in.\n3. Pick a plan.\n4. Pay.\n5. Enjoy it.\n6. Tell friends.\n";
        assert_ne!(detect(&list.repeat(2)), ContentType::Logs);
        let irc = "[01:35] <djtansey> i have a problem re: k3b\n\
                   [01:36] <ubotu> try the forums\n\
                   [01:36] <djtansey> which ones\n\
                   [01:37] <nick3> the ubuntu ones\n\
                   [01:38] <djtansey> thanks\n";
        assert_ne!(detect(&irc.repeat(2)), ContentType::Logs);
        let yaml = "name: app\nversion: 2\nimage: nginx\nreplicas: 3\nport: 8080\nhost: example\n";
        assert_ne!(detect(&yaml.repeat(2)), ContentType::Logs);
        let toc = "- [Install](#install)\n- [Usage](#usage)\n- [Config](#config)\n- [API](#api)\n- [FAQ](#faq)\n";
        assert_ne!(detect(&toc.repeat(2)), ContentType::Logs);
    }

    #[test]
    fn a_few_lines_with_urls_and_numbers_are_not_logs() {
        let prose = "Title: Aaa\nhttps://example.com/a.b.\n\nU.S. Wacb. https://example.com/a.b a avb qf\n\nTitle: Rsu\n0 235 U.S. Dr. Ujk Xtgtnyl Dr. U.S..";
        assert_eq!(detect(prose), ContentType::Prose);
    }

    #[test]
    fn detects_code() {
        let rust = "use std::io;\n\nfn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";
        assert_eq!(detect(rust), ContentType::Code);
        let py = "import os\n\ndef main(argv):\n    path = os.getcwd()\n    return path\n\nclass A:\n    pass\n";
        assert_eq!(detect(py), ContentType::Code);
        let go = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n";
        assert_eq!(detect(go), ContentType::Code);
        let commented = "#!/usr/bin/env python3\n# Copyright 2024 Acme\n# Licensed under MIT\n\n# Helpers for paths.\nimport os\n\n\n# Return the home folder.\ndef home():\n    # may be unset\n    return os.environ.get(\"HOME\")\n";
        assert_eq!(detect(commented), ContentType::Code);
        let js = "const x = require('x');\nfunction f(a) {\n  return a + 1;\n}\nmodule.exports = f;\n";
        assert_eq!(detect(js), ContentType::Code);
        // A Java file that is mostly licence and Javadoc, its lists and examples included.
        let doc = "    /**\n     * Returns the element at the given position of this list.\n     *\n     * - the index must be in range\n     * - negative values throw\n     *\n     * ```\n     * list.get(0);\n     * ```\n     */\n";
        let java = format!(
            "/*\n * Copyright (c) 2024 Acme.\n * Licensed under the Apache License.\n */\npackage com.acme;\n\nimport java.util.List;\n\n/**\n * A list.\n */\npublic class Items {{\n{doc}    public int get(int i) {{\n        return i;\n    }}\n{doc}    public int size() {{\n        return 0;\n    }}\n{doc}{doc}}}\n"
        );
        assert_eq!(detect(&java), ContentType::Code);
    }

    #[test]
    fn yaml_is_outlined_as_code_and_look_alikes_are_not() {
        let workflow = include_str!("../../tests/support/deploy.yml");
        assert!(looks_like_yaml(workflow));
        assert_eq!(detect(workflow), ContentType::Code);
        let compose = "services:\n  web:\n    image: nginx:1.27\n    ports:\n      - \"8080:80\"\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: example\n";
        assert_eq!(detect(compose), ContentType::Code);
        // Keys of a few words that open blocks (Azure's matrix entries).
        let azure = "strategy:\n  matrix:\n    Release SIMD:\n      BuildType: release\n    Debug x86:\n      BuildType: debug\n";
        assert!(looks_like_yaml(azure));
        // Named lines without nesting, prose under labels, a markdown list: not YAML.
        let chat = "Alice: are we shipping today?\nBob: yes, after the review\nAlice: great\nBob: I'll tag it\n";
        assert!(!looks_like_yaml(chat));
        let passages = "Title: Lisbon\nLisbon is the capital of Portugal. It lies on the Tagus.\n\nTitle: Porto\nPorto is the second city.\n";
        assert!(!looks_like_yaml(passages));
        let list = "Things to pack:\n  - a warm coat for the evenings\n  - walking shoes\n  - the charger\nThen book the taxi.\n";
        assert!(!looks_like_yaml(list));
        // A report of aligned `Key Of Words:   value` lines (`kubectl describe`), with values
        // continued under their keys and a table under `Events:`.
        let report = "Name:             web-1\nService Account:  web\nStart Time:       Mon, 07 Dec 2026\n\
                      Labels:           app=web\n                  team=shop\nContainers:\n  api:\n\
                      \x20   Image:          shop/api:2.1\n    Restart Count:  14\n    Limits:\n      memory:  512Mi\n\
                      Events:\n  Type     Reason   Age  Message\n  Warning  BackOff  2m   Back-off restarting\n";
        assert!(looks_like_yaml(report) && is_report(report));
        assert!(!is_report(workflow) && !is_report(compose));
        // A changelog: a few keys (`Bug fixes:`), their entries under them outnumbering them.
        let changelog = "Release 2.5.0 Tue October 25 2022\n        Security fixes:\n\
                         \x20 #616  CVE-2022-43680 -- Fix heap use-after-free after overeager\n\
                         \x20                 destruction of a shared DTD in function\n\
                         \x20                 XML_ExternalEntityParserCreate in out-of-memory situations.\n\
                         \x20       Bug fixes:\n       #612  Fix curruption from undefined entities\n\
                         \x20      #613  Fix case when parsing was suspended while processing nested\n\
                         \x20                   entities\n        Other changes:\n            #663  Protect header\n";
        assert!(!looks_like_yaml(changelog));
    }

    #[test]
    fn detects_markdown() {
        let md = "# Install\n\nRun the installer, then:\n\n- open the app\n- sign in\n\n\
                  ```sh\nomnimemory serve\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        assert_eq!(detect(md), ContentType::Markdown);
        let md2 = "## Notes\n\nSome text here about the project and its goals.\n\n1. first point\n2. second point\n";
        assert_eq!(detect(md2), ContentType::Markdown);
    }

    #[test]
    fn detects_prose() {
        let prose = "The Eiffel Tower was completed in 1889. It was the tallest structure in the \
                     world for forty-one years. If you visit, go early: queues are long by noon.\n\n\
                     Paris has many other sights, such as the Louvre and Notre-Dame.";
        assert_eq!(detect(prose), ContentType::Prose);
        assert_eq!(detect(""), ContentType::Prose);
    }

    #[test]
    fn huge_inputs_are_read_as_what_they_are() {
        let a = "a".repeat(1 << 20);
        assert_eq!(detect(&a), ContentType::Prose);
        let line = "word ".repeat(200_000);
        assert_eq!(detect(&line), ContentType::Prose);
        let brackets = "[".repeat(1 << 20);
        assert_ne!(detect(&brackets), ContentType::Json);
    }

    proptest::proptest! {
        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}|[\\[\\]{}\"\\\\:, \n0-9a-z]{0,300}") {
            let _ = detect(&text);
        }
    }
}
