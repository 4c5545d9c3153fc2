//! Log compression: one example of every template with a count of its repeats, errors and
//! stack traces first.
//!
//! Segments are the input's lines (split on `\n`; a trailing newline does not make an extra
//! line). Each line gets a *severity*: error when it carries an error, exception or failure
//! word (`ERROR`, `FATAL`, `CRITICAL`, `SEVERE`, `panic`, `Traceback`, `failed`, `failure`,
//! `…Exception`, `…Error`, …) or an error level letter (`E`/`F` in a column of one-letter
//! levels, as in logcat, or leading a glog line, `E0612 …`); trace for the continuation lines
//! that follow an error (indented lines, `at …`, `Caused by:`, and the line right under it when
//! it starts no record of its own: `ERROR in a.tsx:41` over `TS2339: Property …`); warning for
//! `WARN`/`WARNING` (or a `W` level letter); other otherwise. Templates are mined from the lines themselves
//! (see `drain.rs`: variable tokens are those with digits and dates in words; lines of
//! different severity never share a template, and error lines need a closer match to share
//! one), so no log format needs to be known.
//!
//! A delimited table (CSV, TSV) that the log tests took for logs keeps its header row first
//! (`has_table_header`), and one line at its end says how many rows were dropped,
//! `  [… 182 of 200 rows omitted]`, instead of counts of "similar lines" under its rows.
//!
//! Priority, highest first:
//! 1. the first line of every error template (those of the gravest levels first: `FATAL`,
//!    `panic`, `[emerg]`, `CRITICAL`…; cheapest templates first within each), then the first
//!    line of every trace template (so a stack trace follows its error);
//! 2. lines matching the query's words (by their stems) or quoted phrases, best first, one per
//!    variant (in a delimited table, every matching row);
//! 3. the log's last line ([`LAST_LINES`]; where it ended: the service up again, a run's
//!    summary), but in a delimited table;
//! 4. one line of every warning template, then of every other template (the cheapest line of
//!    the template; cheap templates first, so a tight budget shows as many as it can); then the
//!    query's other matching lines, best first;
//! 5. the first line of each variant not yet shown (a template's lines that differ in one of
//!    a few words, `closed` / `reset`), then of each shape (every constant word), errors
//!    first, then larger ones first;
//! 6. the remaining lines, each shape's second line before any third, and so on; blank
//!    lines last.
//!
//! Output: the kept lines in input order, byte-exact, joined by `\n`. When lines of a kept
//! line's template were dropped, a *collapse line* follows it:
//! `  [… N similar lines omitted]` (two spaces, `[`, U+2026 HORIZONTAL ELLIPSIS, a space, the
//! decimal N, ` similar lines omitted]`). N counts the dropped lines attributed to that kept
//! line: each dropped line goes to the nearest kept line of its template before it (or, when
//! there is none, the first one after it). When M ≥ 2 consecutive output lines each have the
//! same N, one collapse line follows the last of them instead:
//! `  [… N similar lines omitted after each of the M lines above]` (a repeated stack trace
//! gets one collapse line, not one per frame). In a delimited table one line at the end says
//! instead how many rows were dropped: `  [… 182 of 200 rows omitted]`. These markers are the
//! only text this module adds; [`is_collapse_line`] recognises them. The ellipsis and the word
//! "omitted" say that the compressor, not the program that logged, wrote the line.
//!
//! What it does not do: it never rewrites or truncates a line (a single line larger than the
//! budget is never kept; if nothing but blank lines fits it gives `None` and the caller packs
//! the text line by line), and it does not reorder.
//!
//! Invariants of `Some(p)`: `count(&p.text) <= budget`, checked on the final text;
//! `retained_indices` are the kept line numbers (0-based, ascending); `kept_information`
//! averages over templates (weighted `ln(1 + lines)`, times 3 for errors, traces and
//! warnings): 0 for a template with no line shown, else `0.5 + 0.5 × shown/total` of its
//! lines; 1.0 only when nothing was dropped.
//!
//! Cost: linear in the input. Line costs are estimated from their characters and scaled to
//! the input's real token count; only whole candidate outputs are counted, a few times.

use super::Packed;
use super::drain;
use super::query::QueryWords;
use super::text::Lexicon;
use super::units::{Count, fit_units};

/// The log's last lines kept right after its errors and the query's matches: where it ended.
/// One: at 10x on logs-dev a second cost a template.
const LAST_LINES: usize = 1;

/// Collapse-line pieces; see the module docs for the exact form.
const MARKER_PREFIX: &str = "  [\u{2026} ";
const MARKER_SUFFIX: &str = " similar lines omitted";
const MARKER_EACH: &str = " after each of the ";
const MARKER_EACH_END: &str = " lines above";
/// The end of a delimited table's marker: `  [… 182 of 200 rows omitted]`.
const MARKER_ROWS: &str = " rows omitted";

/// Least similarity for an error line to join a template (others: `drain::SIMILARITY`).
const ERROR_SIMILARITY: f64 = 0.75;

/// Words that say nothing in a question about logs.
const DOMAIN_WORDS: &[&str] = &["log", "logs", "line", "lines"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Other,
    Warn,
    /// A stack-trace or continuation line of an error block.
    Trace,
    Error,
}

/// Whether `line` is a collapse line this module writes (see the module docs).
pub fn is_collapse_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix(MARKER_PREFIX).and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if let Some(total) = rest[digits..].strip_prefix(" of ").and_then(|r| r.strip_suffix(MARKER_ROWS)) {
        return digits > 0 && !total.is_empty() && total.bytes().all(|b| b.is_ascii_digit());
    }
    let Some(rest) = rest[digits..].strip_prefix(MARKER_SUFFIX) else {
        return false;
    };
    digits > 0
        && (rest.is_empty()
            || rest
                .strip_prefix(MARKER_EACH)
                .and_then(|r| r.strip_suffix(MARKER_EACH_END))
                .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())))
}

/// Words (any case) that make a line an error line.
const ERROR_WORDS: &[&str] = &[
    "error",
    "errors",
    "err",
    "fatal",
    "critical",
    "crit",
    "severe",
    "panic",
    "panicked",
    "exception",
    "exceptions",
    "traceback",
    "emerg",
    "alert",
    "fail",
    "fails",
    "failed",
    "failing",
    "failure",
    "failures",
];

fn word_severity(line: &str) -> Severity {
    let mut sev = Severity::Other;
    for w in line.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() >= 3).take(64) {
        let ends_with =
            |suffix: &str| w.len() >= suffix.len() && w[w.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
        let first = w.as_bytes()[0].to_ascii_lowercase();
        let error = (w.len() <= 10
            && matches!(first, b'e' | b'f' | b'c' | b's' | b'p' | b't' | b'a')
            && ERROR_WORDS.iter().any(|e| w.eq_ignore_ascii_case(e)))
            || (w.len() > 5 && w.as_bytes()[0].is_ascii_uppercase() && (ends_with("error") || ends_with("exception")));
        if error {
            return Severity::Error;
        }
        if first == b'w' && (w.eq_ignore_ascii_case("warn") || w.eq_ignore_ascii_case("warning")) {
            sev = Severity::Warn;
        }
    }
    sev
}

/// Error words of the gravest levels (syslog's emergency, alert and critical; fatal, panic).
const GRAVE_WORDS: &[&str] = &["fatal", "panic", "panicked", "emerg", "alert", "critical", "crit", "severe"];

/// Whether an error line is of the gravest levels: what stopped a program, where the lines
/// after it (`failed`, `exited`) tell what followed.
fn is_grave(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| (4..=9).contains(&w.len()))
        .take(64)
        .any(|w| GRAVE_WORDS.iter().any(|g| w.eq_ignore_ascii_case(g)))
}

/// Whether a line's words say something went wrong or may go wrong (an error or warning word:
/// `failed`, `Exception`, `Warning`), read as in a log.
pub(crate) fn raises_alarm(line: &str) -> bool {
    word_severity(line) != Severity::Other
}

/// The severity of an access-log line by its response status, which follows the quoted
/// request (`"GET /x HTTP/1.1" 504 0`, the common and combined formats): 5xx an error, 4xx a
/// warning.
fn status_severity(line: &str) -> Severity {
    let Some(at) = line.find(" HTTP/") else { return Severity::Other };
    let Some(quote) = line[at..].find("\" ") else { return Severity::Other };
    let status = line[at + quote + 2..].split(' ').next().unwrap_or("").as_bytes();
    match status {
        [b'5', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Severity::Error,
        [b'4', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Severity::Warn,
        _ => Severity::Other,
    }
}

fn letter_severity(letter: u8) -> Severity {
    match letter {
        b'E' | b'F' => Severity::Error,
        b'W' => Severity::Warn,
        _ => Severity::Other,
    }
}

/// Tokens of a line that level letters are looked for in.
const LEVEL_COLUMNS: usize = 6;

/// The token position (among the first [`LEVEL_COLUMNS`]) that holds one-letter levels
/// (`V D I W E F A`, as logcat writes them) in at least 30% of the lines, if any.
fn level_letter_column(lines: &[&str]) -> Option<usize> {
    let mut hits = [0usize; LEVEL_COLUMNS];
    for line in lines {
        for (p, tok) in line.split_whitespace().take(LEVEL_COLUMNS).enumerate() {
            if tok.len() == 1 && b"VDIWEFA".contains(&tok.as_bytes()[0]) {
                hits[p] += 1;
            }
        }
    }
    let (p, &best) = hits.iter().enumerate().max_by_key(|&(p, h)| (*h, usize::MAX - p))?;
    (best >= 3 && best * 10 >= lines.len() * 3).then_some(p)
}

/// The level letter of a glog-style line (`E0612 10:22:33.123456 …`).
fn glog_letter(line: &str) -> Option<u8> {
    let tok = line.split_whitespace().next()?.as_bytes();
    (tok.len() >= 5 && b"IWEF".contains(&tok[0]) && tok[1..5].iter().all(u8::is_ascii_digit)).then_some(tok[0])
}

fn is_continuation(line: &str) -> bool {
    let t = line.trim_start();
    if t.is_empty() {
        return false;
    }
    line.starts_with([' ', '\t'])
        || t.starts_with("at ")
        || t.starts_with("Caused by")
        || t.starts_with("... ")
        || t.starts_with("stack backtrace")
        || t.starts_with("note: run with")
}

fn severities(lines: &[&str]) -> Vec<Severity> {
    let column = level_letter_column(lines);
    let mut out = Vec::with_capacity(lines.len());
    let mut in_error_block = false;
    let mut after_error_line = false;
    for line in lines {
        let mut sev = word_severity(line).max(status_severity(line));
        if sev != Severity::Error {
            let letter = glog_letter(line).or_else(|| {
                let tok = line.split_whitespace().nth(column?)?;
                (tok.len() == 1).then(|| tok.as_bytes()[0])
            });
            if let Some(l) = letter {
                sev = sev.max(letter_severity(l));
            }
        }
        // The line right under an error line, when it starts no record of its own (no stamp,
        // no level), is that error's message: `ERROR in src/a.tsx:41:27` over `TS2339:
        // Property 'planTier' does not exist…`.
        let message = after_error_line && !line.trim().is_empty() && !super::detect::is_log_line(line);
        after_error_line = sev == Severity::Error;
        let sev = if sev == Severity::Error {
            in_error_block = true;
            Severity::Error
        } else if in_error_block && (is_continuation(line) || message) {
            Severity::Trace
        } else {
            in_error_block = false;
            sev
        };
        out.push(sev);
    }
    out
}

/// Reads lines against a query: its words by their stems (a query about "failed charges" finds
/// `charge failed`; a word with a digit must match as written), its phrases as written.
struct QueryMatch {
    phrases: Vec<String>,
    /// The query words' term ids (sorted), and the words with a digit (sorted).
    terms: Vec<u32>,
    numbers: Vec<String>,
    lexicon: Lexicon,
}

impl QueryMatch {
    fn new(q: &QueryWords) -> QueryMatch {
        let mut lexicon = Lexicon::new();
        let (mut terms, mut numbers) = (Vec::new(), Vec::new());
        for w in &q.words {
            if w.chars().any(|c| c.is_ascii_digit()) {
                numbers.push(w.clone());
            } else {
                terms.push(lexicon.term(w));
            }
        }
        terms.sort_unstable();
        terms.dedup();
        numbers.sort();
        QueryMatch { phrases: q.phrases.clone(), terms, numbers, lexicon }
    }

    /// Share of the query matched by a line, in [0, 1].
    fn relevance(&mut self, line: &str) -> f64 {
        let lower = line.to_lowercase();
        let mut hit = vec![false; self.terms.len() + self.numbers.len()];
        for w in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let k = if w.chars().any(|c| c.is_ascii_digit()) {
                self.numbers.binary_search_by(|x| x.as_str().cmp(w)).map(|k| self.terms.len() + k)
            } else {
                let term = self.lexicon.term(w);
                self.terms.binary_search(&term)
            };
            if let Ok(k) = k {
                hit[k] = true;
            }
        }
        // Over the query's distinct words (stems, and words with a digit).
        let word_share = hit.iter().filter(|h| **h).count() as f64 / hit.len().max(1) as f64;
        let phrases = &self.phrases;
        let phrase_share =
            phrases.iter().filter(|p| lower.contains(p.as_str())).count() as f64 / phrases.len().max(1) as f64;
        if phrases.is_empty() { word_share } else { (word_share + 2.0 * phrase_share) / 3.0 }
    }
}

/// A rough token count of a line from its characters (runs of letters, digits, other
/// characters), before scaling to the input's real count.
fn rough_tokens(line: &str) -> usize {
    let b = line.as_bytes();
    let mut n = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_alphabetic() {
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            n += 1 + (i - start) / 7;
        } else if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            n += (i - start).div_ceil(3);
        } else if c == b' ' {
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            // One space joins the next word; longer runs are a token of their own.
            n += usize::from(i - start > 1);
        } else if c >= 0x80 {
            while i < b.len() && b[i] >= 0x80 {
                i += 1;
            }
            n += (i - start).div_ceil(2);
        } else {
            i += 1;
            n += 1;
        }
    }
    n
}

/// Compresses log text; see the module docs.
pub fn compress_logs(text: &str, query: Option<&str>, budget: usize, counter: &dyn Count) -> Option<Packed> {
    let count = &|s: &str| counter.count(s);
    if budget == 0 || text.trim().is_empty() {
        return None;
    }
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.len() > 1 && lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let n = lines.len();
    let total_tokens = count(text);
    if total_tokens <= budget {
        return Some(Packed { text: text.to_string(), retained_indices: (0..n).collect(), kept_information: 1.0 });
    }

    // Estimated tokens of each line with its newline, scaled to the real total.
    let rough: Vec<usize> = lines.iter().map(|l| rough_tokens(l) + 1).collect();
    // 2% over, so that the first rendering tried is usually just under the budget and one
    // real count settles it.
    let scale = 1.02 * total_tokens as f64 / rough.iter().sum::<usize>().max(1) as f64;
    let cost: Vec<usize> = rough.iter().map(|&r| ((r as f64 * scale).ceil() as usize).max(1)).collect();
    if cost.iter().all(|&c| c > budget) {
        return None;
    }

    let sev = severities(&lines);
    let class: Vec<u8> = sev.iter().map(|&s| s as u8).collect();
    // Error lines split into templates more finely: every error message should be seen.
    let mut similarity = [drain::SIMILARITY; 4];
    similarity[Severity::Error as usize] = ERROR_SIMILARITY;
    let mined = drain::mine(&lines, &class, &similarity);
    let (template, variant) = (&mined.template, &mined.variant);
    let mut template_size = vec![0usize; mined.templates];
    let mut variant_size = vec![0usize; mined.variants];
    for i in 0..n {
        template_size[template[i]] += 1;
        variant_size[variant[i]] += 1;
    }

    let table = has_table_header(&lines);
    let mut order = priority_order(&lines, query, &sev, &mined, &variant_size, &cost, table);
    if table {
        // A table's header row names its columns: it comes first, whatever else fits.
        order.retain(|&i| i != 0);
        order.insert(0, 0);
    }

    // Estimated cost of each unit: its line, and a collapse line for the first of a
    // template with repeats.
    let marker_cost = count(&format!("\n{MARKER_PREFIX}37{MARKER_SUFFIX}]"));
    let mut est = Vec::with_capacity(order.len());
    let mut seen_template = vec![false; mined.templates];
    for &i in &order {
        let mut c = cost[i];
        if !std::mem::replace(&mut seen_template[template[i]], true) && template_size[template[i]] > 1 {
            c += marker_cost;
        }
        est.push(c);
    }
    // A unit that alone is larger than the budget can never be shown.
    let (order, est): (Vec<usize>, Vec<usize>) = order.into_iter().zip(est).filter(|&(_, e)| e <= budget).unzip();

    let render = |chosen: &[usize]| -> String {
        if table { render_rows(&lines, chosen) } else { render_selection(&lines, template, chosen) }
    };
    let (chosen, out) = fit_units(&order, &est, &|_| None, &render, &|t: &String| count(t), budget)?;
    // Only blank lines fit: nothing of the log is shown, so the caller packs it as text.
    if out.trim().is_empty() {
        return None;
    }
    let mut kept = vec![false; n];
    for &i in &chosen {
        kept[i] = true;
    }

    let mut retained_indices = chosen;
    retained_indices.sort_unstable();
    let kept_information = information(template, &template_size, &sev, &kept);
    Some(Packed { text: out, retained_indices, kept_information })
}

/// The fields of a delimited line (quotes respected), or `None` when it has fewer than 3.
fn fields(line: &str, delimiter: char) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in line.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == delimiter && !quoted {
            out.push(line[start..i].trim());
            start = i + 1;
        }
    }
    out.push(line[start..].trim());
    (out.len() >= 3).then_some(out)
}

/// True when the first line is the header row of a delimited table (CSV, TSV, `;` or `|`
/// separated): at least 3 named fields (none empty or a number, one with a letter), and at
/// least 80% of the next lines (up to 50) with as many fields.
fn has_table_header(lines: &[&str]) -> bool {
    let Some(head) = lines.first() else { return false };
    // A JSON record (JSON lines) is a row of its own, not the names of the rows under it.
    if head.trim_start().starts_with(['{', '[']) {
        return false;
    }
    [',', '\t', ';', '|'].into_iter().any(|d| {
        let Some(names) = fields(head, d) else { return false };
        let named = names.iter().all(|f| !f.is_empty() && f.parse::<f64>().is_err())
            && names.iter().any(|f| f.chars().any(char::is_alphabetic));
        let rows: Vec<&str> = lines[1..].iter().filter(|l| !l.trim().is_empty()).take(50).copied().collect();
        let same = rows.iter().filter(|r| fields(r, d).is_some_and(|f| f.len() == names.len())).count();
        named && rows.len() >= 2 && same * 5 >= rows.len() * 4
    })
}

/// The lines in priority order; see the module docs. In a `table`, every row that matches the
/// query comes in step 2, best first, not one per variant: rows of one shape differ by the
/// values asked for.
fn priority_order(
    lines: &[&str],
    query: Option<&str>,
    sev: &[Severity],
    mined: &drain::Mined,
    variant_size: &[usize],
    cost: &[usize],
    table: bool,
) -> Vec<usize> {
    let n = lines.len();
    let (template, variant) = (&mined.template, &mined.variant);
    let blank: Vec<bool> = lines.iter().map(|l| l.trim().is_empty()).collect();
    let mut taken = vec![false; n];
    let mut variant_shown = vec![false; mined.variants];
    let mut order = Vec::with_capacity(n);
    let mut take = |i: usize, order: &mut Vec<usize>, variant_shown: &mut Vec<bool>| {
        if !std::mem::replace(&mut taken[i], true) {
            order.push(i);
            variant_shown[variant[i]] = true;
        }
    };

    // Per template: its first line, its cheapest line, its severity.
    let mut first = vec![usize::MAX; mined.templates];
    let mut cheapest = vec![usize::MAX; mined.templates];
    for i in 0..n {
        let t = template[i];
        if first[t] == usize::MAX {
            first[t] = i;
        }
        if cheapest[t] == usize::MAX || cost[i] < cost[cheapest[t]] {
            cheapest[t] = i;
        }
    }
    let by_cost = |mut reps: Vec<usize>| {
        reps.sort_by_key(|&i| (cost[i], i));
        reps
    };
    let reps_of = |s: Severity, pick: &[usize]| -> Vec<usize> {
        (0..mined.templates).map(|t| pick[t]).filter(|&i| sev[i] == s && !blank[i]).collect()
    };

    // 1. Errors, the grave first (a service's `[emerg]` cause before the `failed` lines that
    // follow from it), then the first line of each trace template, in input order.
    let mut errors = reps_of(Severity::Error, &first);
    errors.sort_by_cached_key(|&i| (!is_grave(lines[i]), cost[i], i));
    for i in errors {
        take(i, &mut order, &mut variant_shown);
    }
    let mut traces = reps_of(Severity::Trace, &first);
    traces.sort_unstable();
    for i in traces {
        take(i, &mut order, &mut variant_shown);
    }

    // 2. Query matches, the best line of each variant.
    let q = QueryWords::read(query.unwrap_or(""), DOMAIN_WORDS);
    let mut matches: Vec<(f64, usize)> = Vec::new();
    if !q.is_empty() {
        let mut matcher = QueryMatch::new(&q);
        matches =
            (0..n).filter(|&i| !blank[i]).map(|i| (matcher.relevance(lines[i]), i)).filter(|m| m.0 > 0.0).collect();
        matches.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &matches {
            if table || !variant_shown[variant[i]] {
                take(i, &mut order, &mut variant_shown);
            }
        }
    }

    // 3. Where the log ends (the service up again, the run's summary): its last lines.
    if !table {
        for i in (0..n).rev().filter(|&i| !blank[i]).take(LAST_LINES) {
            take(i, &mut order, &mut variant_shown);
        }
    }

    // 4. Warnings, then every other template; then the query's other matches, best first
    // (which orders failed, not only that one did).
    for s in [Severity::Warn, Severity::Other] {
        for i in by_cost(reps_of(s, &cheapest)) {
            take(i, &mut order, &mut variant_shown);
        }
    }
    for (_, i) in matches {
        take(i, &mut order, &mut variant_shown);
    }

    // 5. One line of each variant not yet shown, then of each shape.
    let mut variant_first = vec![usize::MAX; mined.variants];
    for i in (0..n).rev() {
        variant_first[variant[i]] = i;
    }
    let mut rest: Vec<usize> =
        variant_first.iter().copied().filter(|&i| !variant_shown[variant[i]] && !blank[i]).collect();
    rest.sort_by_key(|&i| (std::cmp::Reverse((sev[i], variant_size[variant[i]])), cost[i], i));
    for i in rest {
        take(i, &mut order, &mut variant_shown);
    }
    let shape = &mined.shape;
    let mut shape_size = vec![0usize; mined.shapes];
    let mut shape_first = vec![usize::MAX; mined.shapes];
    for i in (0..n).rev() {
        shape_size[shape[i]] += 1;
        shape_first[shape[i]] = i;
    }
    let mut shape_shown = vec![false; mined.shapes];
    for &i in &order {
        shape_shown[shape[i]] = true;
    }
    let mut rest: Vec<usize> = shape_first.iter().copied().filter(|&i| !shape_shown[shape[i]] && !blank[i]).collect();
    rest.sort_by_key(|&i| (std::cmp::Reverse((sev[i], shape_size[shape[i]])), cost[i], i));
    for i in rest {
        take(i, &mut order, &mut variant_shown);
    }

    // 6. The rest: each shape's k-th line before any (k+1)-th; blank lines last.
    let mut rank = vec![0usize; mined.shapes];
    let mut rest: Vec<(bool, usize, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        let r = &mut rank[shape[i]];
        rest.push((blank[i], *r, i));
        *r += 1;
    }
    rest.sort_unstable();
    for (_, _, i) in rest {
        take(i, &mut order, &mut variant_shown);
    }
    order
}

/// Renders a delimited table's chosen rows in input order, then, when rows were dropped, one
/// line that says how many of how many (`  [… 182 of 200 rows omitted]`, as a markdown table's
/// marker does): a row's template says nothing of the values of the rows beside it, so a
/// count of "similar lines" under a row would mislead.
fn render_rows(lines: &[&str], chosen: &[usize]) -> String {
    let mut shown = vec![false; lines.len()];
    for &i in chosen {
        shown[i] = true;
    }
    let rows = |keep: bool| (1..lines.len()).filter(|&i| shown[i] == keep && !lines[i].trim().is_empty()).count();
    let mut out: Vec<&str> = (0..lines.len()).filter(|&i| shown[i]).map(|i| lines[i]).collect();
    let dropped = rows(false);
    let marker = format!("{MARKER_PREFIX}{dropped} of {}{MARKER_ROWS}]", dropped + rows(true));
    if dropped > 0 && !out.is_empty() {
        out.push(&marker);
    }
    out.join("\n")
}

/// Renders the chosen lines in input order with their collapse lines.
fn render_selection(lines: &[&str], template: &[usize], chosen: &[usize]) -> String {
    let n = lines.len();
    let mut shown = vec![false; n];
    for &i in chosen {
        shown[i] = true;
    }
    // Attribute each dropped line to the nearest earlier shown line of its template, or
    // the first later one.
    let templates = template.iter().max().map_or(0, |m| m + 1);
    let mut folded = vec![0usize; n];
    let mut last_shown = vec![usize::MAX; templates];
    let mut orphans = vec![0usize; templates];
    for i in 0..n {
        let t = template[i];
        if shown[i] {
            last_shown[t] = i;
            folded[i] += std::mem::take(&mut orphans[t]);
        } else if last_shown[t] != usize::MAX {
            folded[last_shown[t]] += 1;
        } else {
            orphans[t] += 1;
        }
    }
    // Consecutive shown lines with the same count share one collapse line (a repeated stack
    // trace gets one, not one per frame).
    let shown_lines: Vec<usize> = (0..n).filter(|&i| shown[i]).collect();
    let mut out = String::with_capacity(shown_lines.iter().map(|&i| lines[i].len() + 1).sum());
    let mut run = 0usize;
    for (k, &i) in shown_lines.iter().enumerate() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(lines[i]);
        if folded[i] == 0 {
            run = 0;
            continue;
        }
        run += 1;
        let next_same = shown_lines.get(k + 1).is_some_and(|&j| folded[j] == folded[i]);
        if !next_same {
            out.push('\n');
            out.push_str(MARKER_PREFIX);
            out.push_str(&folded[i].to_string());
            out.push_str(MARKER_SUFFIX);
            if run > 1 {
                out.push_str(MARKER_EACH);
                out.push_str(&run.to_string());
                out.push_str(MARKER_EACH_END);
            }
            out.push(']');
            run = 0;
        }
    }
    out
}

/// Kept information: per template (weighted `ln(1 + lines)`, times 3 for errors, traces and
/// warnings), 0 when none of its lines is shown, else `0.5 + 0.5 × shown/total` of its lines
/// (a collapse line tells the repeats happened but not their details).
fn information(template: &[usize], template_size: &[usize], sev: &[Severity], shown: &[bool]) -> f64 {
    let mut weight: Vec<f64> = template_size.iter().map(|&s| (1.0 + s as f64).ln()).collect();
    let mut shown_count = vec![0usize; template_size.len()];
    let mut severe = vec![false; template_size.len()];
    for (i, &t) in template.iter().enumerate() {
        if sev[i] != Severity::Other && !std::mem::replace(&mut severe[t], true) {
            weight[t] *= 3.0;
        }
        if shown[i] {
            shown_count[t] += 1;
        }
    }
    let total: f64 = weight.iter().sum();
    let kept: f64 = (0..template_size.len())
        .filter(|&t| shown_count[t] > 0)
        .map(|t| weight[t] * (0.5 + 0.5 * shown_count[t] as f64 / template_size[t] as f64))
        .sum();
    (kept / total.max(1.0)).min(0.999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    fn service_log() -> String {
        let mut log = String::new();
        for i in 0..500 {
            log.push_str(&format!(
                "2024-05-01T10:{:02}:{:02}.{:03}Z INFO http: GET /api/items/{} 200 {}ms\n",
                i / 60 % 60,
                i % 60,
                i * 7 % 1000,
                1000 + i,
                3 + i % 17
            ));
            if i == 250 {
                log.push_str("2024-05-01T10:04:10.000Z WARN pool: connection pool at 90% capacity\n");
                log.push_str("2024-05-01T10:04:11.000Z ERROR worker: job 8812 failed: NullPointerException\n");
                log.push_str("java.lang.NullPointerException: value was null\n");
                log.push_str("    at com.acme.Worker.run(Worker.java:42)\n");
                log.push_str("    at java.lang.Thread.run(Thread.java:829)\n");
            }
        }
        log
    }

    #[test]
    fn an_access_logs_server_errors_survive_among_its_successes() {
        let mut log = String::new();
        for i in 0..400 {
            let status = match i {
                137 | 263 => 504,
                201 => 502,
                _ => 200,
            };
            log.push_str(&format!(
                "10.0.{}.{} - - [14/Mar/2024:13:{:02}:{:02} +0100] \"GET /api/v2/items/{} HTTP/1.1\" {status} {} \"-\" \"curl/8.5.0\"\n",
                i % 7,
                i % 250,
                i / 60,
                i % 60,
                1000 + i,
                200 + i * 13 % 900
            ));
        }
        let budget = approx(&log) / 10;
        let p = compress_logs(&log, None, budget, &approx).unwrap();
        for status in ["HTTP/1.1\" 504", "HTTP/1.1\" 502"] {
            assert!(p.text.contains(status), "{status} missing:\n{}", p.text);
        }
        assert_eq!(status_severity("\"GET / HTTP/1.1\" 404 0"), Severity::Warn);
        assert_eq!(status_severity("GET / HTTP/1.1 took 504 ms"), Severity::Other);
    }

    #[test]
    fn a_services_fatal_cause_comes_before_the_failures_that_follow_it() {
        let log = "Dec 07 10:00:00 web-1 systemd[1]: Starting nginx.service...\n\
                   Dec 07 10:00:00 web-1 nginx[1234]: 2026/12/07 10:00:00 [emerg] 1234#1234: unknown directive \
                   \"servr_name\" in /etc/nginx/sites-enabled/shop.conf:14\n\
                   Dec 07 10:00:00 web-1 nginx[1234]: nginx: configuration file test failed\n\
                   Dec 07 10:00:01 web-1 systemd[1]: nginx.service: Control process exited, status=1/FAILURE\n\
                   Dec 07 10:00:01 web-1 systemd[1]: nginx.service: Failed with result 'exit-code'.\n\
                   Dec 07 10:00:01 web-1 systemd[1]: Failed to start nginx.service.\n";
        // Room for the cause and about one more line: the cause, though the longest error.
        let emerg = log.lines().nth(1).unwrap();
        let budget = approx(emerg) + 12;
        let p = compress_logs(log, None, budget, &approx).unwrap();
        assert!(p.text.contains(emerg), "{}", p.text);
        assert!(approx(&p.text) <= budget);
        assert!(is_grave("2026/12/07 [emerg] 1234#1234: unknown directive") && is_grave("FATAL: out of memory"));
        assert!(!is_grave("nginx.service: Failed with result 'exit-code'."));
    }

    #[test]
    fn repeated_lines_collapse_with_count_and_errors_survive() {
        let log = service_log();
        let budget = approx(&log) / 10;
        let p = compress_logs(&log, None, budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        assert!(p.text.contains("ERROR worker: job 8812 failed"));
        assert!(p.text.contains("    at com.acme.Worker.run(Worker.java:42)"));
        assert!(p.text.contains("    at java.lang.Thread.run(Thread.java:829)"));
        assert!(p.text.contains("WARN pool"));
        assert!(p.text.contains("similar lines omitted]"), "{}", p.text);
        // Chronological order is kept.
        let warn = p.text.find("WARN pool").unwrap();
        let err = p.text.find("ERROR worker").unwrap();
        assert!(warn < err);
        assert!(p.kept_information > 0.0 && p.kept_information < 1.0);
        assert!(p.retained_indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_builds_progress_lines_collapse_and_its_errors_come_whole() {
        let crates =
            ["serde", "tokio", "hyper", "axum", "rand", "regex", "clap", "anyhow", "bytes", "mio", "libc", "syn"];
        let mut log: String = crates.iter().map(|c| format!("   Compiling {c} v1.2.0\n")).collect::<String>().repeat(3);
        log.push_str(
            "error[E0308]: mismatched types\n  --> src/lib.rs:42:5\n   |\n42 |     \"hello\"\n   |     ^^^^^^^ expected `u32`, found `&str`\n\n\
             error: could not compile `myapp` (lib) due to 1 previous error\n",
        );
        let p = compress_logs(&log, None, approx(&log) / 4, &approx).unwrap();
        assert!(p.text.contains("expected `u32`, found `&str`"), "{}", p.text);
        assert!(p.text.contains("  --> src/lib.rs:42:5"), "{}", p.text);
        // The progress lines are one template: one shown, the rest counted.
        let shown = p.text.lines().filter(|l| l.contains("Compiling")).count();
        assert!((1..6).contains(&shown), "{}", p.text);
        assert!(p.text.contains(" similar lines omitted]"), "{}", p.text);
    }

    #[test]
    fn an_errors_message_line_and_where_the_log_ended_are_kept() {
        let mut log = String::new();
        for i in 0..40 {
            log.push_str(&format!("<s> [webpack.Progress] {i}% building {i}/40 entries {}/980 dependencies\n", i * 20));
        }
        for i in 0..30 {
            log.push_str(&format!(
                "Nov 03 02:1{}:{:02} db-3 CRON[{}]: session opened for user root\n",
                i / 10,
                i,
                1000 + i
            ));
        }
        log.push_str("ERROR in src/pages/Settings/BillingPanel.tsx:41:27\n");
        log.push_str(
            "TS2339: Property 'planTier' does not exist on type 'Subscription'. Did you mean 'plan_tier'? \
             The type comes from the generated client in src/api/types.ts, regenerated on every schema change.\n",
        );
        log.push_str("    39 |   const { data: sub } = useSubscription(orgId);\n");
        // Many templates, more than the budget can show one line of each.
        let words = ["backup", "vacuum", "checkpoint", "replica", "archive", "rotate", "reindex", "analyze"];
        let verbs = ["started", "queued", "skipped", "resumed", "paused"];
        for (i, w) in words.iter().enumerate() {
            for (j, v) in verbs.iter().enumerate() {
                log.push_str(&format!("Nov 03 02:2{i}:{j:02} db-3 {w}d[{}]: {w} job {v} on volume data\n", 2000 + i));
            }
        }
        log.push_str("Nov 03 02:29:58 db-3 postgresql[4495]: database system is ready to accept connections\n");
        let p = compress_logs(&log, None, approx(&log) / 12, &approx).unwrap();
        assert!(p.text.contains("TS2339: Property 'planTier'"), "{}", p.text);
        assert!(p.text.ends_with("database system is ready to accept connections"), "{}", p.text);
    }

    #[test]
    fn markers_count_every_dropped_repeat() {
        let log = "start\n".to_string() + &"same line again\n".repeat(500) + "end\n";
        let p = compress_logs(&log, None, 16, &approx).unwrap();
        assert_eq!(p.text, "start\nsame line again\n  [\u{2026} 499 similar lines omitted]\nend");
    }

    #[test]
    fn a_repeated_stack_trace_gets_one_marker() {
        let mut log = String::new();
        for i in 0..50 {
            log.push_str(&format!("12:00:{:02} ERROR request {i} failed\n", i % 60));
            log.push_str("java.lang.IllegalStateException: closed\n");
            log.push_str("    at com.acme.Pool.get(Pool.java:10)\n");
            log.push_str("    at com.acme.Handler.run(Handler.java:20)\n");
        }
        let budget = approx(&log) / 10;
        let p = compress_logs(&log, None, budget, &approx).unwrap();
        assert!(
            p.text.starts_with(
                "12:00:00 ERROR request 0 failed\n\
                 java.lang.IllegalStateException: closed\n\
                 \x20   at com.acme.Pool.get(Pool.java:10)\n\
                 \x20   at com.acme.Handler.run(Handler.java:20)\n"
            ),
            "{}",
            p.text
        );
        assert!(p.text.contains("similar lines omitted after each of the"), "{}", p.text);
        assert!(approx(&p.text) <= budget);
    }

    #[test]
    fn a_table_keeps_its_header_row_and_every_row_the_query_matches() {
        let customers = ["Acme Corp", "Globex", "Initech", "Hooli", "Umbrella"];
        let statuses = ["shipped", "pending", "returned", "cancelled"];
        let mut csv = String::from("order_id,date,customer,product,quantity,status\n");
        for i in 0..80 {
            let (c, st) = (customers[i * 7 % 5], statuses[i * 3 % 4]);
            csv.push_str(&format!(
                "{},2024-0{}-{},{c},Widget,{},{st}\n",
                10_000 + i,
                1 + i % 9,
                10 + i % 18,
                1 + i % 40
            ));
        }
        assert!(has_table_header(&csv.lines().collect::<Vec<_>>()));
        let budget = approx(&csv) / 4;
        let p = compress_logs(&csv, None, budget, &approx).unwrap();
        assert!(p.text.starts_with("order_id,date,customer,product,quantity,status\n"), "{}", p.text);
        let p = compress_logs(&csv, Some("which Hooli orders were returned"), budget, &approx).unwrap();
        assert!(p.text.starts_with("order_id,"), "{}", p.text);
        let wanted: Vec<&str> = csv.lines().filter(|l| l.contains(",Hooli,") && l.ends_with(",returned")).collect();
        assert!(wanted.len() >= 3);
        for row in &wanted {
            assert!(p.text.lines().any(|l| l == *row), "{row}\n{}", p.text);
        }
        // One line at the end says how many rows went: no count of "similar lines" under a
        // returned order that would pass shipped ones for more of it.
        let rows = p.text.lines().filter(|l| l.starts_with("10")).count();
        let marker = format!("  [… {} of 80 rows omitted]", 80 - rows);
        assert!(p.text.ends_with(&marker), "{}", p.text);
        assert!(is_collapse_line(&marker) && !p.text.contains("similar lines"), "{}", p.text);
        assert!(approx(&p.text) <= budget);
        // Nor JSON lines, whose first record is a row like the others.
        let json = r#"{"ts": "2024-05-01T10:00:00Z", "level": "info", "msg": "up"}"#;
        assert!(!has_table_header(&[json, json, json]));
        // A log whose first line has fields, but numbers among them, has no header.
        assert!(!has_table_header(&["Step_LSC|30002312|onStandStepChanged 3579", "Step_LSC|30002312|x", "a|b|c"]));
    }

    #[test]
    fn query_lines_come_before_plain_repeats() {
        let mut log = String::new();
        for i in 0..300 {
            log.push_str(&format!("10:00:{:02} INFO request {} served user=u{}\n", i % 60, i, i));
        }
        log.push_str("10:01:00 INFO cache refreshed for tenant zephyr\n");
        for i in 0..300 {
            log.push_str(&format!("10:02:{:02} INFO request {} served user=u{}\n", i % 60, i, i));
        }
        let budget = approx(&log) / 20;
        let p = compress_logs(&log, Some("when was the zephyr cache refreshed"), budget, &approx).unwrap();
        assert!(p.text.contains("tenant zephyr"));
        assert!(approx(&p.text) <= budget);
    }

    #[test]
    fn a_query_finds_inflected_words_and_every_line_it_matches() {
        // Twenty kinds of routine line (templates of different lengths), and six cache refreshes.
        let mut log = String::new();
        for i in 0..600 {
            let kind = i % 20;
            log.push_str(&format!("10:{:02}:{:02} INFO job {i} {}done\n", i / 60, i % 60, "step ".repeat(kind + 1)));
            if i % 100 == 50 {
                log.push_str(&format!("10:{:02}:{:02} INFO cache refresh done for tenant t{i}\n", i / 60, i % 60));
            }
        }
        let budget = approx(&log) / 10;
        // "tenants" and "refreshed" are not the lines' words, only their stems are.
        let p = compress_logs(&log, Some("which tenants were refreshed?"), budget, &approx).unwrap();
        for i in [50, 150, 250, 350, 450, 550] {
            let wanted = format!(" for tenant t{i}");
            assert!(p.text.lines().any(|l| l.ends_with(&wanted)), "tenant t{i} missing:\n{}", p.text);
        }
        assert!(approx(&p.text) <= budget);
    }

    #[test]
    fn one_huge_line_is_refused() {
        let line = "a".repeat(1 << 20);
        assert!(compress_logs(&line, None, 100, &approx).is_none());
    }

    #[test]
    fn collapse_lines_are_recognised_exactly() {
        assert!(is_collapse_line("  [\u{2026} 37 similar lines omitted]"));
        assert!(is_collapse_line("  [\u{2026} 2 similar lines omitted after each of the 3 lines above]"));
        assert!(!is_collapse_line("  [\u{2026} many similar lines omitted]"));
        assert!(!is_collapse_line("[\u{2026} 37 similar lines omitted]"));
        assert!(!is_collapse_line("  [\u{2026} 37 similar lines omitted] extra"));
    }

    #[test]
    fn fitting_log_is_unchanged() {
        let log = "INFO a\nERROR b\n";
        let p = compress_logs(log, None, 100, &approx).unwrap();
        assert_eq!(p.text, log);
        assert_eq!(p.retained_indices, vec![0, 1]);
    }

    #[test]
    fn python_traceback_is_kept_with_its_error() {
        let mut log = String::new();
        for i in 0..400 {
            log.push_str(&format!("[{i:05}] DEBUG polling queue depth={}\n", i % 7));
        }
        log.push_str("[00400] ERROR task crashed\n");
        log.push_str("Traceback (most recent call last):\n");
        log.push_str("  File \"/app/worker.py\", line 12, in run\n");
        log.push_str("    result = handler(job)\n");
        log.push_str("ZeroDivisionError: division by zero\n");
        for i in 401..800 {
            log.push_str(&format!("[{i:05}] DEBUG polling queue depth={}\n", i % 7));
        }
        let budget = approx(&log) / 20;
        let p = compress_logs(&log, None, budget, &approx).unwrap();
        for needle in [
            "ERROR task crashed",
            "Traceback (most recent call last):",
            "  File \"/app/worker.py\", line 12, in run",
            "    result = handler(job)",
            "ZeroDivisionError: division by zero",
        ] {
            assert!(p.text.contains(needle), "lost {needle}:\n{}", p.text);
        }
        assert!(approx(&p.text) <= budget);
        assert!(p.kept_information < 0.9);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_text_never_panics_and_obeys_the_budget(
            lines in proptest::collection::vec("[ -~\\PC\t\r]{0,40}", 0..60),
            budget in 0usize..200,
        ) {
            let text = lines.join("\n");
            if let Some(p) = compress_logs(&text, Some("error 42"), budget, &approx) {
                proptest::prop_assert!(approx(&p.text) <= budget);
                proptest::prop_assert!(!p.text.is_empty());
                proptest::prop_assert!(p.retained_indices.windows(2).all(|w| w[0] < w[1]));
                // Every output line is an input line or a marker.
                for l in p.text.split('\n') {
                    proptest::prop_assert!(
                        text.split('\n').any(|x| x == l)
                            || is_collapse_line(l)
                    );
                }
            }
        }
    }
}
