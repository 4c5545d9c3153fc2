//! The structure measures of `shared/spec/EVAL.md` for chat, code and markdown, beside the
//! baselines EVAL.md names for each kind, at the same exact budgets (cl100k).
//!
//! Items are lines of `chat-dev.jsonl` (`kind: "irc"` or `"transcript"`), `code-dev.jsonl` or
//! `markdown-dev.jsonl` (`path` names the file, relative to the JSONL file's folder). Each is
//! compressed at every ratio with its query (`q`) and without (`n`); baselines run once (`-`
//! when they ignore the query).
//!
//! - **IRC**: `root` (the opening question's line kept), `reply` (a direct reply's line kept),
//!   `thread` (share of the thread's other lines kept), `intact` (share of output lines that are
//!   input lines). Baselines: `head`, `tail` (whole lines from the end), `bm25-lines`.
//! - **Transcripts**: `labels` (every output turn has its `Human:`/`Assistant:` label), `last`
//!   (the most recent turn kept whole), `verbatim` (share of output turns that are a piece of a
//!   turn of that speaker). Baselines: `head`, `tail` (whole turns from the end).
//! - **Code**: `parse` (tree-sitter finds no error, for inputs that have none), `sig` (the queried
//!   definition's first line kept), `body` (the whole definition kept), `fill` (output tokens /
//!   budget). Baseline: `head`.
//! - **Messages** (`chat-messages-dev.jsonl`: a `messages` array, the query apart): `roles` (every
//!   kept message keeps its role), `last` (the most recent message kept whole), `last_user` (the
//!   last user message kept whole), `verbatim` (share of kept messages that are a piece of their
//!   message), `fill`; tokens are the contents'. Baselines: `head`, `tail` (whole messages).
//! - **Markdown**: `fences` (code fences balanced), `heads` (every output heading is an input
//!   heading, in order), `section` (the queried section's heading kept), `sec_lines` (share of its
//!   non-blank lines kept), `fill`. Baseline: `head`.
//!
//! I/O only in [`load`].

use std::collections::HashSet;
use std::path::Path;

use super::baselines::{bm25, head, ntok};
use crate::compress::chat::{ChatMessage, Keep, compress_messages};
use crate::compress::code::{Lang, parses_cleanly};
use crate::compress::{Budget, CompressRequest, compress};
use crate::tokens::Encoding;

/// One item of a structure file, with what its measures need.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub query: String,
    pub context: String,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Irc {
        root: String,
        replies: Vec<String>,
        thread: Vec<String>,
    },
    Transcript {
        turns: Vec<(String, String)>,
    },
    Code {
        lang: Option<Lang>,
        definition: String,
    },
    Markdown {
        heading: String,
        section: Vec<String>,
    },
    /// An OpenAI-style `messages` array: `(role, content)`, oldest first.
    Messages {
        messages: Vec<(String, String)>,
    },
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Irc { .. } => "irc",
            Kind::Transcript { .. } => "transcript",
            Kind::Code { .. } => "code",
            Kind::Markdown { .. } => "markdown",
            Kind::Messages { .. } => "messages",
        }
    }
    fn measures(&self) -> &'static [&'static str] {
        match self {
            Kind::Irc { .. } => &["root", "reply", "thread", "intact", "fill"],
            Kind::Transcript { .. } => &["labels", "last", "verbatim", "fill"],
            Kind::Code { .. } => &["parse", "sig", "body", "fill"],
            Kind::Markdown { .. } => &["fences", "heads", "section", "sec_lines", "fill"],
            Kind::Messages { .. } => &["roles", "last", "last_user", "verbatim", "fill"],
        }
    }
    fn baselines(&self) -> &'static [&'static str] {
        match self {
            Kind::Irc { .. } => &["head", "tail", "bm25-lines"],
            Kind::Transcript { .. } | Kind::Messages { .. } => &["head", "tail"],
            _ => &["head"],
        }
    }
}

fn lines_of(text: &str, from: usize, count: usize) -> Vec<&str> {
    text.split('\n').skip(from).take(count).collect()
}

/// Reads a structure file: chat items as they are, code and markdown items with their file.
/// `None` for a file of plain QA items (no `kind`, `language` or `section_lines`).
pub fn load(path: &Path) -> Result<Option<Vec<Item>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| format!("{}:{}: {e}", path.display(), n + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(&e))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let strings = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(|x| x.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let number = |x: &serde_json::Value| x.as_u64().unwrap_or(0) as usize;
        if let Some(array) = v.get("messages").and_then(|m| m.as_array()) {
            let messages: Vec<(String, String)> = array
                .iter()
                .filter_map(|m| Some((m.get("role")?.as_str()?.to_string(), m.get("content")?.as_str()?.to_string())))
                .collect();
            let context = messages.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>().join("\n\n");
            items.push(Item { id: s("id"), query: s("query"), context, kind: Kind::Messages { messages } });
            continue;
        }
        let kind = match v.get("kind").and_then(|k| k.as_str()) {
            Some("irc") => Kind::Irc { root: s("root"), replies: strings("replies"), thread: strings("thread") },
            Some("transcript") => Kind::Transcript {
                turns: v
                    .get("turns")
                    .and_then(|t| t.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| Some((t.get(0)?.as_str()?.to_string(), t.get(1)?.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            _ if v.get("def_line").is_some() || v.get("section_lines").is_some() => {
                let file = dir.join(s("path"));
                let source = std::fs::read_to_string(&file).map_err(|e| at(&format!("{}: {e}", file.display())))?;
                let kind = if let Some(first) = v.get("def_line") {
                    let (first, count) = (number(first), v.get("def_lines").map_or(0, number));
                    let lang = match s("language").as_str() {
                        "rust" => Some(Lang::Rust),
                        "python" => Some(Lang::Python),
                        "go" => Some(Lang::Go),
                        "typescript" => Some(Lang::TypeScript),
                        "javascript" => Some(Lang::JavaScript),
                        _ => None,
                    };
                    let definition = lines_of(&source, first.saturating_sub(1), count).join("\n");
                    Kind::Code { lang, definition }
                } else {
                    let range: Vec<usize> =
                        v["section_lines"].as_array().map_or(vec![], |a| a.iter().map(number).collect());
                    let (a, b) = (range.first().copied().unwrap_or(1), range.get(1).copied().unwrap_or(1));
                    let all = lines_of(&source, a.saturating_sub(1), b.saturating_sub(a));
                    let heading = all.first().map_or(String::new(), |h| h.trim().to_string());
                    let section = all.iter().skip(1).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
                    Kind::Markdown { heading, section }
                };
                items.push(Item { id: s("id"), query: s("query"), context: source, kind });
                continue;
            }
            _ => return Ok(None),
        };
        items.push(Item { id: s("id"), query: s("query"), context: s("context"), kind });
    }
    Ok(Some(items))
}

/// Whole lines from the end while they fit.
fn tail_lines(text: &str, budget: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut k = 0;
    while k < lines.len() && ntok(&lines[lines.len() - k - 1..].join("\n")) <= budget {
        k += 1;
    }
    lines[lines.len() - k..].join("\n")
}

/// Whole `Speaker: text` turns from the end while they fit.
fn tail_turns(turns: &[(String, String)], budget: usize) -> String {
    let render = |ts: &[(String, String)]| ts.iter().map(|(s, t)| format!("{s}: {t}")).collect::<Vec<_>>().join("\n\n");
    let mut k = 0;
    while k < turns.len() && ntok(&render(&turns[turns.len() - k - 1..])) <= budget {
        k += 1;
    }
    render(&turns[turns.len() - k..])
}

/// Non-blank lines by BM25 with the query, best first while they fit, in input order.
fn bm25_lines(text: &str, query: &str, budget: usize) -> String {
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    let scores = bm25(&lines, query);
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let (mut keep, mut used) = (vec![false; lines.len()], 0);
    for i in order {
        let t = ntok(lines[i]) + 1;
        if used + t <= budget {
            keep[i] = true;
            used += t;
        }
    }
    let out: Vec<&str> = (0..lines.len()).filter(|&i| keep[i]).map(|i| lines[i]).collect();
    out.join("\n")
}

/// `(speaker, text)` of a `Human: … / Assistant: …` text; `None` for text before any label.
fn split_turns(text: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut cur: (Option<String>, String) = (None, String::new());
    for (i, block) in text.split("\n\n").enumerate() {
        let label = ["Human: ", "Assistant: "]
            .iter()
            .find(|l| block.starts_with(**l) || (i == 0 && block.starts_with(l.trim_end())));
        match label {
            Some(l) => {
                if cur.0.is_some() || !cur.1.trim().is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let name = l.trim_end().trim_end_matches(':').to_string();
                cur = (Some(name), block[l.len().min(block.len())..].trim().to_string());
            }
            None => {
                if !cur.1.is_empty() {
                    cur.1.push_str("\n\n");
                }
                cur.1.push_str(block);
            }
        }
    }
    if cur.0.is_some() || !cur.1.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_fence(l: &str) -> bool {
    let t = l.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

fn is_heading(l: &str) -> bool {
    let t = l.trim_start();
    let hashes = t.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes) && t[hashes..].starts_with(' ')
}

/// The measures of one output, each in [0, 1] (`None` when it does not apply).
fn measure(item: &Item, text: &str, budget: usize) -> Vec<Option<f64>> {
    let b = |x: bool| Some(if x { 1.0 } else { 0.0 });
    let fill = Some(ntok(text) as f64 / budget.max(1) as f64);
    let out_lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    match &item.kind {
        Kind::Irc { root, replies, thread } => {
            let set: HashSet<&str> = out_lines.iter().copied().collect();
            let input: HashSet<&str> = item.context.split('\n').collect();
            let kept = thread.iter().filter(|l| set.contains(l.as_str())).count();
            let intact = out_lines.iter().filter(|l| input.contains(*l)).count();
            vec![
                b(set.contains(root.as_str())),
                b(replies.iter().any(|r| set.contains(r.as_str()))),
                Some(kept as f64 / thread.len().max(1) as f64),
                Some(intact as f64 / out_lines.len().max(1) as f64),
                fill,
            ]
        }
        Kind::Transcript { turns } => {
            let out = split_turns(text);
            let labels = !out.is_empty() && out.iter().all(|(s, _)| s.is_some());
            let last =
                turns.last().is_some_and(|(s, t)| out.iter().any(|(s2, t2)| s2.as_deref() == Some(s) && t2 == t));
            let verbatim = out
                .iter()
                .filter(|(s, t)| {
                    turns.iter().any(|(s2, t2)| s.as_deref() == Some(s2) && squash(t2).contains(&squash(t)))
                })
                .count();
            vec![b(labels), b(last), Some(verbatim as f64 / out.len().max(1) as f64), fill]
        }
        Kind::Code { lang, definition } => {
            let parse = lang
                .filter(|l| parses_cleanly(*l, &item.context))
                .map(|l| if parses_cleanly(l, text) { 1.0 } else { 0.0 });
            let first = definition.lines().next().unwrap_or("").trim();
            let sig = out_lines.iter().any(|l| l.trim() == first);
            let body = squash(text).contains(&squash(definition));
            vec![parse, b(sig), b(body), fill]
        }
        Kind::Messages { .. } => unreachable!("a messages output is measured by measure_messages"),
        Kind::Markdown { heading, section } => {
            let mut open = false;
            for l in text.split('\n') {
                open ^= is_fence(l);
            }
            let input_heads: Vec<&str> = item.context.split('\n').filter(|l| is_heading(l)).collect();
            let mut at = 0;
            let heads_ok = text.split('\n').filter(|l| is_heading(l)).all(|h| {
                match input_heads[at..].iter().position(|x| *x == h) {
                    Some(p) => {
                        at += p + 1;
                        true
                    }
                    None => false,
                }
            });
            let set: HashSet<&str> = out_lines.iter().map(|l| l.trim()).collect();
            let kept = section.iter().filter(|l| set.contains(l.as_str())).count();
            vec![
                b(!open),
                b(heads_ok),
                b(set.contains(heading.as_str())),
                Some(kept as f64 / section.len().max(1) as f64),
                fill,
            ]
        }
    }
}

/// `roles` (every kept message keeps its role), `last` (the most recent message kept whole),
/// `last_user` (the last user message kept whole), `verbatim` (share of kept messages that are
/// a piece of their input message), `fill` (content tokens over the budget).
fn measure_messages(
    messages: &[(String, String)],
    kept: &[(usize, String, String)],
    budget: usize,
) -> Vec<Option<f64>> {
    let b = |x: bool| Some(if x { 1.0 } else { 0.0 });
    let whole = |i: usize| kept.iter().any(|(k, _, c)| *k == i && *c == messages[i].1);
    let last_user = messages.iter().rposition(|(r, _)| r == "user");
    let roles = kept.iter().all(|(i, r, _)| *r == messages[*i].0);
    let verbatim = kept.iter().filter(|(i, _, c)| squash(&messages[*i].1).contains(&squash(c))).count();
    let tokens: usize = kept.iter().map(|(_, _, c)| ntok(c)).sum();
    vec![
        b(roles && !kept.is_empty()),
        b(!messages.is_empty() && whole(messages.len() - 1)),
        last_user.map(|i| if whole(i) { 1.0 } else { 0.0 }),
        Some(verbatim as f64 / kept.len().max(1) as f64),
        Some(tokens as f64 / budget.max(1) as f64),
    ]
}

/// Whole messages from the end (`tail`) or the start (`head`) while their contents fit.
fn whole_messages(messages: &[(String, String)], budget: usize, from_end: bool) -> Vec<(usize, String, String)> {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    if from_end {
        order.reverse();
    }
    let mut used = 0;
    let mut kept = Vec::new();
    for i in order {
        let t = ntok(&messages[i].1);
        if used + t > budget {
            break;
        }
        used += t;
        kept.push((i, messages[i].0.clone(), messages[i].1.clone()));
    }
    kept.sort_by_key(|k| k.0);
    kept
}

/// One row of the report: a method at a ratio, the mean of each measure in percent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub kind: &'static str,
    /// The compression factor (original / output tokens), the report's `ratio`.
    #[serde(rename = "ratio")]
    pub factor: f64,
    /// `q` (with the query), `n` (without), `-` (a baseline that ignores it).
    pub mode: &'static str,
    pub method: &'static str,
    pub items: usize,
    pub measures: Vec<(&'static str, Option<f64>)>,
}

/// Runs every item at every ratio, ours with and without the query and the kind's baselines.
pub fn run(items: &[Item], factors: &[f64], on_item_done: &mut dyn FnMut()) -> Vec<Row> {
    // (kind, ratio index, mode, method) -> sums and counts per measure.
    type Key = (&'static str, usize, &'static str, &'static str);
    /// Per measure: the sum of its values and how many items had one.
    type Sums = Vec<(f64, usize)>;
    let mut acc: Vec<(Key, Sums, usize)> = Vec::new();
    let mut add = |key: Key, values: Vec<Option<f64>>| {
        let slot = match acc.iter().position(|(k, _, _)| *k == key) {
            Some(p) => p,
            None => {
                acc.push((key, vec![(0.0, 0); values.len()], 0));
                acc.len() - 1
            }
        };
        let (_, sums, n) = &mut acc[slot];
        *n += 1;
        for (s, v) in sums.iter_mut().zip(values) {
            if let Some(v) = v {
                s.0 += v;
                s.1 += 1;
            }
        }
    };
    for item in items {
        let original = ntok(&item.context);
        for (ri, &factor) in factors.iter().enumerate() {
            let target = 1.0 - 1.0 / factor;
            let budget = crate::compress::budget_tokens(Budget::Ratio(target), original);
            let kind = item.kind.name();
            if let Kind::Messages { messages } = &item.kind {
                let msgs: Vec<ChatMessage<'_>> =
                    messages.iter().map(|(r, c)| ChatMessage { role: r, content: c }).collect();
                for (mode, query) in [("q", Some(item.query.as_str())), ("n", None)] {
                    let out = compress_messages(&msgs, query, Budget::Ratio(target), Keep::default(), Encoding::Cl100k);
                    add((kind, ri, mode, "ours"), measure_messages(messages, &out.messages, budget));
                }
                for (name, from_end) in [("head", false), ("tail", true)] {
                    let kept = whole_messages(messages, budget, from_end);
                    add((kind, ri, "-", name), measure_messages(messages, &kept, budget));
                }
                continue;
            }
            for (mode, query) in [("q", Some(item.query.as_str())), ("n", None)] {
                let req = CompressRequest {
                    context: &item.context,
                    query,
                    budget: Budget::Ratio(target),
                    granularity: Default::default(),
                };
                let out = compress(&req, Encoding::Cl100k);
                add((kind, ri, mode, "ours"), measure(item, &out.text, budget));
            }
            for &name in item.kind.baselines() {
                let (mode, text) = match (name, &item.kind) {
                    ("tail", Kind::Transcript { turns }) => ("-", tail_turns(turns, budget)),
                    ("tail", _) => ("-", tail_lines(&item.context, budget)),
                    ("bm25-lines", _) => ("q", bm25_lines(&item.context, &item.query, budget)),
                    _ => ("-", head(&item.context, budget)),
                };
                add((kind, ri, mode, name), measure(item, &text, budget));
            }
        }
        on_item_done();
    }
    let mut rows: Vec<Row> = acc
        .into_iter()
        .map(|((kind, ri, mode, method), sums, n)| {
            let names = items.iter().find(|i| i.kind.name() == kind).map_or(&[][..], |i| i.kind.measures());
            Row {
                kind,
                factor: factors[ri],
                mode,
                method,
                items: n,
                measures: names
                    .iter()
                    .zip(sums)
                    .map(|(&m, (s, k))| (m, (k > 0).then(|| 100.0 * s / k as f64)))
                    .collect(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.kind, a.factor, a.method != "ours", a.mode != "q")
            .partial_cmp(&(b.kind, b.factor, b.method != "ours", b.mode != "q"))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows
}

/// The rows as one table per kind.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut kind = "";
    for r in rows {
        if r.kind != kind {
            kind = r.kind;
            out.push_str(&format!("\n{kind}\n ratio  mode  method        items"));
            for (m, _) in &r.measures {
                out.push_str(&format!("{m:>10}"));
            }
            out.push('\n');
        }
        out.push_str(&format!("{:>5}x  {:<4}  {:<12}{:>6}", r.factor, r.mode, r.method, r.items));
        for (_, v) in &r.measures {
            match v {
                Some(v) => out.push_str(&format!("{v:>9.1}%")),
                None => out.push_str(&format!("{:>10}", "-")),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_split_into_labelled_turns() {
        let t = "Human: hi\n\nthere\n\nAssistant: hello";
        assert_eq!(
            split_turns(t),
            vec![(Some("Human".into()), "hi\n\nthere".into()), (Some("Assistant".into()), "hello".into())]
        );
        assert_eq!(split_turns("orphan\n\nHuman: x")[0].0, None);
    }

    #[test]
    fn messages_items_are_measured_beside_whole_messages_from_the_end() {
        let dir = std::env::temp_dir().join(format!("om-eval-messages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let long = "The deploy failed on staging because the migration timed out after ninety seconds. ".repeat(6);
        let line = serde_json::json!({
            "id": "m1",
            "query": "what failed?",
            "messages": [
                {"role": "user", "content": "Why is staging red?"},
                {"role": "assistant", "content": long},
                {"role": "user", "content": "Can we raise the timeout?"},
                {"role": "assistant", "content": "Yes, to 120 seconds."}
            ]
        });
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let items = load(&path).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(&items[0].kind, Kind::Messages { messages } if messages.len() == 4));
        let rows = run(&items, &[2.0], &mut || {});
        let row = |method: &str, mode: &str| rows.iter().find(|r| r.method == method && r.mode == mode).unwrap();
        let value = |r: &Row, m: &str| r.measures.iter().find(|x| x.0 == m).unwrap().1.unwrap();
        // Ours keeps roles, the last user message and the last message whole.
        for mode in ["q", "n"] {
            let ours = row("ours", mode);
            assert_eq!(value(ours, "roles"), 100.0);
            assert_eq!(value(ours, "last_user"), 100.0);
            assert_eq!(value(ours, "last"), 100.0);
            assert_eq!(value(ours, "verbatim"), 100.0);
        }
        // Head truncation by whole messages never reaches the last one at 2x.
        assert_eq!(value(row("head", "-"), "last"), 0.0);
        assert!(render(&rows).contains("messages"));
    }

    #[test]
    fn irc_measures_see_the_thread() {
        let ctx = "[01:00] <a> how do i mount a usb disk?\n[01:01] <b> a: use pmount\n[01:02] <c> hi all\n[01:03] <a> b: thanks";
        let item = Item {
            id: "x".into(),
            query: "how do i mount a usb disk?".into(),
            context: ctx.into(),
            kind: Kind::Irc {
                root: "[01:00] <a> how do i mount a usb disk?".into(),
                replies: vec!["[01:01] <b> a: use pmount".into()],
                thread: vec!["[01:01] <b> a: use pmount".into(), "[01:03] <a> b: thanks".into()],
            },
        };
        let rows = run(std::slice::from_ref(&item), &[1.3], &mut || {});
        let ours = rows.iter().find(|r| r.method == "ours" && r.mode == "q").unwrap();
        assert_eq!(ours.measures[0], ("root", Some(100.0)));
        let m = measure(&item, "[01:02] <c> hi all", 20);
        assert_eq!(&m[..2], &[Some(0.0), Some(0.0)]);
    }
}
