//! Unified diffs (`git diff`, `git show`, `git log -p`, `diff -u`, a pull request's patch):
//! whole lines, chosen by what changed.
//!
//! **Units.** A file's header (`diff --git …` with its mode, rename and `Binary files` lines;
//! its `index`, `---` and `+++` lines, which repeat its names, are units under it) is one
//! unit; so is each hunk header (`@@ -a,b +c,d @@`, shown only under its
//! file's header); inside a hunk, an edit (a run of `-` and `+` lines) of at most
//! [`ATOMIC_EDIT`] lines is one unit, so a removal is not shown without the line that replaced
//! it, and each line of a longer run or of context is its own. Hunks are read by the counts of
//! their header, so a removed line that starts with `--` is not taken for a file header.
//! Lines outside files (a commit's header and message, a stat) are units of their own.
//!
//! **Order.** Every file header and the commit's first lines (`commit`, `Author:`, `Date:`,
//! `From:`, `Subject:`, and the message's first line); then the edits: those of the files the
//! query names (by a path or a backticked name it holds, else by one of its words) first, then
//! those that mention its words, then the first edit of every hunk, then the second, and so on, so that every hunk shows what it changes before any shows all of it;
//! then context lines by their distance to a change; then the rest of the message.
//!
//! **Output.** The kept lines, byte-exact, in input order; each run of dropped lines becomes
//! one `[… N lines omitted]` line, which no diff line starts with (one line of a hunk no longer
//! than that marker is shown instead).

use super::Packed;
use super::query::QueryWords;
use super::units::{Count, LineUnits, Rendering, ancestors_first, lines_omitted};

/// Runs of changed lines up to this long are kept or dropped whole.
const ATOMIC_EDIT: usize = 8;

/// A hunk header's counts: `@@ -a[,b] +c[,d] @@` → (b, d), a missing count being 1.
fn hunk_counts(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let count = |r: &str| -> Option<usize> {
        match r.split_once(',') {
            Some((start, n)) => {
                start.parse::<usize>().ok()?;
                n.parse().ok()
            }
            None => r.parse::<usize>().ok().map(|_| 1),
        }
    };
    Some((count(old)?, count(new)?))
}

/// True when the text has a unified diff: a hunk header with its counts, and a file header
/// (`diff --git`, or `--- ` then `+++ `) before it, in its first 64 KiB.
pub(crate) fn is_diff(text: &str) -> bool {
    let mut end = text.len().min(64 * 1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut file_header = false;
    let mut prev_minus = false;
    for line in text[..end].lines() {
        if line.starts_with("diff --git ") || prev_minus && line.starts_with("+++ ") {
            file_header = true;
        } else if file_header && line.starts_with("@@ -") && hunk_counts(line).is_some() {
            return true;
        }
        prev_minus = line.starts_with("--- ");
    }
    false
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `diff --git a/x b/x` with its mode, rename and `Binary files` lines (or, without a
    /// `diff --git` line, the `--- ` and `+++ ` pair).
    FileHeader,
    /// Under a `diff --git` line: its `index`, `--- ` and `+++ ` lines, which repeat its names.
    FileMeta,
    HunkHeader,
    /// A run of `-` / `+` lines, or one line of a long run.
    Edit,
    Context,
    /// Outside any file: a commit's header or message, a stat.
    Other,
}

#[derive(Debug)]
struct Unit {
    /// Line numbers, ascending.
    lines: Vec<usize>,
    kind: Kind,
    parent: Option<usize>,
    /// For edits: the edit's rank in its hunk (0 for the first); for context lines: the
    /// distance to the nearest changed line; for lines outside files: their rank among them.
    rank: usize,
    /// The file header the unit is under.
    file: Option<usize>,
    /// A commit's header line (`commit`, `Author:`, `Date:`, `From:`, `Subject:`) or its
    /// message's first line.
    head: bool,
}

/// Cuts the diff's lines into units (see the module docs).
fn units(lines: &[&str]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut file: Option<usize> = None;
    let mut i = 0;
    let mut other_rank = 0;
    // After a commit's header, until its message's first line.
    let mut awaiting_subject = false;
    let unit = |lines: Vec<usize>, kind, parent, rank, file| Unit { lines, kind, parent, rank, file, head: false };
    while i < lines.len() {
        let line = lines[i];
        let starts_file = line.starts_with("diff --git ")
            || line.starts_with("--- ") && lines.get(i + 1).is_some_and(|n| n.starts_with("+++ "));
        if starts_file {
            // The header runs to its `+++` line, or to the line before a hunk or the next file.
            let mut end = i + 1;
            while end < lines.len() {
                let l = lines[end];
                if l.starts_with("+++ ") {
                    end += 1;
                    break;
                }
                if l.starts_with("@@ ") || l.starts_with("diff --git ") {
                    break;
                }
                end += 1;
            }
            let git = line.starts_with("diff --git ");
            let meta = |l: &str| git && (l.starts_with("index ") || l.starts_with("--- ") || l.starts_with("+++ "));
            let header: Vec<usize> = (i..end).filter(|&l| !meta(lines[l])).collect();
            units.push(unit(header, Kind::FileHeader, None, 0, None));
            let h = units.len() - 1;
            file = Some(h);
            for l in (i..end).filter(|&l| meta(lines[l])) {
                units.push(unit(vec![l], Kind::FileMeta, Some(h), 0, file));
            }
            i = end;
            continue;
        }
        if let Some((mut old, mut new)) = hunk_counts(line).filter(|_| file.is_some()) {
            units.push(unit(vec![i], Kind::HunkHeader, file, 0, file));
            let hunk = units.len() - 1;
            i += 1;
            // The hunk's lines, by its counts: (line, changed).
            let start = i;
            while i < lines.len() && (old > 0 || new > 0) {
                let l = lines[i];
                match l.as_bytes().first() {
                    Some(b'-') if old > 0 => old -= 1,
                    Some(b'+') if new > 0 => new -= 1,
                    Some(b'\\') => {}
                    // A context line (an empty one is a context line whose space was trimmed).
                    Some(b' ') | None if old > 0 && new > 0 => {
                        old -= 1;
                        new -= 1;
                    }
                    _ => break,
                }
                i += 1;
            }
            let changed = |k: usize| lines[k].starts_with(['-', '+']);
            let mut edit_rank = 0;
            let mut k = start;
            while k < i {
                if changed(k) || lines[k].starts_with('\\') {
                    let mut e = k;
                    while e < i && (changed(e) || lines[e].starts_with('\\')) {
                        e += 1;
                    }
                    if e - k <= ATOMIC_EDIT {
                        units.push(unit((k..e).collect(), Kind::Edit, Some(hunk), edit_rank, file));
                        edit_rank += 1;
                    } else {
                        for l in k..e {
                            units.push(unit(vec![l], Kind::Edit, Some(hunk), edit_rank, file));
                            edit_rank += 1;
                        }
                    }
                    k = e;
                } else {
                    let before = (start..k).rev().find(|&c| changed(c)).map(|c| k - c);
                    let after = (k..i).find(|&c| changed(c)).map(|c| c - k);
                    let distance = before.into_iter().chain(after).min().unwrap_or(usize::MAX);
                    units.push(unit(vec![k], Kind::Context, Some(hunk), distance, file));
                    k += 1;
                }
            }
            continue;
        }
        let commit = ["commit ", "From "].iter().any(|p| line.starts_with(p));
        if commit {
            // A commit's own lines start again.
            file = None;
            other_rank = 0;
            awaiting_subject = true;
        }
        if !line.trim().is_empty() {
            let mut u = unit(vec![i], Kind::Other, None, other_rank, None);
            let header = ["Author:", "Date:", "From:", "Subject:", "Merge:"].iter().any(|p| line.starts_with(p));
            let subject = awaiting_subject && line.starts_with("    ");
            awaiting_subject &= !subject && !line.starts_with("Subject:");
            u.head = commit || header || subject;
            units.push(u);
            other_rank += 1;
        }
        i += 1;
    }
    units
}

/// The diff handler: `None` when `text` is not a unified diff or not even its file headers fit.
pub fn compress_diff(text: &str, query: Option<&str>, budget: usize, count: &dyn Count) -> Option<Packed> {
    if budget == 0 || !is_diff(text) {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let units = units(&lines);
    if units.len() < 2 {
        return None;
    }
    // The query's phrases (a path, a backticked name) and words, lower case.
    let (phrases, qwords): (Vec<String>, Vec<String>) = query.map_or_else(Default::default, |q| {
        let r = QueryWords::read(q, &[]);
        let lower = |v: Vec<String>| -> Vec<String> {
            let mut v: Vec<String> = v.iter().map(|w| w.to_lowercase()).filter(|w| w.len() >= 3).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        (lower(r.phrases), lower([r.identifiers, r.words].concat()))
    });
    let has_phrase =
        |l: usize| !phrases.is_empty() && phrases.iter().any(|p| lines[l].to_lowercase().contains(p.as_str()));
    let has_word =
        |l: usize| !qwords.is_empty() && super::code::words(lines[l]).iter().any(|w| qwords.iter().any(|q| q == w));
    let mentions = |u: &Unit| u.lines.iter().any(|&l| has_phrase(l) || has_word(l));
    // The files the query names: by a phrase (a path) when one names a file, else by a word.
    let header_with = |f: &dyn Fn(usize) -> bool| -> Vec<bool> {
        units.iter().map(|u| u.kind == Kind::FileHeader && u.lines.iter().any(|&l| f(l))).collect()
    };
    let mut file_named = header_with(&has_phrase);
    if !file_named.contains(&true) {
        file_named = header_with(&has_word);
    }
    // (tier, rank, first line): smaller first.
    let key = |i: usize| -> (u8, usize, usize) {
        let u = &units[i];
        let first = u.lines[0];
        match u.kind {
            Kind::FileHeader => (0, 0, first),
            Kind::Other if u.head => (0, 0, first),
            Kind::Edit if u.file.is_some_and(|f| file_named[f]) => (1, u.rank, first),
            Kind::Edit if mentions(u) => (2, u.rank, first),
            Kind::Edit => (3, u.rank, first),
            Kind::Context if mentions(u) => (4, u.rank, first),
            Kind::Context => (5, u.rank, first),
            Kind::HunkHeader => (6, 0, first),
            Kind::FileMeta => (6, 1, first),
            Kind::Other => (7, u.rank, first),
        }
    };
    let mut sorted: Vec<usize> = (0..units.len()).collect();
    sorted.sort_by_cached_key(|&i| key(i));
    let order = ancestors_first(&sorted, &|u| units[u].parent);
    let render = |chosen: &[usize]| -> Rendering {
        let mut keep = vec![false; lines.len()];
        for &u in chosen {
            for &l in &units[u].lines {
                keep[l] = true;
            }
        }
        let mut out: Vec<String> = Vec::new();
        let mut kept = Vec::new();
        let mut dropped = 0usize;
        // A run of dropped lines becomes its marker; one line of a hunk no longer than the
        // marker (`     }`) is shown instead.
        let close_run = |out: &mut Vec<String>, kept: &mut Vec<usize>, n: usize, last: usize| {
            let m = lines_omitted(n);
            let line = lines[last];
            if n == 1 && line.len() <= m.len() && (line.is_empty() || line.starts_with([' ', '+', '-'])) {
                out.push(line.to_string());
                kept.push(last);
            } else {
                out.push(m);
            }
        };
        for (i, line) in lines.iter().enumerate() {
            if keep[i] {
                if dropped > 0 {
                    close_run(&mut out, &mut kept, dropped, i - 1);
                    dropped = 0;
                }
                out.push((*line).to_string());
                kept.push(i);
            } else if !(line.is_empty() && i + 1 == lines.len()) {
                dropped += 1;
            }
        }
        if dropped > 0 {
            let last = if lines.last().is_some_and(|l| l.is_empty()) { lines.len() - 2 } else { lines.len() - 1 };
            close_run(&mut out, &mut kept, dropped, last);
        }
        kept.sort_unstable();
        (out.join("\n"), kept)
    };
    // Information: the changed lines count whole, the rest a third.
    let weight = |l: usize| {
        let t = lines[l];
        let w = t.trim().len() as f64;
        if t.starts_with(['-', '+']) { w } else { w / 3.0 }
    };
    let unit_lines = |u: usize| units[u].lines.as_slice();
    let line_units =
        LineUnits { text, lines: &lines, unit_lines: &unit_lines, parent: &|u| units[u].parent, weight: &weight };
    line_units.fit(&order, &render, budget, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = include_str!("../../tests/support/change.diff");

    fn approx(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    /// The output's lines, markers left out, are input lines in input order.
    fn in_order(input: &str, out: &str) -> bool {
        let lines: Vec<&str> = input.split('\n').collect();
        let mut at = 0;
        out.split('\n').filter(|l| !(l.starts_with("[… ") && l.ends_with(" omitted]"))).all(|l| {
            let found = (at..lines.len()).find(|&i| lines[i] == l);
            found.inspect(|&i| at = i + 1).is_some()
        })
    }

    #[test]
    fn recognises_unified_diffs_only() {
        assert!(is_diff(PATCH));
        assert!(is_diff("--- a.txt\t2024-01-01\n+++ b.txt\t2024-01-02\n@@ -1 +1 @@\n-old\n+new\n"));
        assert!(!is_diff("A list:\n--- \n+++ \nnothing else\n"));
        assert!(!is_diff("@@ -1,2 +1,2 @@ with no file header\n"));
    }

    #[test]
    fn every_file_and_every_hunk_shows_its_first_change_before_any_shows_all() {
        let total = approx(PATCH);
        for budget in [total * 3 / 5, total / 3] {
            let p = compress_diff(PATCH, None, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget, "{budget}: {}", p.text);
            assert!(in_order(PATCH, &p.text), "{budget}:\n{}", p.text);
            assert!(p.text.contains(" omitted]"), "{}", p.text);
            for file in PATCH.lines().filter(|l| l.starts_with("diff --git ")) {
                assert!(p.text.lines().any(|l| l == file), "{budget}: {file}\n{}", p.text);
            }
            if budget < total / 2 {
                continue;
            }
            // Each hunk is shown, with its first edit whole: the removal with its replacement.
            for (h, first_edit) in [
                ("@@ -12,9 +12,10 @@", "-    timeout: u64,\n+    timeout: Duration,"),
                (
                    "@@ -48,7 +49,7 @@",
                    "-        if elapsed > self.timeout {\n+        if elapsed > self.timeout.as_secs() {",
                ),
                ("@@ -3,6 +3,7 @@", "+Timeouts are durations: `Client::new(Duration::from_secs(5))`."),
            ] {
                assert!(p.text.contains(h), "{budget}: {h}\n{}", p.text);
                assert!(p.text.contains(first_edit), "{budget}: {first_edit}\n{}", p.text);
            }
        }
    }

    #[test]
    fn the_file_a_query_names_keeps_its_changes_first() {
        let total = approx(PATCH);
        let p = compress_diff(PATCH, Some("what changed in the README"), total / 3, &approx).unwrap();
        let start = PATCH.find("diff --git a/README.md").unwrap();
        let end = PATCH.find("diff --git a/schema.sql").unwrap();
        for l in PATCH[start..end]
            .lines()
            .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("--- a/") && !l.starts_with("+++ b/"))
        {
            assert!(p.text.lines().any(|o| o == l), "{l}\n{}", p.text);
        }
    }
}
