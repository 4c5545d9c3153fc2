//! Packing: choose segments by utility per token until the budget is met, then fill the rest.
//!
//! 1. Every segment's cost is its token estimate from the input's one counting pass (plus its
//!    unkept parents'); candidates are
//!    taken greedily by `utility / cost`, each with its parent chain (title, heading, speaker).
//!    A sentence of 24 bytes or more that ends like one and repeats another word for word (a
//!    passage retrieved twice, overlapping chunks) is a candidate once: the copy first in that
//!    order.
//! 2. The output is rendered and counted **as a whole**: token counts are not additive across
//!    joins, so the estimate is checked, and segments are taken back (lowest value first) while
//!    the real count is over budget.
//! 3. Leftover budget is filled with more whole segments, again checked by a real count; then
//!    a larger segment may take the place of the least valuable kept ones: when it is worth
//!    more than they are, or, while the output fills less than 96% of the budget (a ratio more
//!    than 5% above the one asked for), of the kept sentence worth least when it fills the
//!    budget better, all such swaps together giving up at most 2% of the value kept.
//! 4. Only when no whole segment fits: the best window of words of one segment (cut only at
//!    white space, or between CJK characters, so numbers, URLs, paths and identifiers are kept
//!    whole or not at all).
//!
//! Output pieces are byte ranges of the input, in input order. Between two pieces that were
//! adjacent in the input the original white space is kept; across a gap the join is the
//! original white space next to the pieces (the stronger of the two: a newline beats a space;
//! a newline whenever the gap holds one, so pieces of two lines never share one),
//! or a blank line between blocks, with the indentation of the next piece's line when it opens
//! it (a fence inside a list item stays inside it). The only other text inserted: a markdown
//! table that lost rows ends with a row that says how many, `| … 33 of 40 rows omitted |`
//! (a row, so the table stays a table); a list that lost items ends with `[… 9 items
//! omitted]` at its indentation; and a markdown heading shown without anything of its
//! section is followed by `[… 6 lines omitted]`, so the section does not read as empty; all
//! are counted with the rest.

use super::rank::Analysis;
use super::segment::{SegKind, Segment, bold_heading, is_heading, is_list_item, is_title, title_name};
use super::text::{balanced, is_cjk};
use super::units::{lines_omitted, omitted};
use crate::tokens::PieceCounter;

pub struct Packing {
    pub text: String,
    pub tokens: usize,
    /// Segments kept whole or in part, ascending.
    pub kept: Vec<usize>,
    pub over_budget: bool,
    /// Sum of the word weights kept (see [`Analysis::word_weight`]).
    pub kept_weight: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Partial {
    seg: usize,
    start: usize,
    end: usize,
}

struct State<'a> {
    text: &'a str,
    segs: &'a [Segment],
    full: Vec<bool>,
    partial: Option<Partial>,
    crlf: bool,
    /// Number of fully kept segments per block.
    block_kept: Vec<usize>,
    /// Per markdown heading, its section (the segments under it, its subsections' too) and how
    /// many lines that section spans: a heading shown without any of it gets a marker.
    section: Vec<(Vec<usize>, usize)>,
    /// Per segment, the list it is part of; per list, its items' first segments and the
    /// indentation of its first item.
    list_of: Vec<Option<usize>>,
    lists: Vec<List>,
}

/// A list's items (the first segment of each) and the indentation of its first item.
type List = (Vec<usize>, usize);

impl State<'_> {
    fn set_full(&mut self, i: usize, keep: bool) {
        if self.full[i] != keep {
            self.full[i] = keep;
            let b = self.segs[i].block;
            if keep {
                self.block_kept[b] += 1;
            } else {
                self.block_kept[b] -= 1;
            }
        }
    }

    /// Puts back a selection saved before a trial (`full` as it was).
    fn restore(&mut self, full: &[bool]) {
        for (i, &keep) in full.iter().enumerate() {
            self.set_full(i, keep);
        }
    }

    /// The kept pieces, in order: `(start, end, block, segment)`.
    fn spans(&self) -> Vec<(usize, usize, usize, usize)> {
        let mut v = Vec::new();
        for (i, s) in self.segs.iter().enumerate() {
            if self.full[i] {
                v.push((s.start, s.end, s.block, i));
            } else if let Some(p) = self.partial.filter(|p| p.seg == i) {
                v.push((p.start, p.end, s.block, i));
            }
        }
        v
    }

    /// For a kept table row that is its table's last kept row while some rows of the table
    /// are dropped: the marker row that says so, `| … 12 of 40 rows omitted |`.
    fn table_marker(&self, spans: &[(usize, usize, usize, usize)], k: usize) -> Option<String> {
        let seg = &self.segs[spans[k].3];
        let table = seg.parent.filter(|_| seg.kind == SegKind::TableRow)?;
        let of_table = |i: usize| self.segs[i].kind == SegKind::TableRow && self.segs[i].parent == Some(table);
        if spans.get(k + 1).is_some_and(|n| of_table(n.3)) {
            return None;
        }
        // A row longer than a segment is several segments; rows are counted by their first.
        let starts_row = |i: usize| self.text[..self.segs[i].start].trim_end_matches([' ', '\t']).ends_with('\n');
        let rows: Vec<usize> = (table + 1..self.segs.len())
            .take_while(|&i| self.segs[i].block == seg.block)
            .filter(|&i| of_table(i) && starts_row(i))
            .collect();
        let dropped = rows.iter().filter(|&&i| !self.full[i]).count();
        (dropped > 0).then(|| {
            let noun = if rows.len() == 1 { "row" } else { "rows" };
            format!("| \u{2026} {dropped} of {} {noun} omitted |", rows.len())
        })
    }

    /// For a kept piece of a list that is the list's last kept piece while some of its items are
    /// dropped, or for a kept line that introduces a list ("Next steps:") none of whose items
    /// is kept: the line that says so, `[… 9 items omitted]`, at the list's indentation (an
    /// agenda or a checklist cut down would otherwise read as complete, an introduction as
    /// introducing nothing).
    fn list_marker(&self, spans: &[(usize, usize, usize, usize)], k: usize) -> Option<String> {
        let seg = spans[k].3;
        // A phrase cut from an item for a tiny budget has no room for more.
        if !self.full[seg] {
            return None;
        }
        let list = match self.list_of[seg] {
            Some(list) if spans.get(k + 1).is_some_and(|n| self.list_of[n.3] == Some(list)) => return None,
            Some(list) => list,
            // A line that introduces a list ("Next steps:") none of whose items is kept.
            None => {
                let list = self.list_of.get(seg + 1).copied().flatten()?;
                let items = &self.lists[list].0;
                let introduces = items.first() == Some(&(seg + 1))
                    && self.text[self.segs[seg].start..self.segs[seg].end].ends_with(':');
                if !introduces || items.iter().any(|&i| self.full[i]) {
                    return None;
                }
                list
            }
        };
        let (items, indent) = &self.lists[list];
        let dropped = items.iter().filter(|&&i| !self.full[i]).count();
        (dropped > 0).then(|| format!("{:indent$}{}", "", omitted(dropped, "item")))
    }

    /// For a markdown heading shown without anything of its section (its subsections' headings
    /// included): the marker that says how many lines of it were dropped (`[… 6 lines
    /// omitted]`), so the section does not read as empty.
    fn section_marker(&self, seg: usize) -> Option<String> {
        let (section, lines) = &self.section[seg];
        let shown = |i: usize| self.full[i] || self.partial.is_some_and(|p| p.seg == i);
        (!section.is_empty() && !section.iter().any(|&i| shown(i))).then(|| lines_omitted(*lines))
    }

    /// How many kept segments each segment is the parent of.
    fn kept_children(&self) -> Vec<usize> {
        let mut kids = vec![0usize; self.segs.len()];
        for (k, s) in self.segs.iter().enumerate() {
            if self.full[k]
                && let Some(p) = s.parent
            {
                kids[p] += 1;
            }
        }
        kids
    }

    fn render(&self) -> String {
        self.render_runs().0
    }

    /// The rendering, with where it copies the input: `(at, start, len)` runs, for
    /// [`PieceCounter::count_spliced`].
    fn render_runs(&self) -> (String, Vec<(usize, usize, usize)>) {
        let spans = self.spans();
        let mut out = String::with_capacity(spans.iter().map(|s| s.1 - s.0 + 2).sum::<usize>() + 32);
        let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(spans.len());
        let mut marked = false;
        for (k, &(s, e, b, _)) in spans.iter().enumerate() {
            let mut run_goes_on = false;
            if k > 0 {
                let (ps, pe, pb, _) = spans[k - 1];
                let sep = separator(self.text, (ps, pe, pb), (s, e, b), self.crlf);
                out.push_str(sep);
                // The input's own white space between the two: one run goes on.
                run_goes_on = !std::mem::take(&mut marked)
                    && std::ptr::eq(sep.as_ptr(), self.text[pe..].as_ptr())
                    && pe + sep.len() == s;
            }
            match runs.last_mut() {
                Some(last) if run_goes_on => last.2 = e - last.1,
                _ => runs.push((out.len(), s, e - s)),
            }
            out.push_str(&self.text[s..e]);
            if let Some(marker) = self
                .table_marker(&spans, k)
                .or_else(|| self.list_marker(&spans, k))
                .or_else(|| self.section_marker(spans[k].3))
            {
                out.push_str(if self.crlf { "\r\n" } else { "\n" });
                out.push_str(&marker);
                marked = true;
            }
        }
        (out, runs)
    }

    /// The rendering and its exact token count.
    fn render_counted(&self, counter: &PieceCounter<'_>) -> (String, usize) {
        let (text, runs) = self.render_runs();
        let tokens = counter.count_spliced(&text, &runs);
        (text, tokens)
    }
}

/// Per segment: for a markdown heading, the segments of its section (its content and its
/// subsections', their headings included) and the number of lines they start on; empty
/// otherwise.
fn sections(text: &str, segs: &[Segment]) -> Vec<(Vec<usize>, usize)> {
    let mut section = vec![(Vec::new(), 0); segs.len()];
    let is_heading = |s: &Segment| s.kind == SegKind::Header && is_heading(&text[s.start..s.end]);
    if !segs.iter().any(is_heading) {
        return section;
    }
    // The line each heading's section last started on, so a line is counted once.
    let mut last_line = vec![usize::MAX; segs.len()];
    let mut line = 0;
    let mut at = 0;
    for (i, s) in segs.iter().enumerate() {
        line += text.as_bytes()[at..s.start].iter().filter(|&&b| b == b'\n').count();
        at = s.start;
        let mut up = s.parent;
        while let Some(p) = up {
            if is_heading(&segs[p]) {
                section[p].0.push(i);
                if std::mem::replace(&mut last_line[p], line) != line {
                    section[p].1 += 1;
                }
            }
            up = segs[p].parent;
        }
    }
    section
}

/// The lists of the text (runs of items as [`is_list_item`] reads them, tight or loose, with
/// what is indented under their items): per segment its list, and per list the first segment of each of
/// its items (nested ones too) and the indentation of its first item. A heading, or a line at
/// or left of the first item's indentation that is no item, ends a list.
fn lists(text: &str, segs: &[Segment]) -> (Vec<Option<usize>>, Vec<List>) {
    let mut list_of = vec![None; segs.len()];
    let mut lists: Vec<List> = Vec::new();
    let mut current: Option<usize> = None;
    for (i, s) in segs.iter().enumerate() {
        let line_start = text[..s.start].rfind('\n').map_or(0, |k| k + 1);
        let before = &text[line_start..s.start];
        let opens_line = before.trim_start_matches([' ', '\t']).is_empty();
        let indent = before.len();
        if s.kind == SegKind::Header || s.kind == SegKind::Label {
            current = None;
            continue;
        }
        if opens_line && s.kind == SegKind::Sentence && is_list_item(&text[s.start..s.end]) {
            let l = *current.get_or_insert_with(|| {
                lists.push((Vec::new(), indent));
                lists.len() - 1
            });
            lists[l].0.push(i);
            list_of[i] = Some(l);
        } else if let Some(l) = current.filter(|&l| !opens_line || indent > lists[l].1) {
            list_of[i] = Some(l);
        } else {
            current = None;
        }
    }
    (list_of, lists)
}

/// The white space to put between two kept pieces `a` and `b` (a before b).
fn separator(text: &str, a: (usize, usize, usize), b: (usize, usize, usize), crlf: bool) -> &str {
    let gap = &text[a.1..b.0];
    if gap.trim().is_empty() {
        return gap; // adjacent in the input: its own white space
    }
    let after = &gap[..gap.len() - gap.trim_start().len()];
    let before = &gap[gap.trim_end().len()..];
    let newlines = |s: &str| s.bytes().filter(|&c| c == b'\n').count();
    if a.2 != b.2 {
        // A new block: a blank line, and the indentation `b`'s line had when `b` opens it (a
        // fence inside a list item stays inside it).
        if newlines(before) >= 2 && before.len() <= 64 {
            // From its first line break: a dropped line's trailing spaces are not `a`'s.
            return &before[before.find('\n').unwrap_or(0)..];
        }
        return if crlf { "\r\n\r\n" } else { "\n\n" };
    }
    let pick = if newlines(after) > newlines(before) { after } else { before };
    // Two pieces of different lines never share one: the tail of one line after the head of
    // another (`<dd>Yes.` and `Registered non-profits get 50% off.</dd>`) would read as one
    // statement.
    if newlines(pick) == 0 && newlines(gap) > 0 {
        return if crlf { "\r\n" } else { "\n" };
    }
    if !pick.is_empty() {
        if pick.len() <= 64 {
            return pick;
        }
        return if newlines(pick) > 0 { if crlf { "\r\n" } else { "\n" } } else { " " };
    }
    // No white space on either side (CJK, or a piece cut out of a long run).
    let left = text[..a.1].chars().next_back();
    let right = text[b.0..].chars().next();
    match (left, right) {
        (Some(l), Some(r)) if l.is_alphanumeric() && r.is_alphanumeric() && !is_cjk(l) && !is_cjk(r) => " ",
        _ => "",
    }
}

/// Byte ranges of the pieces a partial sentence may be cut into: white-space separated runs,
/// with CJK characters standing alone.
fn chunks(text: &str, s: usize, e: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text[s..e].char_indices() {
        let i = s + i;
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                v.push((st, i));
            }
        } else if is_cjk(c) {
            if let Some(st) = start.take() {
                v.push((st, i));
            }
            v.push((i, i + c.len_utf8()));
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        v.push((st, e));
    }
    v
}

pub fn pack(
    text: &str,
    segs: &[Segment],
    analysis: &Analysis,
    utility: &[f64],
    budget: usize,
    counter: &PieceCounter<'_>,
) -> Packing {
    let count = |s: &str| counter.count(s);
    let est = |a: usize, b: usize| counter.estimate(a, b);
    let n = segs.len();
    let costs: Vec<usize> = segs.iter().map(|s| est(s.start, s.end).max(1)).collect();
    // Parents (titles, headings, labels) come in only with a child: alone they say little.
    let mut is_parent = vec![false; n];
    for s in segs {
        if let Some(p) = s.parent {
            is_parent[p] = true;
        }
    }
    // With a generous budget (≥ 20 % kept) a title alone is a cheap, useful hint; below that it
    // only wastes tokens. So do markdown headings when all of them alone (a heading shown alone
    // brings a marker, `[… 6 lines omitted]`) would take more than a third of the budget: a
    // short document's outline is no summary of it. (`Title:` lines and bold labels do not
    // count: the first never bring a marker, the second never stand alone.)
    let outline: usize = (0..n)
        .filter(|&i| is_parent[i] && segs[i].kind == SegKind::Header)
        .map(|i| (costs[i], &text[segs[i].start..segs[i].end]))
        .filter(|(_, t)| is_heading(t) && !bold_heading(t))
        .map(|(c, _)| c + OUTLINE_MARKER)
        .sum();
    let parents_alone = budget * 5 >= costs.iter().sum::<usize>() && outline * 3 <= budget;
    // Below that, a sentence that names its passage's `Title:` needs no title line above it,
    // and no line needs the bold label it sits under (`**Describe the bug**`).
    let owned: Vec<Segment>;
    let segs: &[Segment] = if parents_alone {
        segs
    } else {
        owned = segs
            .iter()
            .map(|s| {
                let mut s = *s;
                if s.parent.is_some_and(|p| {
                    names_its_title(text, &segs[p], &s) || bold_heading(&text[segs[p].start..segs[p].end])
                }) {
                    s.parent = None;
                }
                s
            })
            .collect();
        &owned
    };
    let chain_cost = |i: usize, full: &[bool]| -> usize {
        let mut c = 0;
        let mut p = segs[i].parent;
        while let Some(j) = p {
            if full[j] {
                break;
            }
            c += costs[j];
            p = segs[j].parent;
        }
        c
    };
    let no_full = vec![false; n];
    let key: Vec<f64> = (0..n).map(|i| utility[i] / (costs[i] + chain_cost(i, &no_full)) as f64).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| key[b].total_cmp(&key[a]).then(a.cmp(&b)));

    let nblocks = segs.last().map_or(0, |s| s.block + 1);
    let (list_of, lists) = lists(text, segs);
    let mut st = State {
        text,
        segs,
        full: vec![false; n],
        partial: None,
        crlf: text.contains("\r\n"),
        block_kept: vec![0; nblocks],
        section: sections(text, segs),
        list_of,
        lists,
    };
    // A new block costs about one token for its blank line.
    let sep_cost = |i: usize, st: &State| -> usize { usize::from(st.block_kept[segs[i].block] == 0) };

    // 1. Greedy by estimate.
    let mut est = 0usize;
    let mut added: Vec<usize> = Vec::new();
    // Keeps `i` and its parent chain; `added` gets parents before children.
    let select = |st: &mut State, i: usize, added: &mut Vec<usize>| {
        let mark = added.len();
        let mut p = Some(i);
        while let Some(j) = p {
            if st.full[j] {
                break;
            }
            st.set_full(j, true);
            added.push(j);
            p = segs[j].parent;
        }
        added[mark..].reverse();
    };
    // A speaker label alone says nothing, nor does a title or heading that repeats an earlier
    // one word for word (the second chunk of one article): each comes only with its own lines.
    let mut seen = std::collections::HashSet::new();
    let repeated: Vec<bool> =
        (0..n).map(|i| is_parent[i] && !seen.insert(text[segs[i].start..segs[i].end].trim())).collect();
    // Nor does a line in bold that serves as a heading (`**Describe the bug**`): a form's or a
    // thread's label, not a document's outline.
    let is_parent: Vec<bool> = (0..n)
        .map(|i| {
            is_parent[i]
                && (!parents_alone
                    || segs[i].kind == SegKind::Label
                    || repeated[i]
                    || bold_heading(&text[segs[i].start..segs[i].end]))
        })
        .collect();
    // Nothing worth nothing is kept for itself (a lone `>` or list marker, a wrapper tag, a
    // script, a rule with no word in it): a parent comes with what it introduces.
    order.retain(|&i| {
        !is_parent[i] && utility[i] > 0.0 && text[segs[i].start..segs[i].end].chars().any(char::is_alphanumeric)
    });
    // A sentence said twice (a passage retrieved twice, chunks that overlap) is kept once: the
    // copy the order reaches first. Only whole sentences of some length: a line that recurs in
    // a configuration or a short reply ("Thanks.") is no copy.
    let mut said = std::collections::HashSet::new();
    order.retain(|&i| {
        let t = text[segs[i].start..segs[i].end].trim();
        let sentence = segs[i].kind == SegKind::Sentence
            && t.len() >= MIN_COPY_BYTES
            && t.ends_with(['.', '!', '?', '\u{3002}', '\u{FF01}', '\u{FF1F}']);
        !sentence || said.insert(words_hash(t))
    });
    for &i in &order {
        if st.full[i] {
            continue;
        }
        let c = costs[i] + chain_cost(i, &st.full) + sep_cost(i, &st);
        if est + c <= budget {
            est += c;
            select(&mut st, i, &mut added);
        }
    }

    // 2. Check and take back.
    let (mut rendered, mut tokens) = st.render_counted(counter);
    let mut rounds = 0;
    while tokens > budget && rounds < 64 {
        rounds += 1;
        let excess = tokens - budget;
        let mut removed = 0;
        let mut kids = st.kept_children();
        // Lowest key first, leaves only (no kept child depends on it).
        for &i in order.iter().rev() {
            if removed >= excess {
                break;
            }
            if st.full[i] && kids[i] == 0 {
                st.set_full(i, false);
                if let Some(p) = segs[i].parent {
                    kids[p] -= 1;
                }
                removed += costs[i];
            }
        }
        if removed == 0 {
            break;
        }
        (rendered, tokens) = st.render_counted(counter);
    }

    // Parents left without children go too.
    if drop_orphans(&mut st, &is_parent) {
        (rendered, tokens) = st.render_counted(counter);
    }

    // 3. Fill with whole segments by estimate, then verify.
    if tokens < budget {
        let mut est = tokens;
        let mut fill: Vec<usize> = Vec::new();
        for &i in &order {
            if st.full[i] {
                continue;
            }
            let c = costs[i] + chain_cost(i, &st.full) + sep_cost(i, &st);
            if est + c <= budget {
                est += c;
                let before = fill.len();
                select(&mut st, i, &mut fill);
                debug_assert!(fill.len() > before);
            }
        }
        if !fill.is_empty() {
            (rendered, tokens) = st.render_counted(counter);
            while tokens > budget && !fill.is_empty() {
                drop_orphans(&mut st, &is_parent);
                // Undo the fill, last added first (children before their parents).
                let excess = tokens - budget;
                let mut removed = 0;
                while removed < excess {
                    match fill.pop() {
                        Some(j) => {
                            st.set_full(j, false);
                            removed += costs[j];
                        }
                        None => break,
                    }
                }
                (rendered, tokens) = st.render_counted(counter);
            }
            // An undo that stopped after a child leaves its parent alone.
            if drop_orphans(&mut st, &is_parent) {
                (rendered, tokens) = st.render_counted(counter);
            }
        }
    }

    // 3b. Top up by the real count: the next segments in order whose estimate leaves a
    // chance, each kept only if the rendering still fits (estimates are off by a token or so
    // at the edges, and the undo above may have left more room than it needed, or nothing:
    // then a smaller whole segment still beats a phrase).
    if tokens < budget {
        let mut tries = 0;
        for &i in &order {
            if tokens * 100 >= budget * TOP_UP_FULL || tries >= TOP_UP_TRIES {
                break;
            }
            if st.full[i] || costs[i] + chain_cost(i, &st.full) > budget - tokens + 2 {
                continue;
            }
            tries += 1;
            let mut added = Vec::new();
            select(&mut st, i, &mut added);
            let (r, t) = st.render_counted(counter);
            if t <= budget {
                (rendered, tokens) = (r, t);
            } else {
                for j in added {
                    st.set_full(j, false);
                }
            }
        }
    }

    // 3c. Swaps: a segment passed over for its size takes the place of the least valuable kept
    // leaves when it is worth more than all of them together and the rendering fits: a
    // greedy fill by value per token leaves room a better, larger segment could use.
    if tokens > 0 && tokens * 100 < budget * SWAP_BELOW {
        let mut tries = 0;
        for ci in 0..order.len() {
            let c = order[ci];
            if tries >= SWAP_TRIES || tokens * 100 >= budget * SWAP_BELOW {
                break;
            }
            let room = budget - tokens;
            let need = costs[c] + chain_cost(c, &st.full);
            if st.full[c] || need <= room || need > budget {
                continue;
            }
            let kids = st.kept_children();
            // The least valuable kept leaves, worth less per token than `c`, until it fits.
            let (mut out, mut freed, mut lost) = (Vec::new(), 0usize, 0.0f64);
            for &k in order[ci + 1..].iter().rev() {
                if freed + room >= need {
                    break;
                }
                if st.full[k] && kids[k] == 0 {
                    out.push(k);
                    freed += costs[k];
                    lost += utility[k];
                }
            }
            if freed + room < need || lost >= utility[c] {
                continue;
            }
            tries += 1;
            let before = st.full.clone();
            for &k in &out {
                st.set_full(k, false);
            }
            select(&mut st, c, &mut Vec::new());
            drop_orphans(&mut st, &is_parent);
            let (r, t) = st.render_counted(counter);
            if t <= budget {
                (rendered, tokens) = (r, t);
            } else {
                st.restore(&before);
            }
        }
    }

    // 3d. Filling swaps: while the rendering fills less than `FILL_BELOW` of the budget, the
    // kept sentence worth least (of those no kept segment depends on) gives its place to the
    // first segment in order that fills the budget that far, all such swaps together giving up
    // at most `FILL_LOSS` of the value kept. Whole sentences leave up to half a sentence
    // unused; a caller asking for 10x then gets 10.8x.
    if tokens > 0 && tokens * 100 < budget * FILL_BELOW {
        let want = (budget * FILL_BELOW).div_ceil(100);
        // What all the swaps together may give up.
        let mut allowance = FILL_LOSS * (0..n).filter(|&j| st.full[j]).map(|j| utility[j]).sum::<f64>();
        let mut tried = std::collections::HashSet::new();
        while tried.len() < SWAP_TRIES && tokens < want {
            let kids = st.kept_children();
            // A sentence gives its place (the later in order of two worth the same); a title or
            // heading that names a passage stays.
            let Some(&k) = order
                .iter()
                .rev()
                .filter(|&&k| st.full[k] && kids[k] == 0 && segs[k].kind == SegKind::Sentence)
                .min_by(|&&a, &&b| utility[a].total_cmp(&utility[b]))
            else {
                break;
            };
            let room = budget - tokens + costs[k];
            let fills = |c: usize| {
                let need = costs[c] + chain_cost(c, &st.full);
                need <= room && tokens + need >= want + costs[k]
            };
            let Some(&c) = order
                .iter()
                .find(|&&c| !st.full[c] && !tried.contains(&c) && utility[c] >= utility[k] - allowance && fills(c))
            else {
                break;
            };
            tried.insert(c);
            let before = st.full.clone();
            st.set_full(k, false);
            select(&mut st, c, &mut Vec::new());
            drop_orphans(&mut st, &is_parent);
            let (r, t) = st.render_counted(counter);
            if t <= budget && t > tokens {
                (rendered, tokens) = (r, t);
                allowance -= (utility[k] - utility[c]).max(0.0);
            } else {
                st.restore(&before);
            }
        }
    }

    // 4. Nothing whole fits: the most informative run of whole words of one segment.
    let mut over_budget = false;
    if rendered.is_empty() && !text.trim().is_empty() {
        let (piece, t, over) = best_phrase(text, segs, analysis, &order, budget, &count_range(counter));
        st.partial = Some(piece);
        rendered = st.render();
        tokens = t;
        over_budget = over;
        if !over {
            tokens = count(&rendered);
        }
    }

    let mut kept_weight = 0.0;
    let mut kept = Vec::new();
    for i in 0..n {
        if st.full[i] {
            kept.push(i);
            kept_weight += analysis.seg_info(i);
        } else if let Some(p) = st.partial.filter(|p| p.seg == i) {
            kept.push(i);
            for k in analysis.seg_range(i) {
                let w = analysis.words[k];
                if w.start >= p.start && w.end <= p.end {
                    kept_weight += analysis.word_weight[k];
                }
            }
        }
    }
    Packing { text: rendered, tokens, kept, over_budget, kept_weight }
}

/// The shortest sentence (in bytes) whose second copy [`pack`] leaves out.
const MIN_COPY_BYTES: usize = 24;

/// A hash of a text's words, so that copies wrapped or spaced differently are one text.
fn words_hash(t: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for w in t.split_whitespace() {
        w.hash(&mut h);
    }
    h.finish()
}

/// How strongly a block's centrality scales its words in [`pack_words`].
const CENTRALITY_POWER: f64 = 2.0;

/// Word-level packing for the query-agnostic mode: every sentence may lose its least
/// informative words. Units are white-space separated chunks (CJK characters one by one), so
/// numbers, URLs and identifiers stay whole; tables, code blocks, markdown headings and speaker
/// labels are single units. A chunk's score is the highest weight of its words; a short linking
/// word between two capitalised chunks ("Bank *of* America") takes the score of its weaker
/// neighbour so names stay in one piece. The best chunks are kept, in input order, as many as
/// the budget allows (checked by counting the rendered text). Speaker labels and list markers
/// (`-`, `1.`) are not ranked: each is shown exactly when a word it introduces is, so no label
/// or marker is left alone and no kept turn or item loses its own. Chunk costs are estimates
/// from the input's one counting pass (`est`); only rendered candidates are counted.
pub fn pack_words(
    text: &str,
    segs: &[Segment],
    analysis: &Analysis,
    budget: usize,
    counter: &PieceCounter<'_>,
) -> Packing {
    let count = |s: &str| counter.count(s);
    let est = |a: usize, b: usize| counter.estimate(a, b);
    struct Chunk {
        start: usize,
        end: usize,
        seg: usize,
        score: f64,
        weight: f64,
        cost: usize,
    }
    let cost_of = |cs: usize, ce: usize| -> usize { est(cs, ce).max(1) };
    let mut chunks_all: Vec<Chunk> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let range = analysis.seg_range(i);
        let words = &analysis.words[range.clone()];
        let weights = &analysis.word_weight[range];
        // Markdown headings are kept or dropped whole: no `#` left without its title.
        let whole = matches!(s.kind, SegKind::Code | SegKind::TableRow | SegKind::TableHead | SegKind::Label)
            || (s.kind == SegKind::Header && is_heading(&text[s.start..s.end]));
        let pieces = if whole { vec![(s.start, s.end)] } else { chunks(text, s.start, s.end) };
        let mut k = 0;
        for (cs, ce) in pieces {
            let mut best = 0.0f64;
            let mut sum = 0.0;
            while k < words.len() && words[k].start < ce {
                if words[k].start >= cs {
                    best = best.max(weights[k]);
                    sum += weights[k];
                }
                k += 1;
            }
            let central = analysis.block_centrality[s.block];
            let score = central.powf(CENTRALITY_POWER)
                * match s.kind {
                    SegKind::Label => f64::MAX,
                    SegKind::Header => best * 1.3,
                    SegKind::Code | SegKind::TableRow | SegKind::TableHead => sum / (ce - cs).max(1) as f64 * 4.0,
                    _ => best,
                };
            chunks_all.push(Chunk { start: cs, end: ce, seg: i, score, weight: sum, cost: cost_of(cs, ce) });
        }
    }
    // Names stay whole: a run of capitalised chunks scores as its best member.
    let mut x = 0;
    while x < chunks_all.len() {
        let mut y = x;
        while y < chunks_all.len()
            && chunks_all[y].seg == chunks_all[x].seg
            && segs[chunks_all[y].seg].kind == SegKind::Sentence
            && text[chunks_all[y].start..chunks_all[y].end].chars().next().is_some_and(char::is_uppercase)
        {
            y += 1;
        }
        if y > x + 1 {
            let best = chunks_all[x..y].iter().map(|c| c.score).fold(0.0, f64::max);
            for c in &mut chunks_all[x..y] {
                c.score = c.score.max(best * 0.98);
            }
        }
        x = y.max(x + 1);
    }
    // Glue: keep names with linking words together.
    let capitalised = |c: &Chunk| text[c.start..c.end].chars().next().is_some_and(char::is_uppercase);
    for x in 1..chunks_all.len().saturating_sub(1) {
        let w = &text[chunks_all[x].start..chunks_all[x].end];
        let linking = matches!(
            w,
            "of" | "and"
                | "the"
                | "de"
                | "for"
                | "on"
                | "in"
                | "at"
                | "la"
                | "le"
                | "von"
                | "van"
                | "du"
                | "del"
                | "da"
                | "&"
                | "y"
        );
        if linking
            && chunks_all[x - 1].seg == chunks_all[x].seg
            && chunks_all[x + 1].seg == chunks_all[x].seg
            && capitalised(&chunks_all[x - 1])
            && capitalised(&chunks_all[x + 1])
        {
            chunks_all[x].score = chunks_all[x - 1].score.min(chunks_all[x + 1].score) * 0.99;
        }
    }
    let n = chunks_all.len();
    // Companions are shown exactly when something they introduce is: a speaker label with
    // its turn's words, a list marker (`-`, `1.`) with its item's words. They are not ranked.
    let mut companions: Vec<[Option<usize>; 2]> = vec![[None, None]; n];
    let mut is_companion = vec![false; n];
    {
        let mut first_chunk: Vec<Option<usize>> = vec![None; segs.len()];
        let mut chunk_count = vec![0usize; segs.len()];
        for (i, c) in chunks_all.iter().enumerate() {
            first_chunk[c.seg].get_or_insert(i);
            chunk_count[c.seg] += 1;
        }
        for (i, c) in chunks_all.iter().enumerate() {
            let s = &segs[c.seg];
            if s.kind == SegKind::Label {
                is_companion[i] = true;
                continue;
            }
            let mut slot = 0;
            if let Some(p) = s.parent
                && segs[p].kind == SegKind::Label
                && let Some(l) = first_chunk[p]
            {
                companions[i][slot] = Some(l);
                slot += 1;
            }
            let first = first_chunk[c.seg] == Some(i);
            if s.kind == SegKind::Sentence && chunk_count[c.seg] >= 2 && is_list_item(&text[s.start..s.end]) {
                if first {
                    is_companion[i] = true;
                } else {
                    companions[i][slot] = first_chunk[c.seg];
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| !is_companion[i]).collect();
    order.sort_by(|&a, &b| chunks_all[b].score.total_cmp(&chunks_all[a].score).then(a.cmp(&b)));
    let keep_of = |k: usize| -> Vec<bool> {
        let mut keep = vec![false; n];
        for &i in &order[..k] {
            keep[i] = true;
            for c in companions[i].into_iter().flatten() {
                keep[c] = true;
            }
        }
        keep
    };
    let crlf = text.contains("\r\n");
    let render = |k: usize| -> String {
        let keep = keep_of(k);
        let mut out = String::new();
        let mut prev: Option<(usize, usize, usize)> = None;
        for (i, c) in chunks_all.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let cur = (c.start, c.end, segs[c.seg].block);
            if let Some(p) = prev {
                out.push_str(separator(text, p, cur, crlf));
            }
            out.push_str(&text[c.start..c.end]);
            prev = Some(cur);
        }
        out
    };
    // Estimate k (a chunk costs its companions too, the first time), then correct it with
    // real counts.
    let mut k = 0;
    let mut est = 0;
    let mut shown = vec![false; n];
    while k < order.len() {
        let i = order[k];
        let extra: usize = companions[i].into_iter().flatten().filter(|&c| !shown[c]).map(|c| chunks_all[c].cost).sum();
        if est + chunks_all[i].cost + extra > budget {
            break;
        }
        est += chunks_all[i].cost + extra;
        for c in companions[i].into_iter().flatten() {
            shown[c] = true;
        }
        k += 1;
    }
    let n = order.len();
    let mut best: Option<(usize, String, usize)> = None;
    let (mut lo, mut hi) = (0usize, n); // k is known to fit for lo, unknown above
    for _ in 0..12 {
        let r = render(k);
        let t = count(&r);
        if t <= budget {
            lo = lo.max(k);
            if best.as_ref().is_none_or(|b| k > b.0) {
                best = Some((k, r, t));
            }
            if t >= budget - budget / 40 || k >= hi.min(n) {
                break;
            }
            // Grow by the estimated number of chunks the gap holds.
            let mut add = 0;
            let mut room = budget - t;
            while k + add < n && chunks_all[order[k + add]].cost <= room {
                room -= chunks_all[order[k + add]].cost;
                add += 1;
            }
            let next = (k + add.max(1)).min(hi.saturating_sub(1).max(k + 1)).min(n);
            if next <= k {
                break;
            }
            k = next;
        } else {
            hi = k;
            // Shrink by the excess.
            let mut drop = 0;
            let mut excess = t - budget;
            while drop < k && excess > 0 {
                excess = excess.saturating_sub(chunks_all[order[k - 1 - drop]].cost);
                drop += 1;
            }
            k = (k - drop.max(1)).max(lo);
            if k == lo && best.as_ref().is_some_and(|b| b.0 == lo) {
                break;
            }
        }
    }
    let (k, rendered, tokens) = best.unwrap_or((0, String::new(), 0));
    let mut kept_seg = vec![false; segs.len()];
    let mut kept_weight = 0.0;
    for (i, kept) in keep_of(k).into_iter().enumerate() {
        if kept {
            kept_seg[chunks_all[i].seg] = true;
            kept_weight += chunks_all[i].weight;
        }
    }
    if rendered.is_empty() && !text.trim().is_empty() {
        let seg_order: Vec<usize> = {
            let mut v: Vec<usize> = (0..segs.len()).collect();
            v.sort_by(|&a, &b| analysis.seg_info(b).total_cmp(&analysis.seg_info(a)));
            v
        };
        let (p, t, over) = best_phrase(text, segs, analysis, &seg_order, budget, &count_range(counter));
        return Packing {
            text: text[p.start..p.end].to_string(),
            tokens: t,
            kept: vec![p.seg],
            over_budget: over,
            kept_weight: 0.0,
        };
    }
    Packing {
        text: rendered,
        tokens,
        kept: (0..segs.len()).filter(|&i| kept_seg[i]).collect(),
        over_budget: false,
        kept_weight,
    }
}

/// Whether sentence `s` names the `Title:` line `title` (its words outside brackets, in any
/// case), so that the sentence read alone still says what it is about.
fn names_its_title(text: &str, title: &Segment, s: &Segment) -> bool {
    if !is_title(text, title) {
        return false;
    }
    let name = &text[title_name(text, title)];
    if s.kind != SegKind::Sentence || name.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return false;
    }
    let body = text[s.start..s.end].to_lowercase();
    body.contains(&name.to_lowercase())
}

/// About what a heading's `[… 6 lines omitted]` marker costs, in tokens.
const OUTLINE_MARKER: usize = 8;

/// The top-up stops at this share of the budget (percent) ...
const TOP_UP_FULL: usize = 99;
/// ... or after this many renderings.
const TOP_UP_TRIES: usize = 16;

/// Swaps are tried while the rendering fills less than this share of the budget (percent) ...
const SWAP_BELOW: usize = 95;
/// ... and at most this many times.
const SWAP_TRIES: usize = 8;

/// Filling swaps are tried while the rendering fills less than this share of the budget
/// (percent): a ratio within 5% of the one asked for needs 95.2% ...
const FILL_BELOW: usize = 96;
/// ... all of them together giving up at most this share of the value kept.
const FILL_LOSS: f64 = 0.02;

/// Unkeeps kept parents none of whose children are kept (deepest first).
fn drop_orphans(st: &mut State, is_parent: &[bool]) -> bool {
    let n = st.segs.len();
    let mut kids = vec![0usize; n];
    let mut dropped = false;
    for i in (0..n).rev() {
        if st.full[i] && is_parent[i] && kids[i] == 0 && st.partial.is_none_or(|p| st.segs[p.seg].parent != Some(i)) {
            st.set_full(i, false);
            dropped = true;
        }
        if st.full[i]
            && let Some(p) = st.segs[i].parent
        {
            kids[p] += 1;
        }
    }
    dropped
}

/// Segments a tiny budget may draw a phrase from: the best-ranked ones.
const PHRASE_CANDIDATES: usize = 8;

/// The exact tokens of `source[a..b]` from the counter's pieces of the source: only the text
/// around the two cuts is tokenized again.
fn count_range<'c>(counter: &'c PieceCounter<'_>) -> impl Fn(usize, usize) -> usize + 'c {
    move |a, b| counter.count_spliced(&counter.source()[a..b], &[(0, a, b - a)])
}

/// When no whole segment fits: the contiguous run of whole words (white-space separated
/// chunks) of one segment that carries the most information and fits in `budget`, counted
/// alone. A run holds at least one letter or digit and never breaks a bracket or a quote, so a
/// list marker or a lone `(` is never the output. Runs that start a sentence or a clause (after
/// `,` `;` `:`) and end one are preferred. When not even one word fits, the cheapest word of
/// the best segment is returned whole, over budget. Returns the piece, its token count, and
/// whether it is over budget.
fn best_phrase(
    text: &str,
    segs: &[Segment],
    analysis: &Analysis,
    order: &[usize],
    budget: usize,
    count: &dyn Fn(usize, usize) -> usize,
) -> (Partial, usize, bool) {
    let all: Vec<usize>;
    let candidates: &[usize] = if order.is_empty() {
        all = (0..segs.len()).collect();
        &all
    } else {
        order
    };
    let has_word = |s: &str| s.chars().any(char::is_alphanumeric);
    // (score, piece, tokens)
    let mut best: Option<(f64, Partial, usize)> = None;
    for (rank, &i) in candidates.iter().take(PHRASE_CANDIDATES).enumerate() {
        let s = segs[i];
        let ch = chunks(text, s.start, s.end);
        if ch.is_empty() {
            continue;
        }
        let mut cw = vec![0.0; ch.len()];
        let mut k = 0;
        for w in analysis.seg_range(i) {
            let ws = analysis.words[w].start;
            while k + 1 < ch.len() && ws >= ch[k].1 {
                k += 1;
            }
            cw[k] += analysis.word_weight[w];
        }
        let clause_start =
            |a: usize| a == 0 || text[ch[a - 1].0..ch[a - 1].1].ends_with([',', ';', ':', '.', '!', '?']);
        let clause_end =
            |b: usize| b == ch.len() || text[ch[b - 1].0..ch[b - 1].1].ends_with([',', ';', ':', '.', '!', '?']);
        let rank_factor = 1.0 / (1.0 + 0.15 * rank as f64);
        // Sliding window: for each start, the longest run that fits.
        let mut b = 0;
        for a in 0..ch.len() {
            b = b.max(a);
            while b < ch.len() && count(ch[a].0, ch[b].1) <= budget {
                b += 1;
            }
            // ch[a..b] is the longest fitting run from a (possibly empty).
            let mut end = b;
            while end > a {
                let piece = &text[ch[a].0..ch[end - 1].1];
                if has_word(piece) && balanced(piece) {
                    break;
                }
                end -= 1;
            }
            if end == a {
                continue;
            }
            let weight: f64 = cw[a..end].iter().sum::<f64>() + 1e-6 * (end - a) as f64;
            let shape = if clause_start(a) { 1.1 } else { 1.0 } * if clause_end(end) { 1.1 } else { 1.0 };
            let score = weight * shape * rank_factor;
            if best.as_ref().is_none_or(|(bs, _, _)| score > *bs) {
                let piece = Partial { seg: i, start: ch[a].0, end: ch[end - 1].1 };
                let t = count(piece.start, piece.end);
                best = Some((score, piece, t));
            }
        }
    }
    if let Some((_, piece, t)) = best {
        return (piece, t, false);
    }
    // Not one word fits: the cheapest word of the best segment, whole.
    let i = candidates[0];
    let s = segs[i];
    let (cs, ce) = chunks(text, s.start, s.end)
        .into_iter()
        .filter(|&(a, b)| has_word(&text[a..b]) && balanced(&text[a..b]))
        .min_by_key(|&(a, b)| (count(a, b), a))
        .unwrap_or((s.start, s.end));
    let t = count(cs, ce);
    (Partial { seg: i, start: cs, end: ce }, t, t > budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_on_white_space_and_cjk() {
        let t = "ab  3.14 東京x y";
        let c: Vec<&str> = chunks(t, 0, t.len()).iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(c, ["ab", "3.14", "東", "京", "x", "y"]);
    }

    /// Packs `text`'s sentences, of the given utilities, into `budget`.
    fn pack_with(text: &str, utility: &[f64], budget: usize) -> Packing {
        let segs = super::super::segment::segment(text, Default::default());
        assert_eq!(segs.len(), utility.len());
        let analysis = Analysis::new(text, &segs);
        pack(text, &segs, &analysis, utility, budget, &PieceCounter::new(crate::tokens::Encoding::Cl100k, text))
    }

    #[test]
    fn a_longer_sentence_worth_nearly_as_much_takes_the_place_that_leaves_room_unused() {
        let a = "Rust appeared in 2015.";
        let b = "It is maintained by the Rust Foundation today.";
        let c = "The borrow checker, which tracks the lifetimes of references at compile time, rejects programs with data races before they run.";
        let text = format!("{a} {b} {c}");
        let counter = PieceCounter::new(crate::tokens::Encoding::Cl100k, &text);
        let budget = counter.count(&format!("{a} {c}"));
        assert!(counter.count(&format!("{a} {b}")) * 100 < budget * 80);
        // Per token, a and b come before c; a and b leave a fifth of the budget unused, a and c
        // fill it, and c is worth almost as much as b: c takes b's place.
        let p = pack_with(&text, &[1.0, 1.0, 0.99], budget);
        assert_eq!(p.text, format!("{a} {c}"));
        assert_eq!(p.tokens, budget);
        // Worth clearly less, c does not: the budget is not filled at any price.
        let p = pack_with(&text, &[1.0, 1.0, 0.8], budget);
        assert_eq!(p.text, format!("{a} {b}"));
    }

    #[test]
    fn separators_keep_original_white_space() {
        let t = "A one.\nB two. C three.\n\nD four.";
        // adjacent
        assert_eq!(separator(t, (0, 6, 0), (7, 13, 0), false), "\n");
        // gap inside a block: the stronger white space
        assert_eq!(separator(t, (0, 6, 0), (14, 22, 0), false), "\n");
        // across blocks
        assert_eq!(separator(t, (0, 6, 0), (24, 31, 1), false), "\n\n");
        // pieces of two lines of one block, a space on either side: a line break all the same
        let t = "<dd>Yes. You can switch.</dd>\n<dd>No. Non-profits get 50% off.</dd>";
        let (yes, off) = (t.find("Yes.").unwrap() + 4, t.find("Non-profits").unwrap());
        assert_eq!(separator(t, (0, yes, 0), (off, t.len(), 0), false), "\n");
        assert_eq!(separator(t, (0, yes, 0), (off, t.len(), 0), true), "\r\n");
        // across blocks, to a piece that opens an indented line (a fence in a list item): its
        // indentation comes with it, and a dropped line's trailing spaces do not
        let t = "- Install:\n\n  Dropped words.   \n\n    ```sh\n    make\n    ```\n";
        let fence = t.find("```sh").unwrap();
        assert_eq!(separator(t, (0, 10, 0), (fence, t.len() - 1, 2), false), "\n\n    ");
    }
}
