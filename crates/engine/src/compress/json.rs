//! JSON compression: drop whole members and elements until the document fits the budget.
//!
//! What it does:
//! - Accepts a document whose trimmed text is a JSON object or array that `serde_json` accepts
//!   and whose nesting depth is at most [`MAX_DEPTH`] (the limit `serde_json::Value` parsing
//!   has, so every output also parses with it). Anything else is `None`.
//! - Returns the input unchanged when it already fits; otherwise works on the *compact* text
//!   (whitespace outside strings removed except one space after each `:` and `,`, so keys,
//!   values and elements stay separate words; this nearly always saves tokens) and keeps a subset
//!   of the members/elements, recursively: a member too large to keep whole is kept partially
//!   (its key, brackets and a selection of its own members/elements).
//! - Ranking with a query: members whose key or string value equals a quoted phrase or an
//!   identifier-like word of the query come first (so `key "2a8d…"` finds that key), then
//!   BM25-like overlap of query words with keys and values. Without a query: input order,
//!   except that array elements introducing keys not seen before come first (schema stays
//!   visible) and small members are kept whole before large ones are sampled. An array that
//!   keeps some elements whole keeps no element in part, relevant to the query or not (a record
//!   cut to its cheapest field, `{"rank": 18}`, would read as one more whole record), and its
//!   elements are never swapped for larger ones (its order means something: ranks, time); an
//!   array none of whose elements fits whole is sampled inside its elements.
//! - Fitting: member costs are counted one by one (estimates; counts are not additive), the
//!   selection runs against an internal budget (greedy, then, in objects, swapping kept
//!   members for larger dropped ones while more than 2% is left), and that internal budget is searched
//!   (interpolation inside a bracket, at most 12 rounds) until the real `count` of the
//!   rendered text fits and is within 3% under the budget (aiming inside the 5% promise), or
//!   the step of one whole member makes that impossible. When not even one member fits, the output is the bare outer brackets (`{}` or
//!   `[]`, still valid JSON and non-empty); `None` only when even those do not fit.
//!
//! - Marking: an array that lost elements ends with one more, a string that says how many
//!   (`"… 22 of 30 items omitted"`): a list of 30 search results cut to 8 would otherwise read
//!   as 8 results. Its tokens count like the rest. An object that lost members is not marked (a
//!   key of its own would read as data); the bare outer brackets are never marked.
//!
//! What it does not do: it never rewrites a key or value and never cuts inside a string or
//! number; besides the arrays' markers, nothing is added. It does not repair invalid JSON, and
//! it does not handle JSON Lines or a bare scalar document (`None`).
//!
//! Invariants of `Some(p)`: `p.text` parses as JSON; every key and scalar in it is byte-exact
//! from the input, but the arrays' markers; members stay in input order; `count(&p.text) <=
//! budget` (checked with `count` on the final text); `retained_indices` are the kept top-level
//! members/elements in input order; `kept_information` is the fraction of the minified document's bytes present in
//! the output (1.0 only when nothing was dropped).

use super::Packed;
use super::query::QueryWords;
use super::units::Count;

/// Deepest nesting accepted: `serde_json::Value` parsing refuses 128 levels.
pub const MAX_DEPTH: usize = 127;

/// Nodes visited by the partial (recursive) selection are limited to this depth.
const MAX_PARTIAL_DEPTH: usize = 48;

/// True when the text is JSON this module can handle: an object or array (see
/// [`is_json`](super::json_syntax::is_json)) nested at most [`MAX_DEPTH`] levels.
fn within_reach(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(['{', '[']) && max_depth_within(t, MAX_DEPTH)
}

/// Scans brackets outside strings; false as soon as the depth exceeds `limit`.
fn max_depth_within(t: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for &b in t.as_bytes() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    Str,
    Other,
}

/// One member (with its key) or element, as spans of the compact text.
#[derive(Debug, Clone)]
struct Node {
    /// Span of the key string including its quotes, for object members.
    key: Option<(usize, usize)>,
    /// Span of the value.
    start: usize,
    end: usize,
    kind: Kind,
    children: Vec<usize>,
}

impl Node {
    fn member_start(&self) -> usize {
        self.key.map_or(self.start, |k| k.0)
    }
}

/// Parses compact (see [`minify`]), valid JSON into a preorder node list (node 0 is the root). Iterative.
fn parse_spans(m: &str) -> Option<Vec<Node>> {
    let b = m.as_bytes();
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut i = 0usize;
    let mut pending_key: Option<(usize, usize)> = None;
    let string_end = |mut j: usize| -> Option<usize> {
        // j is at the opening quote; returns the index after the closing quote.
        j += 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    };
    loop {
        // Expecting a value (or a key inside an object).
        if i >= b.len() {
            return None;
        }
        let parent = stack.last().copied();
        let in_object = parent.is_some_and(|p| nodes[p].kind == Kind::Object);
        if in_object && pending_key.is_none() {
            if b[i] == b'}' {
                // Empty object.
                let p = stack.pop()?;
                nodes[p].end = i + 1;
                i += 1;
                if !after_value(b, &mut i, &mut stack, &mut nodes)? {
                    break;
                }
                continue;
            }
            let e = string_end(i)?;
            pending_key = Some((i, e));
            i = e + 2; // skip ": "
            continue;
        }
        if !in_object && parent.is_some() && b[i] == b']' {
            let p = stack.pop()?;
            nodes[p].end = i + 1;
            i += 1;
            if !after_value(b, &mut i, &mut stack, &mut nodes)? {
                break;
            }
            continue;
        }
        let key = pending_key.take();
        let idx = nodes.len();
        let (kind, end) = match b[i] {
            b'{' => (Kind::Object, 0),
            b'[' => (Kind::Array, 0),
            b'"' => (Kind::Str, string_end(i)?),
            _ => {
                let mut j = i;
                while j < b.len() && !matches!(b[j], b',' | b']' | b'}') {
                    j += 1;
                }
                (Kind::Other, j)
            }
        };
        nodes.push(Node { key, start: i, end, kind, children: Vec::new() });
        if let Some(p) = parent {
            nodes[p].children.push(idx);
        }
        if matches!(kind, Kind::Object | Kind::Array) {
            stack.push(idx);
            i += 1;
            continue;
        }
        i = end;
        if !after_value(b, &mut i, &mut stack, &mut nodes)? {
            break;
        }
    }
    Some(nodes)
}

/// After a value: consume `,` or closing brackets. Returns Some(false) when the document ended.
fn after_value(b: &[u8], i: &mut usize, stack: &mut Vec<usize>, nodes: &mut [Node]) -> Option<bool> {
    loop {
        if stack.is_empty() {
            return Some(false);
        }
        match b.get(*i)? {
            b',' => {
                *i += 2; // skip ", "
                return Some(true);
            }
            b'}' | b']' => {
                let p = stack.pop()?;
                nodes[p].end = *i + 1;
                *i += 1;
            }
            _ => return None,
        }
    }
}

fn words_of(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase())
}

/// Relevance of every node to the query; node 0 is the root.
fn relevance(m: &str, nodes: &[Node], q: &QueryWords) -> Vec<f64> {
    let n = nodes.len();
    let mut rel = vec![0.0f64; n];
    if q.phrases.is_empty() && q.words.is_empty() {
        return rel;
    }
    // Term frequencies per node (own key and own scalar only), and document frequencies.
    let mut tf: Vec<Vec<(usize, u32)>> = vec![Vec::new(); n];
    let mut df = vec![0u32; q.words.len()];
    for (idx, node) in nodes.iter().enumerate() {
        let mut texts: Vec<(&str, bool)> = Vec::new();
        if let Some((s, e)) = node.key {
            texts.push((&m[s + 1..e - 1], true));
        }
        match node.kind {
            Kind::Str => texts.push((&m[node.start + 1..node.end - 1], false)),
            Kind::Other => texts.push((&m[node.start..node.end], false)),
            _ => {}
        }
        for (text, is_key) in texts {
            if !q.phrases.is_empty() {
                let lower = text.to_lowercase();
                for p in &q.phrases {
                    if lower == *p {
                        rel[idx] += if is_key { 1000.0 } else { 500.0 };
                    } else if lower.contains(p.as_str()) {
                        rel[idx] += 100.0;
                    }
                }
            }
            if !q.words.is_empty() {
                for w in words_of(text) {
                    if let Ok(k) = q.words.binary_search(&w) {
                        match tf[idx].iter_mut().find(|(t, _)| *t == k) {
                            Some((_, c)) => *c += 1,
                            None => {
                                tf[idx].push((k, 1));
                                df[k] += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    let total = n as f64;
    for (idx, hits) in tf.iter().enumerate() {
        for &(k, c) in hits {
            let d = f64::from(df[k]);
            let idf = ((total - d + 0.5) / (d + 0.5) + 1.0).ln();
            let c = f64::from(c);
            rel[idx] += idf * c * 2.2 / (c + 1.2);
        }
    }
    // Children come after their parent in preorder: accumulate bottom-up.
    let mut acc = rel.clone();
    for idx in (0..n).rev() {
        let sum: f64 = nodes[idx].children.iter().map(|&c| acc[c]).sum();
        acc[idx] += sum;
    }
    acc
}

/// Selection state per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sel {
    Dropped,
    Whole,
    Partial,
}

struct Ctx<'a> {
    m: &'a str,
    nodes: &'a [Node],
    rel: &'a [f64],
    count: &'a dyn Fn(&str) -> usize,
    /// Token estimate of each member's text (key and value), filled lazily.
    cost: Vec<Option<usize>>,
}

impl Ctx<'_> {
    fn cost(&mut self, idx: usize) -> usize {
        if let Some(c) = self.cost[idx] {
            return c;
        }
        let n = &self.nodes[idx];
        let c = (self.count)(&self.m[n.member_start()..n.end]) + 1;
        self.cost[idx] = Some(c);
        c
    }

    /// Children of a container in the order they should be considered: by relevance, then
    /// array elements that bring keys not seen in earlier elements (the schema stays
    /// visible), then input order.
    fn priority(&self, idx: usize) -> Vec<usize> {
        let node = &self.nodes[idx];
        let mut novel = vec![false; node.children.len()];
        if node.kind == Kind::Array {
            let mut seen: Vec<&str> = Vec::new();
            for (pos, &c) in node.children.iter().enumerate() {
                let child = &self.nodes[c];
                if child.kind != Kind::Object {
                    continue;
                }
                for &g in &child.children {
                    if let Some((s, e)) = self.nodes[g].key {
                        let k = &self.m[s..e];
                        if seen.len() < 256 && !seen.contains(&k) {
                            seen.push(k);
                            novel[pos] = true;
                        }
                    }
                }
            }
        }
        let mut positions: Vec<usize> = (0..node.children.len()).collect();
        positions.sort_by(|&a, &b| {
            let (ca, cb) = (node.children[a], node.children[b]);
            self.rel[cb].total_cmp(&self.rel[ca]).then(novel[b].cmp(&novel[a])).then(a.cmp(&b))
        });
        positions.into_iter().map(|p| node.children[p]).collect()
    }

    /// Chooses what of container `idx` to keep within `budget` estimated tokens
    /// (the brackets included). Returns the estimated tokens used.
    fn select(&mut self, idx: usize, budget: usize, depth: usize, sel: &mut [Sel]) -> usize {
        sel[idx] = Sel::Partial;
        let mut used = 2usize; // brackets
        if budget <= used {
            return used;
        }
        let order = self.priority(idx);
        let any_rel = order.iter().any(|&c| self.rel[c] > 0.0);
        let mut deferred: Vec<usize> = Vec::new();
        // Relevant containers kept in part, with what they took.
        let mut cut: Vec<(usize, usize)> = Vec::new();
        for (pos, &c) in order.iter().enumerate() {
            let cost = self.cost(c);
            let remaining = budget.saturating_sub(used);
            if cost <= remaining {
                sel[c] = Sel::Whole;
                used += cost;
                continue;
            }
            let container = matches!(self.nodes[c].kind, Kind::Object | Kind::Array);
            if !container || depth >= MAX_PARTIAL_DEPTH {
                continue;
            }
            if any_rel && self.rel[c] > 0.0 {
                // A relevant container gets its share of what is left now, before the
                // irrelevant members can take it.
                let rest: f64 = order[pos..].iter().map(|&o| self.rel[o]).filter(|r| *r > 0.0).sum();
                let share = (remaining as f64 * self.rel[c] / rest.max(f64::MIN_POSITIVE)) as usize;
                let took = self.select_member(c, share.min(remaining), depth, sel);
                used += took;
                cut.push((c, took));
            } else {
                deferred.push(c);
            }
        }
        // In an array with whole elements kept, a cut element would be a stub of its cheapest
        // fields (`{"rank": 18}`) read as one more whole record: the array ends with its whole
        // elements instead. An array none of whose elements fits whole is still sampled.
        // So it does when the query matched it: a relevant record too large to keep whole
        // gives way to the whole ones, as an irrelevant one does.
        let array = self.nodes[idx].kind == Kind::Array;
        if array && order.iter().any(|&c| sel[c] == Sel::Whole) {
            deferred.clear();
            for (c, took) in cut {
                clear(self.nodes, c, sel);
                used -= took;
            }
        }
        let mut left = deferred.len();
        for c in deferred {
            let remaining = budget.saturating_sub(used);
            let share = remaining / left.max(1);
            left -= 1;
            used += self.select_member(c, share, depth, sel);
        }
        // An array's order means something (ranks, time): its elements are not swapped.
        if array { used } else { used + self.swap_fill(&order, budget, budget.saturating_sub(used), sel) }
    }

    /// Whole members make the fit a step function: when more than 2 % of `budget` is left,
    /// swap kept members without relevance for larger dropped ones (largest first, each time
    /// the smallest kept member that makes the swap fit), at most 64 swaps. Returns the
    /// tokens added.
    fn swap_fill(&mut self, order: &[usize], budget: usize, mut room: usize, sel: &mut [Sel]) -> usize {
        if room * 50 <= budget {
            return 0;
        }
        let cost = |c: usize| self.cost[c].unwrap_or(usize::MAX);
        let mut kept: Vec<usize> =
            order.iter().copied().filter(|&c| sel[c] == Sel::Whole && self.rel[c] <= 0.0).collect();
        if kept.is_empty() {
            return 0;
        }
        kept.sort_by_key(|&c| cost(c));
        let mut dropped: Vec<usize> =
            order.iter().copied().filter(|&c| sel[c] == Sel::Dropped && self.cost[c].is_some()).collect();
        dropped.sort_by_key(|&c| std::cmp::Reverse(cost(c)));
        let mut added = 0;
        let mut swaps = 0;
        for d in dropped {
            if room == 0 || swaps >= 64 || kept.is_empty() {
                break;
            }
            let cd = cost(d);
            // The smallest kept member whose swap for `d` still fits and gains something.
            let need = cd.saturating_sub(room);
            let pos = kept.partition_point(|&k| cost(k) < need);
            if pos >= kept.len() || cost(kept[pos]) >= cd {
                continue;
            }
            let k = kept.remove(pos);
            sel[k] = Sel::Dropped;
            sel[d] = Sel::Whole;
            let gain = cd - cost(k);
            room -= gain;
            added += gain;
            swaps += 1;
            let at = kept.partition_point(|&x| cost(x) < cd);
            kept.insert(at, d);
        }
        added
    }

    /// Partial selection of a member whose value is a container; keeps nothing when even
    /// its key and one child cannot fit.
    fn select_member(&mut self, c: usize, share: usize, depth: usize, sel: &mut [Sel]) -> usize {
        let key_cost = self.nodes[c].key.map_or(0, |(s, e)| (self.count)(&self.m[s..e]) + 1);
        if share <= key_cost + 3 {
            return 0;
        }
        let used = key_cost + self.select(c, share - key_cost, depth + 1, sel);
        if !self.nodes[c].children.iter().any(|&g| sel[g] != Sel::Dropped) {
            // An empty container shows nothing from the input but its brackets: drop it.
            clear(self.nodes, c, sel);
            return 0;
        }
        used
    }
}

fn clear(nodes: &[Node], idx: usize, sel: &mut [Sel]) {
    let mut stack = vec![idx];
    while let Some(i) = stack.pop() {
        if sel[i] != Sel::Dropped {
            sel[i] = Sel::Dropped;
            stack.extend(nodes[i].children.iter().copied());
        }
    }
}

/// Renders the selection; `marks`: an array that lost elements says how many.
fn render(m: &str, nodes: &[Node], idx: usize, sel: &[Sel], marks: bool, out: &mut String) {
    let node = &nodes[idx];
    if let Some((s, e)) = node.key {
        out.push_str(&m[s..e]);
        out.push_str(": ");
    }
    match sel[idx] {
        Sel::Dropped => {}
        Sel::Whole => out.push_str(&m[node.start..node.end]),
        Sel::Partial => {
            let (open, close) = if node.kind == Kind::Object { ('{', '}') } else { ('[', ']') };
            out.push(open);
            let mut first = true;
            for &c in &node.children {
                if sel[c] == Sel::Dropped {
                    continue;
                }
                if !first {
                    out.push_str(", ");
                }
                first = false;
                render(m, nodes, c, sel, marks, out);
            }
            // An array that lost elements says how many, as its last element: a list of 30
            // results cut to 8 would otherwise read as 8 results.
            if marks && node.kind == Kind::Array {
                let dropped = node.children.iter().filter(|&&c| sel[c] == Sel::Dropped).count();
                if dropped > 0 {
                    if !first {
                        out.push_str(", ");
                    }
                    let total = node.children.len();
                    out.push_str(&format!("\"\u{2026} {dropped} of {total} items omitted\""));
                }
            }
            out.push(close);
        }
    }
}

/// Compresses a JSON object or array; see the module docs.
pub fn compress_json(text: &str, query: Option<&str>, budget: usize, counter: &dyn Count) -> Option<Packed> {
    let count = &|s: &str| counter.count(s);
    if budget == 0 || !within_reach(text) {
        return None;
    }
    let trimmed = text.trim();
    let m = super::json_syntax::minify(trimmed)?;
    let nodes = parse_spans(&m)?;
    let top: Vec<usize> = nodes.first()?.children.clone();
    let original = count(text);
    if original <= budget {
        return Some(Packed {
            text: text.to_string(),
            retained_indices: (0..top.len()).collect(),
            kept_information: 1.0,
        });
    }
    // Minifying rarely saves more than a third of the tokens: only count the minified text
    // when it may fit (the selection below would find it anyway, only slower).
    let may_fit = budget as f64 >= original as f64 * 0.6;
    let full = if may_fit { count(&m) } else { original };
    if may_fit && full <= budget {
        return Some(Packed { text: m, retained_indices: (0..top.len()).collect(), kept_information: 1.0 });
    }
    let mut q = QueryWords::read(query.unwrap_or(""), &[]);
    q.words.sort();
    let rel = relevance(&m, &nodes, &q);
    let mut ctx = Ctx { m: &m, nodes: &nodes, rel: &rel, count, cost: vec![None; nodes.len()] };

    // The selection works on estimated costs; the real count of the rendered text decides.
    // Scale the internal budget until the rendered text fits and lands close under the budget.
    let mut best: Option<(String, Vec<Sel>, usize)> = None;
    let mut internal = budget;
    let mut fits_at = 0usize; // largest internal budget whose rendering fit
    let mut fails_at = usize::MAX; // smallest internal budget whose rendering did not
    for _ in 0..12 {
        let mut sel = vec![Sel::Dropped; nodes.len()];
        ctx.select(0, internal, 0, &mut sel);
        let mut out = String::new();
        render(&m, &nodes, 0, &sel, true, &mut out);
        let c = count(&out);
        let next = if c <= budget {
            fits_at = internal;
            if best.as_ref().is_none_or(|(_, _, bc)| c > *bc) {
                best = Some((out, sel, c));
            }
            if c * 100 >= budget * 97 || internal > full.saturating_mul(2) {
                break;
            }
            (internal as f64 * budget as f64 / c.max(1) as f64).ceil() as usize
        } else {
            fails_at = internal;
            (internal as f64 * budget as f64 / c as f64 * 0.97) as usize
        };
        // Interpolate, but stay strictly inside the bracket; bisect when that fails.
        internal = if next > fits_at && next < fails_at {
            next
        } else if fails_at == usize::MAX {
            internal.saturating_mul(2).max(internal + 1)
        } else {
            fits_at + (fails_at - fits_at) / 2
        };
        // Whole members make the result a step function: stop when the bracket is tight.
        if fails_at != usize::MAX && fails_at - fits_at <= (budget / 100).max(1) {
            break;
        }
        if internal == 0 {
            break;
        }
    }
    let (out, sel) = match best {
        Some((out, sel, _)) => (out, sel),
        None => {
            // Nothing with content fits: the bare outer brackets, if even they do.
            let mut sel = vec![Sel::Dropped; nodes.len()];
            sel[0] = Sel::Partial;
            let mut out = String::new();
            render(&m, &nodes, 0, &sel, false, &mut out);
            if count(&out) > budget {
                return None;
            }
            (out, sel)
        }
    };
    let retained_indices: Vec<usize> =
        top.iter().enumerate().filter(|(_, c)| sel[**c] != Sel::Dropped).map(|(i, _)| i).collect();
    let kept_information = (out.len() as f64 / m.len().max(1) as f64).min(1.0);
    let kept_information = if kept_information >= 1.0 { 0.999 } else { kept_information };
    Some(Packed { text: out, retained_indices, kept_information })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn approx(s: &str) -> usize {
        s.len().div_ceil(4)
    }

    fn uuid(i: u64) -> String {
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF_CAFE_F00D;
        let g = h.rotate_left(17).wrapping_mul(31);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            h & 0xffff,
            g & 0xfff,
            (g >> 12) & 0xfff,
            (g >> 24) & 0xffff_ffff_ffff
        )
    }

    fn kv75() -> (String, Vec<(String, String)>) {
        let pairs: Vec<(String, String)> = (0..75).map(|i| (uuid(2 * i), uuid(2 * i + 1))).collect();
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!(" \"{k}\": \"{v}\"")).collect();
        (format!("{{\n{}\n}}", body.join(",\n")), pairs)
    }

    #[test]
    fn kv75_queried_member_survives_at_every_ratio_and_output_parses() {
        let (doc, pairs) = kv75();
        let n = approx(&doc);
        for (i, (k, v)) in pairs.iter().enumerate().step_by(7) {
            let query = format!("What is the value associated with key \"{k}\"?");
            for ratio in [0.5, 0.25, 0.1] {
                let budget = (n as f64 * ratio) as usize;
                let p = compress_json(&doc, Some(&query), budget, &approx).unwrap();
                assert!(approx(&p.text) <= budget, "over budget");
                let parsed: serde_json::Value = serde_json::from_str(&p.text).unwrap();
                assert_eq!(parsed[k.as_str()], serde_json::Value::String(v.clone()));
                assert!(p.retained_indices.contains(&i));
                assert!(approx(&p.text) * 100 >= budget * 90, "far under budget");
            }
        }
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        let at_limit = format!("[{}{}, 1]", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(serde_json::from_str::<serde_json::Value>(&at_limit).is_ok());
        assert!(compress_json(&at_limit, None, 1, &approx).is_some());
        let over = format!("[{}{}]", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(serde_json::from_str::<serde_json::Value>(&over).is_err());
        assert!(compress_json(&over, None, 1, &approx).is_none());
    }

    #[test]
    fn deeply_nested_json_is_refused_without_panic() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(compress_json(&deep, None, 10, &approx).is_none());
        let deep_obj = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
        assert!(compress_json(&deep_obj, Some("a"), 10, &approx).is_none());
    }

    #[test]
    fn records_are_kept_whole_from_the_first_without_stubs() {
        // Search results of one shape: without a query, whole results from the first, in
        // order; never a cut record such as `{"rank": 18}` that reads like one more result.
        let results: Vec<serde_json::Value> = (1..=25)
            .map(|i| {
                serde_json::json!({
                    "rank": i,
                    "title": format!("Result {i}: notes on topic number {i}"),
                    "url": format!("https://example.com/docs/{i}"),
                    "snippet": format!("This page explains how feature {i} behaves in production, with caveats ({}).", "x".repeat(i % 7 * 9)),
                    "score": 1.0 / i as f64,
                })
            })
            .collect();
        let original = serde_json::json!({ "query": "eviction", "total": 25, "results": results });
        let doc = serde_json::to_string_pretty(&original).unwrap();
        for div in [2, 4, 10] {
            let budget = approx(&doc) / div;
            let p = compress_json(&doc, None, budget, &approx).unwrap();
            assert!(approx(&p.text) <= budget);
            let v: serde_json::Value = serde_json::from_str(&p.text).unwrap();
            let (marker, kept) = v["results"].as_array().unwrap().split_last().unwrap();
            assert!(!kept.is_empty(), "{}", p.text);
            // The array says how many of its results it lost, as its last element.
            assert_eq!(marker, &format!("\u{2026} {} of 25 items omitted", 25 - kept.len()), "{}", p.text);
            let mut previous = 0;
            for r in kept {
                let rank = r["rank"].as_u64().unwrap() as usize;
                let whole =
                    r.as_object().unwrap().len() == 5 && r["snippet"] == original["results"][rank - 1]["snippet"];
                assert!(
                    whole && rank > previous,
                    "1/{div}: result {rank} is not the input's, whole, in order:\n{}",
                    p.text
                );
                previous = rank;
            }
            assert_eq!(kept[0]["rank"], 1, "{}", p.text);
        }
        // A query that every result matches by a key (`score`) and one by its title: whole
        // results still, no `{"score": 0.05}` cut out of the others.
        let budget = approx(&doc) / 10;
        let p = compress_json(&doc, Some("what score did result 17 get"), budget, &approx).unwrap();
        let v: serde_json::Value = serde_json::from_str(&p.text).unwrap();
        let kept: Vec<&serde_json::Value> = v["results"].as_array().unwrap().iter().filter(|r| r.is_object()).collect();
        assert!(kept.iter().any(|r| r["rank"] == 17), "{}", p.text);
        assert!(kept.iter().all(|r| r.as_object().unwrap().len() == 5), "{}", p.text);
    }

    #[test]
    fn array_of_objects_at_4x_parses_and_fits() {
        let items: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    "  {{\"id\": {i}, \"name\": \"item number {i}\", \"tags\": [\"a{i}\", \"b\"], \"price\": {}.{:02}}}",
                    i * 3,
                    i % 100
                )
            })
            .collect();
        let doc = format!("[\n{}\n]", items.join(",\n"));
        let n = approx(&doc);
        let budget = n / 4;
        let p = compress_json(&doc, None, budget, &approx).unwrap();
        assert!(approx(&p.text) <= budget);
        assert!(approx(&p.text) * 100 >= budget * 95);
        let v: serde_json::Value = serde_json::from_str(&p.text).unwrap();
        assert_eq!(v[0]["name"], "item number 0");
        assert_eq!(p.retained_indices[0], 0);
        assert!(p.kept_information > 0.0 && p.kept_information < 1.0);
    }

    #[test]
    fn query_finds_nested_element() {
        let items: Vec<String> =
            (0..300).map(|i| format!("{{\"user\": \"user{i}\", \"city\": \"town{i}\"}}")).collect();
        let doc = format!("{{\"meta\": {{\"count\": 300}}, \"users\": [{}]}}", items.join(", "));
        let budget = approx(&doc) / 10;
        let p = compress_json(&doc, Some("Which city does user217 live in?"), budget, &approx).unwrap();
        assert!(p.text.contains("\"town217\""), "{}", p.text);
        assert!(approx(&p.text) <= budget);
        serde_json::from_str::<serde_json::Value>(&p.text).unwrap();
    }

    #[test]
    fn fitting_input_is_unchanged_and_non_json_is_refused() {
        let doc = "{ \"a\": 1 }";
        let p = compress_json(doc, None, 100, &approx).unwrap();
        assert_eq!(p.text, doc);
        assert_eq!(p.kept_information, 1.0);
        assert!(compress_json("hello", None, 100, &approx).is_none());
        assert!(compress_json("{\"a\": }", None, 100, &approx).is_none());
        assert!(compress_json("42", None, 100, &approx).is_none());
    }

    #[test]
    fn minified_when_that_is_enough() {
        let doc = "{\n    \"alpha\": 1,\n    \"beta\": [1, 2, 3]\n}";
        let budget = approx("{\"alpha\": 1, \"beta\": [1, 2, 3]}");
        let p = compress_json(doc, None, budget, &approx).unwrap();
        assert_eq!(p.text, "{\"alpha\": 1, \"beta\": [1, 2, 3]}");
        assert_eq!(p.kept_information, 1.0);
    }

    #[test]
    fn strings_are_never_cut() {
        let long = "x".repeat(4000);
        let doc = format!("{{\"small\": \"s\", \"big\": \"{long}\"}}");
        let p = compress_json(&doc, None, 100, &approx).unwrap();
        assert_eq!(p.text, "{\"small\": \"s\"}");
    }

    const CONTAINER_OPENERS: [char; 2] = ['{', '['];

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::Value::Number(n.into())),
            "\\PC{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                prop::collection::vec(("\\PC{0,6}", inner), 0..8)
                    .prop_map(|kv| { serde_json::Value::Object(kv.into_iter().collect()) }),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_json_output_parses_and_fits(v in json_value(), frac in 0.05f64..1.2, pretty in any::<bool>()) {
            let doc = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let budget = ((approx(&doc) as f64) * frac) as usize;
            if let Some(p) = compress_json(&doc, Some("abc 12"), budget, &approx) {
                prop_assert!(approx(&p.text) <= budget);
                prop_assert!(!p.text.is_empty());
                let parsed = serde_json::from_str::<serde_json::Value>(&p.text);
                prop_assert!(parsed.is_ok(), "{}", p.text);
                prop_assert!(p.retained_indices.windows(2).all(|w| w[0] < w[1]));
                prop_assert!((0.0..=1.0).contains(&p.kept_information));
            } else {
                // Only refused when not a container or nothing fits.
                prop_assert!(budget == 0 || !doc.trim_start().starts_with(CONTAINER_OPENERS));
            }
        }
    }
}
