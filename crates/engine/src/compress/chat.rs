//! Conversations: chat logs, transcripts and `messages` arrays, compressed turn by turn.
//!
//! **Turns.** A chat is recognised by the shape of its lines ([`parse`]), in one of four
//! styles, the most common in the text winning:
//! - IRC: `[hh:mm] <nick> text`, `hh:mm <nick> text` or `<nick> text`; status lines
//!   (`=== nick has joined`, `* nick waves`, `-!- …`) are turns without a speaker;
//! - role labels: `User:`, `Assistant:`, `Human:`, `System:`, `AI:` … (also `[user]`,
//!   `**User:**`, `### Assistant`, and a chat app's copy, `You said:` / `ChatGPT said:`);
//! - names: `nick: text`, or a name of up to three words, the later ones capitalised or
//!   numbers (`John Smith:`, `Speaker 2:`), when at least two names each start two lines, such
//!   lines are at least half of the text, their messages average three words or more and the
//!   text does not open with a role label (a transcript's `Topic: …` lists stay in their turn);
//!   `key: value` lines do not count, and level words such as `INFO` are never names. A leading
//!   timestamp is skipped, bracketed or bare, with a date and a ` - ` (WhatsApp's
//!   `12/03/2024, 09:05 - Name: text`), except a bare one to the second with a date or a
//!   separator, which is a log's;
//! - stamped headers: a name and a time alone on a line (`Alice Smith  9:05 AM`,
//!   `Alice — Today at 9:05 AM`, `[9:05 AM] Alice`, a meeting transcript's
//!   `Speaker 1 (00:01:23):`), the message on the lines below, when at least two speakers have
//!   three headers between them.
//!
//! A turn runs from its label to the next label (the lines between, blank lines included,
//! belong to it), so a kept turn always carries its speaker.
//!
//! **What stays, in order:** the most recent turn, whole, whenever it fits; with a query, the
//! turn that *is* the query (the same words, or nearly); then the other turns by a score that
//! adds the query's BM25 over the turn (scaled to the best turn), the thread of the query's
//! turn (in IRC: its author's other messages and messages addressed to or by its author, more
//! the closer they are) and recency; without a query, recency and the turn's information.
//! Status lines come last. When the most recent turn alone is larger than the budget, its best
//! run of whole sentences that fits is kept, with its label, and the whole turns that still fit
//! beside it, in priority order (a run cut short by a long quotation leaves room for the question
//! it answers). When no sentence fits with its label, the label and the turn's opening words,
//! followed by ` …`.
//!
//! **Output:** the kept turns in input order, byte-exact, joined by the input's own separator
//! between turns (a newline, or a blank line in transcripts). A turn is kept whole, or (the most
//! recent one, or one that fills the last of the budget) as its label and one contiguous run of
//! its sentences (or of its opening words, then ` …`: the only text added). Dropped turns
//! leave no marker: every kept line stays an original line.
//!
//! [`compress_messages`] applies the same selection to an OpenAI-style `messages` array: roles
//! are untouched, the system message and the last user message are kept whole unless the
//! request says otherwise, and tokens are counted over the message contents.
//!
//! Not here: detection of other kinds, I/O.

use super::Packed;
use super::detect::LEVELS;
use super::rank::{Analysis, bm25, qtf, query_terms};
use super::segment::{SegKind, Segment, split_sentences};
use super::units::{Count, fit_units};
use crate::tokens::{Encoding, PieceCounter};

/// Role words that label a turn whatever else the text holds.
const ROLES: &[&str] = &[
    "user",
    "assistant",
    "human",
    "ai",
    "system",
    "bot",
    "model",
    "gpt",
    "chatgpt",
    "claude",
    "gemini",
    "copilot",
    "customer",
    "agent",
    "support",
    "me",
    "you",
    "q",
    "a",
    "interviewer",
    "interviewee",
    "tool",
    "function",
    "developer",
];

/// Words that start prose labels (`Note: …`) or `key: value` lines, never a speaker (nor are
/// log levels such as `INFO`, see [`detect::LEVELS`](super::detect)).
const NOT_NAMES: &[&str] = &[
    "note",
    "example",
    "http",
    "https",
    "ftp",
    "file",
    "todo",
    "fixme",
    "step",
    "usage",
    "returns",
    "args",
    "see",
    "tip",
    "hint",
    "default",
    "type",
    "name",
    "id",
    "version",
    "description",
    "title",
    "date",
    "time",
    "status",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Irc,
    Role,
    Name,
    /// A name and a time alone on a line, the message below ([`stamped_header`]).
    Stamped,
}

/// One turn of a conversation, as byte offsets into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Turn {
    /// Start of the turn's first line (its label included).
    pub start: usize,
    /// Start of the message text, after the label.
    pub body: usize,
    /// End of the turn, trailing white space excluded.
    pub end: usize,
    /// The speaker's name, when the turn has one.
    pub speaker: Option<(usize, usize)>,
    /// A status line (joins, parts, actions) rather than a message.
    pub status: bool,
}

/// What a line's label says: the speaker's range and where the message starts (offsets in
/// the line), or a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Speaker { style: Style, name: (usize, usize), body: usize },
    Status,
}

/// Skips a leading timestamp and the separator after it; returns the offset after them (0 when
/// there is none). Bracketed: `[12:34]`, `[2024-05-01 12:34:56]`, `[12/03/2024, 9:05 AM]`; bare:
/// `12:34`, `12/03/2024, 09:05 -` (WhatsApp's export), `2024-05-01 12:34:56`, `9:05 PM |`.
fn skip_timestamp(line: &str) -> usize {
    let b = line.as_bytes();
    let stamp_char = |c: u8| c.is_ascii_digit() || b":-/.T ,".contains(&c) || b"AaPpMm".contains(&c);
    let after = if b.first() == Some(&b'[') {
        match line.find(']') {
            Some(close)
                if (3..=26).contains(&close)
                    && b[1..close].iter().all(|&c| stamp_char(c))
                    && b[1..close].contains(&b':') =>
            {
                close + 1
            }
            _ => return 0,
        }
    } else {
        let Some((time_end, dated, seconds)) = bare_stamp(b) else { return 0 };
        // A separator after a bare stamp: ` - `, ` – `, ` | `.
        let rest = line[time_end..].trim_start_matches(' ');
        let sep = ["- ", "– ", "| "].iter().find(|s| rest.starts_with(**s)).map_or(0, |s| s.len());
        if sep == 0 && !line[time_end..].starts_with(' ') {
            return 0;
        }
        // `2024-05-01 12:34:56 worker: …`, `12:34:56 - worker: …`: a log's stamp, to the second,
        // with a date or a separator (a chat app's bare stamps stop at the minute).
        if seconds && (dated || sep > 0) {
            return 0;
        }
        line.len() - rest.len() + sep
    };
    after + line[after..].len() - line[after..].trim_start_matches(' ').len()
}

/// The end of a bare `[date[,] ]time[ AM]` at the start of `b`: a date is `d/m/y`, `y-m-d` or
/// `d.m.y`; a time `h:mm` or `hh:mm:ss`, with optional fractions and AM/PM. Also says whether
/// there was a date and whether the time has seconds.
fn bare_stamp(b: &[u8]) -> Option<(usize, bool, bool)> {
    let digits = |i: usize| b[i.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    // The date: three groups of digits joined by one of `/-.`.
    let d1 = digits(0);
    if (1..=4).contains(&d1) && matches!(b.get(d1), Some(b'/' | b'-' | b'.')) {
        let sep = b[d1];
        let d2 = digits(d1 + 1);
        let k = d1 + 1 + d2;
        if (1..=2).contains(&d2) && b.get(k) == Some(&sep) {
            let d3 = digits(k + 1);
            if (1..=4).contains(&d3) {
                i = k + 1 + d3;
                i += usize::from(b.get(i) == Some(&b','));
                if !matches!(b.get(i), Some(b' ' | b'T')) {
                    return None;
                }
                i += 1;
            }
        }
    }
    // The time.
    let h = digits(i);
    if !(1..=2).contains(&h) || b.get(i + h) != Some(&b':') {
        return None;
    }
    let mut j = i + h;
    let mut parts = 0;
    while b.get(j) == Some(&b':') && digits(j + 1) == 2 {
        j += 3;
        parts += 1;
    }
    if parts == 0 {
        return None;
    }
    if matches!(b.get(j), Some(b'.' | b',')) && digits(j + 1) > 0 {
        j += 1 + digits(j + 1);
    }
    let ampm = |k: usize| {
        matches!(b.get(k), Some(b'A' | b'a' | b'P' | b'p'))
            && matches!(b.get(k + 1), Some(b'M' | b'm'))
            && b.get(k + 2).is_none_or(|c| !c.is_ascii_alphanumeric())
    };
    if ampm(j) {
        j += 2;
    } else if b.get(j) == Some(&b' ') && ampm(j + 1) {
        j += 3;
    }
    Some((j, i > 0, parts > 1))
}

/// `Alice Smith  10:42 AM`, `Alice — Today at 10:42`, `[10:42 AM] Alice Smith`: a name and a
/// time alone on a line (how chat apps copy), the message on the lines after. Returns the
/// name's range in `t`.
fn stamped_header(t: &str) -> Option<(usize, usize)> {
    let t = t.trim_end();
    let ts = skip_timestamp(t);
    // A meeting transcript's `Speaker 1 (00:01:23):`, `Alice Smith [1:05:09]`: the time in
    // brackets after the name.
    let core = t.strip_suffix(':').unwrap_or(t).trim_end();
    let bracketed = [('(', ')'), ('[', ']')].iter().find_map(|&(open, close)| {
        let inner = core.strip_suffix(close)?;
        let at = inner.rfind(open)?;
        let stamp = &inner[at + 1..];
        let whole = stamp.starts_with(|c: char| c.is_ascii_digit())
            && bare_stamp(stamp.as_bytes()).map(|s| s.0) == Some(stamp.len());
        (whole && at > 0).then(|| inner[..at].trim_end())
    });
    let (start, name) = if let Some(name) = bracketed {
        (0, name)
    } else if ts > 0 {
        (ts, &t[ts..])
    } else {
        // A time at the end: the name is what comes before it and its separator.
        let b = t.as_bytes();
        let stamp = (0..t.len()).rev().take(24).filter(|&k| t.is_char_boundary(k)).find(|&k| {
            (k == 0 || b[k - 1] == b' ')
                && b[k].is_ascii_digit()
                && bare_stamp(&b[k..]).map(|s| s.0) == Some(t.len() - k)
        })?;
        let mut head = t[..stamp].trim_end();
        for filler in [" at", " Today", " Yesterday", " today", " yesterday"] {
            head = head.strip_suffix(filler).unwrap_or(head).trim_end();
        }
        let head = head.trim_end_matches([' ', '—', '–', '-', '·', '|', ',']);
        (0, head)
    };
    let words: Vec<&str> = name.split_whitespace().collect();
    let word_ok = |w: &&str| {
        w.chars().next().is_some_and(char::is_alphabetic)
            && w.chars().all(|c| c.is_alphanumeric() || "._-'".contains(c))
    };
    // `Speaker 2`: a number after the first word.
    let later_ok = |w: &&str| word_ok(w) || w.bytes().all(|c| c.is_ascii_digit());
    if words.is_empty() || words.len() > 4 || name.len() > 40 || !word_ok(&words[0]) || !words[1..].iter().all(later_ok)
    {
        return None;
    }
    if words.len() == 1 && LEVELS.iter().any(|l| l.eq_ignore_ascii_case(words[0])) {
        return None;
    }
    let lead = name.len() - name.trim_start().len();
    Some((start + lead, start + lead + name.trim().len()))
}

/// HTML elements whose tags open a line (`<li> …`, `<p>`, `<ul>`); without a timestamp before
/// them they are markup, not IRC nicks.
const HTML_ELEMENTS: &[&str] = &[
    "a",
    "article",
    "b",
    "blockquote",
    "body",
    "br",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "span",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "title",
    "tr",
    "u",
    "ul",
];

fn label(line: &str) -> Option<Label> {
    let lead = line.len() - line.trim_start().len();
    let t = &line[lead..];
    let ts = skip_timestamp(t);
    let rest = &t[ts..];
    // IRC: `<nick> text`.
    if let Some(r) = rest.strip_prefix('<')
        && let Some(close) = r.find('>')
        && (1..=32).contains(&close)
        && !r[..close].contains([' ', '<'])
        && r[..close].chars().any(char::is_alphabetic)
        && (r[close + 1..].is_empty() || r[close + 1..].starts_with(' '))
        && !r.starts_with(['/', '!', '?'])
        // `<li> item` is HTML, not a speaker called `li`, unless a timestamp says it is a chat.
        && (ts > 0 || !HTML_ELEMENTS.contains(&r[..close].to_ascii_lowercase().as_str()))
    {
        let name_start = lead + ts + 1;
        let mut body = name_start + close + 1;
        body += line[body..].len() - line[body..].trim_start_matches(' ').len();
        let trimmed_name = r[..close].trim_start_matches(['@', '+', '%', '~', '&']);
        let skipped = close - trimmed_name.len();
        return Some(Label::Speaker { style: Style::Irc, name: (name_start + skipped, name_start + close), body });
    }
    if ts > 0
        && (rest.starts_with("=== ") || rest.starts_with("*** ") || rest.starts_with("-!- ") || rest.starts_with("* "))
    {
        return Some(Label::Status);
    }
    if ts == 0 && (rest.starts_with("=== ") || rest.starts_with("-!- ")) {
        return Some(Label::Status);
    }
    if let Some((a, b)) = stamped_header(t) {
        return Some(Label::Speaker { style: Style::Stamped, name: (lead + a, lead + b), body: line.len() });
    }
    // `[user] text`
    if ts == 0
        && let Some(r) = rest.strip_prefix('[')
        && let Some(close) = r.find(']')
        && ROLES.contains(&r[..close].trim().to_ascii_lowercase().as_str())
    {
        let name_start = lead + 1 + (r.len() - r.trim_start().len());
        let name_end = lead + 1 + r[..close].trim_end().len();
        let mut body = lead + 1 + close + 1;
        body += line[body..].len() - line[body..].trim_start_matches([' ', ':']).len();
        return Some(Label::Speaker { style: Style::Role, name: (name_start, name_end), body });
    }
    // `Name: text`, `**User:**`, `### Assistant`.
    let deco = rest.len() - rest.trim_start_matches(['#', '*', '>', ' ']).len();
    let r = &rest[deco..];
    let word_end = |from: usize| {
        r[from..].find(|c: char| !(c.is_alphanumeric() || "_-.|".contains(c))).map_or(r.len(), |k| from + k)
    };
    let mut end = word_end(0);
    if end == 0 || end > 24 {
        return None;
    }
    // `John Smith: …`, `Dr. Jones: …`, `Speaker 2: …`: up to three words, the later ones
    // capitalised or numbers, when a colon follows them.
    let mut longer = end;
    for _ in 0..2 {
        let Some(next) = r[longer..].strip_prefix(' ') else { break };
        if !next.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit()) {
            break;
        }
        longer = word_end(longer + 1);
        if r[longer..].starts_with(':') && longer <= 32 {
            end = longer;
            break;
        }
    }
    let name = &r[..end];
    let mut after = r[end..].trim_start_matches('*');
    // A chat app's copy: `You said:`, `ChatGPT said:`.
    if let Some(said) = after.strip_prefix(" said")
        && said.starts_with(':')
        && ROLES.contains(&name.to_ascii_lowercase().as_str())
    {
        after = said;
    }
    let heading = rest.starts_with('#') && after.trim().is_empty();
    if !(after.starts_with(':') || heading) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let name_start = lead + ts + deco;
    let mut body = name_start + (r.len() - after.len());
    if after.starts_with(':') {
        body += 1;
        body += line[body..].len() - line[body..].trim_start_matches('*').len();
    }
    body += line[body..].len() - line[body..].trim_start().len();
    // `http://…`, `C:\…`, `key:value`: a label is followed by white space or the line's end.
    let next = line[name_start + (r.len() - after.len()) + 1.min(after.len())..].chars().next();
    if after.starts_with(':') && next.is_some_and(|c| !c.is_whitespace() && c != '*') {
        return None;
    }
    let style = if ROLES.contains(&lower.as_str()) {
        Style::Role
    } else if NOT_NAMES.contains(&lower.as_str())
        || LEVELS.iter().any(|l| l.eq_ignore_ascii_case(name))
        || name.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    } else {
        Style::Name
    };
    Some(Label::Speaker { style, name: (name_start, name_start + end), body })
}

/// Each line of `text` (without its `\r`) with its offset and its label, if any.
fn labelled_lines(text: &str) -> Vec<(usize, &str, Option<Label>)> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        let l = line.strip_suffix('\r').unwrap_or(line);
        lines.push((offset, l, if l.trim().is_empty() { None } else { label(l) }));
        offset += line.len() + 1;
    }
    lines
}

/// The turns of `text` when it reads as a conversation (see the module docs), else `None`.
pub(crate) fn parse(text: &str) -> Option<Vec<Turn>> {
    let lines = labelled_lines(text);
    let style = conversation_style(text, &lines)?;
    let starts_turn = |l: &Option<Label>| match l {
        Some(Label::Speaker { style: s, .. }) => *s == style,
        Some(Label::Status) => style == Style::Irc,
        None => false,
    };
    let mut turns: Vec<Turn> = Vec::new();
    for &(start, line, lab) in &lines {
        let line_end = start + line.trim_end().len();
        if line.trim().is_empty() {
            continue;
        }
        if starts_turn(&lab) {
            let (speaker, body, status) = match lab {
                Some(Label::Speaker { name, body, .. }) => {
                    (Some((start + name.0, start + name.1)), start + body, false)
                }
                _ => (None, start + (line.len() - line.trim_start().len()), true),
            };
            turns.push(Turn {
                start: start + (line.len() - line.trim_start().len()),
                body: body.min(line_end),
                end: line_end,
                speaker,
                status,
            });
        } else if let Some(t) = turns.last_mut() {
            t.end = line_end;
        } else {
            // Text before the first label: a turn without a speaker.
            let s = start + (line.len() - line.trim_start().len());
            turns.push(Turn { start: s, body: s, end: line_end, speaker: None, status: false });
        }
    }
    (turns.len() >= 2).then_some(turns)
}

/// The style of the text's labels when they make it a conversation.
fn conversation_style(text: &str, lines: &[(usize, &str, Option<Label>)]) -> Option<Style> {
    let nonblank = lines.iter().filter(|l| !l.1.trim().is_empty()).count();
    if nonblank < 2 {
        return None;
    }
    let mut names: Vec<(Style, String, usize)> = Vec::new();
    let mut status = 0usize;
    // Words in the messages of `name:` lines: a conversation says things, `key: value` does not.
    let (mut named_words, mut named_lines) = (0usize, 0usize);
    for (start, line, lab) in lines {
        match lab {
            Some(Label::Speaker { style, name, body }) => {
                if *style == Style::Name {
                    named_lines += 1;
                    named_words += line[*body..].split_whitespace().count();
                }
                let n = text[start + name.0..start + name.1].to_lowercase();
                match names.iter_mut().find(|(s, m, _)| s == style && *m == n) {
                    Some(e) => e.2 += 1,
                    None => names.push((*style, n, 1)),
                }
            }
            Some(Label::Status) => status += 1,
            None => {}
        }
    }
    let lines_of = |style: Style, min: usize| -> (usize, usize) {
        let v: Vec<usize> = names.iter().filter(|(s, _, k)| *s == style && *k >= min).map(|e| e.2).collect();
        (v.iter().sum(), v.len())
    };
    let (irc, irc_speakers) = lines_of(Style::Irc, 1);
    let (role, role_speakers) = lines_of(Style::Role, 1);
    let (named, named_speakers) = lines_of(Style::Name, 2);
    let (stamped, stamped_speakers) = lines_of(Style::Stamped, 1);
    let mut best: Option<(Style, usize)> = None;
    let mut consider = |style, n: usize| {
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((style, n));
        }
    };
    if irc >= 2 && irc_speakers >= 2 && (irc + status) * 2 >= nonblank {
        consider(Style::Irc, irc + status);
    }
    let opens_with_role = lines
        .iter()
        .find(|l| !l.1.trim().is_empty())
        .is_some_and(|l| matches!(l.2, Some(Label::Speaker { style: Style::Role, .. })));
    // A transcript that opens with a role label stays one, whatever `Topic: …` lines its
    // answers list.
    let role_transcript = role >= 2 && role_speakers >= 2 && opens_with_role;
    if role >= 2 && role_speakers >= 2 && (role * 10 >= nonblank || opens_with_role) {
        consider(Style::Role, role);
    }
    if named >= 4 && named_speakers >= 2 && named * 2 >= nonblank && named_words >= 3 * named_lines && !role_transcript
    {
        consider(Style::Name, named);
    }
    // Stamped headers: two speakers or more, one of them twice; most headers have a message
    // below them, and headers are not lost in a long text.
    if stamped >= 3
        && stamped_speakers >= 2
        && stamped > stamped_speakers
        && nonblank >= stamped * 3 / 2
        && stamped * 8 >= nonblank
    {
        consider(Style::Stamped, stamped);
    }
    best.map(|(s, _)| s)
}

/// True when `text` reads as a conversation: the test `detect` uses.
pub(crate) fn is_chat(text: &str) -> bool {
    conversation_style(text, &labelled_lines(text)).is_some()
}

/// Weight of the thread of the query's own turn next to the query's BM25 (scaled to 1).
const THREAD: f64 = 1.2;
/// Weight of recency (1 for the last turn, 0 for the first).
const RECENCY_WITH_QUERY: f64 = 0.3;
/// Without a query: weight of a turn's information (scaled to the best turn) next to recency,
/// a tie-breaker among turns about as recent. The conversation's end is what a reader without
/// a question wants: at 0.3, long older turns displaced recent ones and IRC at 10x kept less
/// of a thread than the plain tail did.
const INFORMATION: f64 = 0.1;
/// Turns within this distance of the query's turn count fully as its thread; farther ones less.
const THREAD_REACH: f64 = 20.0;

/// Scores every turn; see the module docs. `roots` are the turns that repeat the query.
fn priority(text: &str, turns: &[Turn], query: Option<&str>, roots: &[usize]) -> Vec<usize> {
    let n = turns.len();
    let segs: Vec<Segment> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| Segment {
            start: t.body,
            end: t.end.max(t.body),
            block: i,
            parent: None,
            kind: SegKind::Sentence,
        })
        .collect();
    let mut analysis = Analysis::new(text, &segs);
    let qterms = query.map(|q| query_terms(&mut analysis, q)).unwrap_or_default();
    let recency = |i: usize| {
        if n > 1 { i as f64 / (n - 1) as f64 } else { 1.0 }
    };
    let mut score = vec![0.0f64; n];
    if qterms.is_empty() {
        let info: Vec<f64> = (0..n).map(|i| analysis.seg_info(i)).collect();
        let best = info.iter().cloned().fold(0.0, f64::max).max(1e-9);
        for i in 0..n {
            score[i] = recency(i) + INFORMATION * info[i] / best;
        }
    } else {
        let lens: Vec<usize> = (0..n).map(|i| analysis.seg_range(i).len()).collect();
        let avg = lens.iter().sum::<usize>() as f64 / n.max(1) as f64;
        let relevance: Vec<f64> = (0..n)
            .map(|i| {
                let words = &analysis.words[analysis.seg_range(i)];
                bm25(&qtf(words, &qterms), &qterms, lens[i] as f64, avg)
            })
            .collect();
        let best = relevance.iter().cloned().fold(0.0, f64::max).max(1e-9);
        let thread = thread_weights(text, turns, roots);
        for i in 0..n {
            score[i] = relevance[i] / best + THREAD * thread[i] + RECENCY_WITH_QUERY * recency(i);
        }
    }
    let last = (0..n).rev().find(|&i| !turns[i].status);
    let mut order: Vec<usize> = Vec::with_capacity(n);
    order.extend(last);
    for &r in roots {
        if !order.contains(&r) {
            order.push(r);
        }
    }
    let mut rest: Vec<usize> = (0..n).filter(|i| !order.contains(i) && !turns[*i].status).collect();
    rest.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(b.cmp(&a)));
    order.extend(rest);
    order.extend((0..n).rev().filter(|&i| turns[i].status));
    order
}

/// The speaker's name, lower-cased.
fn speaker(text: &str, t: &Turn) -> Option<String> {
    t.speaker.map(|(a, b)| text[a..b].to_lowercase())
}

/// The nick a message addresses (`nick: …`, `nick, …` at its start), lower-cased.
fn addressee(text: &str, t: &Turn) -> Option<String> {
    let body = &text[t.body..t.end];
    let end = body.find([':', ',', ' '])?;
    (end > 0 && body[end..].starts_with([':', ','])).then(|| body[..end].to_lowercase())
}

/// How strongly each turn belongs to the thread of the query's turns: its author's other
/// messages and messages addressed to or by its author, weighted by distance.
fn thread_weights(text: &str, turns: &[Turn], roots: &[usize]) -> Vec<f64> {
    let n = turns.len();
    let mut w = vec![0.0f64; n];
    if roots.is_empty() {
        return w;
    }
    // Who speaks, and whom they address, once per turn.
    let people: Vec<(Option<String>, Option<String>)> =
        turns.iter().map(|t| (speaker(text, t), addressee(text, t))).collect();
    for &r in roots {
        let Some(author) = people[r].0.clone() else {
            continue;
        };
        // Who the author spoke with: everyone they addressed, and everyone who addressed them.
        let mut partners: Vec<&str> = Vec::new();
        for (s, a) in &people {
            if s.as_deref() == Some(author.as_str())
                && let Some(a) = a
            {
                partners.push(a);
            } else if a.as_deref() == Some(author.as_str())
                && let Some(s) = s
            {
                partners.push(s);
            }
        }
        for (i, t) in turns.iter().enumerate() {
            if i == r || t.status {
                continue;
            }
            let (s, a) = &people[i];
            let link = if s.as_deref() == Some(author.as_str()) || a.as_deref() == Some(author.as_str()) {
                1.0
            } else if s.as_deref().is_some_and(|s| partners.contains(&s))
                && a.as_deref().is_some_and(|a| partners.contains(&a) || a == author)
            {
                0.5
            } else {
                0.0
            };
            if link == 0.0 {
                continue;
            }
            let dist = i.abs_diff(r) as f64;
            let before = if i < r { 0.3 } else { 1.0 };
            w[i] = f64::max(w[i], link * before / (1.0 + dist / THREAD_REACH));
        }
    }
    w
}

/// Lower-cased words of a text, for comparing a turn with the query.
fn plain_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Turns whose message is the query, or nearly: at least 80% of the query's words, in a
/// message whose words are at least 80% the query's.
fn query_turns(text: &str, turns: &[Turn], query: Option<&str>) -> Vec<usize> {
    let Some(q) = query else {
        return Vec::new();
    };
    let qw = plain_words(q);
    if qw.len() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let tw = plain_words(&text[t.body..t.end]);
        if tw.is_empty() {
            continue;
        }
        let in_turn = qw.iter().filter(|w| tw.contains(w)).count();
        let in_query = tw.iter().filter(|w| qw.contains(w)).count();
        if in_turn * 5 >= qw.len() * 4 && in_query * 5 >= tw.len() * 4 {
            out.push(i);
        }
    }
    out
}

/// The best run of whole sentences of `text[from..to]` whose cost, as `measure` gives it, fits
/// `budget`: the longest, the earliest of equals (the opening of a message says what it is
/// about).
fn sentence_run(
    text: &str,
    from: usize,
    to: usize,
    budget: usize,
    measure: &dyn Fn(usize, usize) -> usize,
) -> Option<(usize, usize)> {
    let mut sentences: Vec<(usize, usize)> = Vec::new();
    split_sentences(text, from, to, |a, b| sentences.push((a, b)));
    let mut best: Option<(usize, usize, usize)> = None;
    for (k, &(first, _)) in sentences.iter().enumerate() {
        let mut run = None;
        for &(_, e) in &sentences[k..] {
            let c = measure(first, e);
            if c > budget {
                break;
            }
            run = Some((first, e, c));
        }
        if let Some(r) = run
            && best.is_none_or(|b| r.2 > b.2)
        {
            best = Some(r);
        }
        // Runs from later sentences are shorter than the whole rest: stop once one fits it.
        if run.is_some_and(|r| r.1 == sentences.last().map_or(0, |s| s.1)) {
            break;
        }
    }
    best.map(|(a, b, _)| (a, b))
}

/// A turn's label and the most of its opening words that fit `budget` with ` …` after them
/// (cut only at white space), `None` when not even one word does.
fn opening_words(text: &str, t: &Turn, budget: usize, count: &dyn Fn(&str) -> usize) -> Option<String> {
    let body = &text[t.body..t.end];
    // Where each word of the body ends, as offsets into the text.
    let ends: Vec<usize> = body
        .char_indices()
        .filter(|&(k, c)| !c.is_whitespace() && body[k + c.len_utf8()..].chars().next().is_none_or(char::is_whitespace))
        .map(|(k, c)| t.body + k + c.len_utf8())
        .collect();
    let shown = |k: usize| format!("{} …", &text[t.start..ends[k]]);
    // The longest prefix that fits: counts grow with the words.
    let (mut lo, mut hi) = (0usize, ends.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if count(&shown(mid)) <= budget { lo = mid + 1 } else { hi = mid }
    }
    (lo > 0).then(|| shown(lo - 1))
}

/// How many turns, in priority order, are tried beside a turn shown in part.
const FILL_TRIES: usize = 64;

/// Compresses a conversation; see the module docs. `None` when the text is not one, or when
/// nothing fits.
pub fn compress_chat(text: &str, query: Option<&str>, budget: usize, counter: &dyn Count) -> Option<Packed> {
    let count = &|s: &str| counter.count(s);
    if budget == 0 {
        return None;
    }
    let turns = parse(text)?;
    let total = count(text);
    if total <= budget {
        return Some(Packed {
            text: text.to_string(),
            retained_indices: (0..turns.len()).collect(),
            kept_information: 1.0,
        });
    }
    let sep = separator(text, &turns);
    let roots = query_turns(text, &turns, query);
    let order = priority(text, &turns, query, &roots);
    let sep_cost = count(sep).max(1);
    let est: Vec<usize> = order.iter().map(|&i| count(&text[turns[i].start..turns[i].end]) + sep_cost).collect();
    let render = |chosen: &[usize]| -> String {
        let mut kept: Vec<usize> = chosen.to_vec();
        kept.sort_unstable();
        let mut out = String::new();
        for i in kept {
            if !out.is_empty() {
                out.push_str(sep);
            }
            out.push_str(&text[turns[i].start..turns[i].end]);
        }
        out
    };
    // A turn shown as a run of its sentences, then, in priority order, the whole turns that
    // still fit beside it (a run that took little of the budget leaves room for the question
    // it answers), all in input order.
    let fill_beside = |i: usize, piece: String| -> (Vec<usize>, String) {
        let mut parts = std::collections::BTreeMap::from([(i, piece)]);
        let join = |parts: &std::collections::BTreeMap<usize, String>| {
            parts.values().map(String::as_str).collect::<Vec<_>>().join(sep)
        };
        let mut out = join(&parts);
        let mut used = count(&out);
        for (k, &j) in order.iter().enumerate().take(FILL_TRIES) {
            if j == i || used + est[k] > budget {
                continue;
            }
            parts.insert(j, text[turns[j].start..turns[j].end].to_string());
            let candidate = join(&parts);
            let tokens = count(&candidate);
            if tokens <= budget {
                (out, used) = (candidate, tokens);
            } else {
                parts.remove(&j);
            }
        }
        (parts.into_keys().collect(), out)
    };
    let fitted = if est[0] <= budget + sep_cost {
        fit_units(&order, &est, &|_| None, &render, &|t: &String| count(t), budget)
    } else {
        None
    };
    let (chosen, out) = match fitted {
        Some(f) => f,
        None => {
            // The most recent turn alone is too large: its label and its best run of whole
            // sentences, or failing that the best run of the next turn in priority.
            order
                .iter()
                .find_map(|&i| {
                    let t = turns[i];
                    // The label with the white space after it ("ChatGPT said:\n\n"), so a run
                    // that starts later in the turn is not glued to it.
                    let body = &text[t.body..t.end];
                    let head = &text[t.start..t.body + body.len() - body.trim_start().len()];
                    let shown = |a: usize, b: usize| {
                        if a <= t.start + head.len() {
                            text[t.start..b].to_string()
                        } else {
                            format!("{head}{}", &text[a..b])
                        }
                    };
                    let measure = |a: usize, b: usize| count(&shown(a, b));
                    let (a, b) = sentence_run(text, t.body, t.end, budget, &measure)?;
                    Some(fill_beside(i, shown(a, b)))
                })
                // No sentence fits with its label: the label and the opening words of the turn
                // first in priority, marked as cut.
                .or_else(|| {
                    order.iter().find_map(|&i| opening_words(text, &turns[i], budget, count).map(|p| (vec![i], p)))
                })?
        }
    };
    let mut retained_indices = chosen;
    retained_indices.sort_unstable();
    let kept_information = information(&turns, &retained_indices);
    Some(Packed { text: out, retained_indices, kept_information })
}

/// The separator the input puts between turns most often: a blank line or a newline.
fn separator<'a>(text: &'a str, turns: &[Turn]) -> &'a str {
    let blank = turns.windows(2).filter(|w| text[w[0].end..w[1].start].matches('\n').count() >= 2).count();
    if blank * 2 > turns.len().saturating_sub(1) { "\n\n" } else { "\n" }
}

/// Share of the conversation's words (by length) in the kept turns, at most 0.999 when a turn
/// was dropped.
fn information(turns: &[Turn], kept: &[usize]) -> f64 {
    let size = |i: usize| (turns[i].end - turns[i].body) as f64 + 1.0;
    let all: f64 = (0..turns.len()).map(size).sum();
    let k: f64 = kept.iter().map(|&i| size(i)).sum();
    if kept.len() == turns.len() { 1.0 } else { (k / all).min(0.999) }
}

/// One message of an OpenAI-style `messages` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

/// Which messages are kept whole whatever the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// System (and developer) messages.
    pub system: bool,
    /// The last message whose role is `user`, when only system messages follow it (the question
    /// being asked); a last user message that a reply follows ranks beside that reply, within
    /// the budget.
    pub last_user: bool,
}

impl Default for Keep {
    fn default() -> Self {
        Keep { system: true, last_user: true }
    }
}

/// A compressed `messages` array: the kept messages in order, each whole or as a run of its
/// sentences, with its role.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressedMessages {
    /// `(index in the input, role, content)` of each kept message, in input order.
    pub messages: Vec<(usize, String, String)>,
    /// Tokens of the input's message contents.
    pub original_tokens: usize,
    /// Tokens of the output's message contents.
    pub compressed_tokens: usize,
    pub budget_tokens: usize,
    /// True when the messages that must stay were larger than the budget (they were kept).
    pub over_budget: bool,
    pub quality_score: f64,
    /// Nothing was dropped.
    pub unchanged: bool,
}

/// How much of the last user message stands for a missing query (the service's bound on a
/// `query`).
const IMPLICIT_QUERY_BYTES: usize = 4096;

/// Compresses a `messages` array to `budget` (see [`super::Budget`]) tokens of content; see the
/// module docs. Without a query, the last user message stands for it.
pub fn compress_messages(
    messages: &[ChatMessage<'_>],
    query: Option<&str>,
    budget: super::Budget,
    keep: Keep,
    encoding: Encoding,
) -> CompressedMessages {
    let text = join_contents(messages);
    let counter = PieceCounter::new(encoding, &text);
    compress_messages_counted(messages, &counter, query, budget, keep)
}

/// The messages' contents as one text, a blank line apart, so that each message is a range of
/// it: the text a [`PieceCounter`] for [`compress_messages_counted`] counts.
pub fn join_contents(messages: &[ChatMessage<'_>]) -> String {
    let mut text = String::with_capacity(messages.iter().map(|m| m.content.len() + 2).sum());
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            text.push_str("\n\n");
        }
        text.push_str(m.content);
    }
    text
}

/// Each message's place in [`join_contents`]'s text.
fn turns_in_joined(messages: &[ChatMessage<'_>]) -> Vec<Turn> {
    let mut turns = Vec::with_capacity(messages.len());
    let mut at = 0;
    for m in messages {
        let end = at + m.content.len();
        turns.push(Turn { start: at, body: at, end, speaker: None, status: false });
        at = end + 2;
    }
    turns
}

/// Tokens of each message's content, counted from the pieces of `counter`, which counted
/// [`join_contents`] of `messages`: each content is counted as a message of its own.
fn content_costs(turns: &[Turn], counter: &PieceCounter<'_>) -> Vec<usize> {
    let text = counter.source();
    turns
        .iter()
        .map(|t| {
            let content = &text[t.start..t.end];
            counter.count_spliced(content, &[(0, t.start, content.len())])
        })
        .collect()
}

/// The tokens of a `messages` array, what [`CompressedMessages::original_tokens`] will say:
/// the sum over the contents, each counted on its own, from the pieces of `counter` (over
/// [`join_contents`] of `messages`). A caller that must reserve the tokens before it
/// compresses (a quota) counts with this and then compresses with the same counter, so the
/// contents are tokenized once.
pub fn messages_tokens(messages: &[ChatMessage<'_>], counter: &PieceCounter<'_>) -> usize {
    content_costs(&turns_in_joined(messages), counter).iter().sum()
}

/// [`compress_messages`] with the contents already counted: `counter` counted
/// [`join_contents`] of `messages`.
pub fn compress_messages_counted(
    messages: &[ChatMessage<'_>],
    counter: &PieceCounter<'_>,
    query: Option<&str>,
    budget: super::Budget,
    keep: Keep,
) -> CompressedMessages {
    let text = counter.source();
    let turns = turns_in_joined(messages);
    debug_assert_eq!(turns.last().map_or(0, |t| t.end), text.len(), "counter over join_contents(messages)");
    let count = |s: &str| counter.count(s);
    let costs = content_costs(&turns, counter);
    let original_tokens: usize = costs.iter().sum();
    let budget_tokens = super::budget_tokens(budget, original_tokens);
    let whole = |idx: &[usize]| -> Vec<(usize, String, String)> {
        idx.iter().map(|&i| (i, messages[i].role.to_string(), messages[i].content.to_string())).collect()
    };
    if original_tokens <= budget_tokens || original_tokens < super::MIN_TOKENS {
        return CompressedMessages {
            messages: whole(&(0..messages.len()).collect::<Vec<_>>()),
            original_tokens,
            compressed_tokens: original_tokens,
            budget_tokens,
            over_budget: original_tokens > budget_tokens,
            quality_score: 1.0,
            unchanged: true,
        };
    }
    let role = |i: usize| messages[i].role.trim().to_ascii_lowercase();
    let is_system = |i: usize| matches!(role(i).as_str(), "system" | "developer");
    let last_user = (0..messages.len()).rev().find(|&i| role(i) == "user");
    // The last user message is the question being asked when only system messages follow it;
    // when a reply follows it, that reply is the newest turn, which a next question builds on:
    // the question it answered ranks beside it (below), kept past the budget only when nothing
    // else fits.
    let asking = last_user.filter(|&i| (i + 1..messages.len()).all(is_system));
    let answered = last_user.filter(|_| keep.last_user && asking.is_none());
    let mut protected: Vec<usize> = (0..messages.len())
        .filter(|&i| (keep.system && is_system(i)) || (keep.last_user && Some(i) == asking))
        .collect();
    protected.sort_unstable();
    // Without a query, the last user message stands for it: its last IMPLICIT_QUERY_BYTES (where
    // a question usually ends), so that a huge message does not make ranking quadratic.
    let implicit = last_user.map(|i| {
        let c = messages[i].content;
        let mut from = c.len().saturating_sub(IMPLICIT_QUERY_BYTES);
        while !c.is_char_boundary(from) {
            from += 1;
        }
        &c[from..]
    });
    let query = query.filter(|q| !q.trim().is_empty()).or(implicit);
    let roots = query_turns(text, &turns, query);
    let mut order = protected.clone();
    // `protected` and (below) `chosen` are sorted: membership is a binary search, so that a
    // long conversation costs n log n, not n².
    let protected_cost: usize = protected.iter().map(|&i| costs[i]).sum();
    let mut ranked = priority(text, &turns, query, &roots).into_iter();
    // `priority` puts the newest message first. An answered question follows it when it fits
    // whole; when it does not (it will give a run of its sentences), the question goes first.
    let newest = ranked.next();
    let answered = answered.filter(|&a| Some(a) != newest);
    let rest = ranked.filter(|&i| Some(i) != answered);
    let reply_fits = newest.is_some_and(|i| protected_cost + costs[i] <= budget_tokens);
    let (first, second) = if reply_fits { (newest, answered) } else { (answered, newest) };
    for i in first.into_iter().chain(second).chain(rest) {
        if protected.binary_search(&i).is_err() {
            order.push(i);
        }
    }
    let measure = |a: usize, b: usize| count(&text[a..b]);
    // Whole messages in priority order while they fit; then the best message that does not fit
    // whole gives its best run of sentences, before smaller, lower-ranked messages fill the
    // rest whole. Message costs add up: each is a message of its own.
    let mut chosen: Vec<usize> = Vec::new();
    let mut run: Option<(usize, usize, usize)> = None;
    let mut used = 0usize;
    if protected_cost >= budget_tokens {
        chosen = protected.clone();
    } else {
        for &i in &order {
            if used + costs[i] <= budget_tokens {
                used += costs[i];
                chosen.push(i);
            } else if run.is_none() && protected.binary_search(&i).is_err() {
                let t = turns[i];
                if let Some((a, b)) = sentence_run(text, t.start, t.end, budget_tokens - used, &measure) {
                    used += measure(a, b);
                    run = Some((i, a, b));
                }
            }
        }
    }
    // Nothing fits, not even a sentence: the question being answered stays, past the budget,
    // rather than an empty conversation.
    if chosen.is_empty() && run.is_none() {
        chosen.extend(answered);
    }
    chosen.sort_unstable();
    let mut pieces: Vec<(usize, String, String)> = whole(&chosen);
    if let Some((next, a, b)) = run {
        let at = pieces.partition_point(|p| p.0 < next);
        pieces.insert(at, (next, messages[next].role.to_string(), text[a..b].to_string()));
    }
    let compressed_tokens: usize = pieces.iter().map(|p| count(&p.2)).sum();
    let kept_chars: usize = pieces.iter().map(|p| p.2.len()).sum();
    let all_chars: usize = messages.iter().map(|m| m.content.len()).sum::<usize>().max(1);
    CompressedMessages {
        messages: pieces,
        original_tokens,
        compressed_tokens,
        budget_tokens,
        over_budget: compressed_tokens > budget_tokens,
        quality_score: (kept_chars as f64 / all_chars as f64).min(0.999),
        unchanged: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(s: &str) -> usize {
        s.split_whitespace().count()
    }

    const IRC: &str = "[03:03] <seveas> delire, indeed\n\
=== rover_dan [~daniel@222.212.41.14]  has joined #ubuntu\n\
[03:04] <cruncher> seveas thx\n\
[03:05] <bigfoot1> is there a way i could remotely connect to my home ubuntu PC from work?\n\
[03:05] <delire> hehe yes. does Kubuntu have 'KPackage'?\n\
[03:06] <mjr> bigfoot1, ssh; install ssh server and putty for the windows box\n\
[03:06] <burgermann> does anyone know a consoleprog that scales jpegs fast?\n\
[03:06] <seveas> burgermann, convert\n\
[03:07] <nalioth> bigfoot1: vnc over ssh\n\
[03:07] <delire> burgermann: ImageMagick\n\
[03:08] <bigfoot1> thanks, i'll try putty\n\
[03:08] <seveas> imagemagick rocks, it does everything with images\n";

    #[test]
    fn html_tags_at_line_starts_are_not_irc_nicks() {
        let html = "<ul>\n<li> Median write latency went from 3 to 5 ms.</li>\n<li> Reads are unchanged.</li>\n<li> The lease is bounded.</li>\n</ul>\n<p> Next quarter the index moves.</p>\n";
        assert!(!is_chat(html));
        let irc =
            "[10:01] <li> morning all\n[10:02] <bob> hi li\n[10:03] <li> did the deploy finish?\n[10:04] <bob> yes\n";
        assert!(is_chat(irc));
    }

    #[test]
    fn irc_lines_are_turns_with_their_speakers() {
        let turns = parse(IRC).unwrap();
        assert_eq!(turns.len(), 12);
        assert!(turns[1].status);
        let (a, b) = turns[0].speaker.unwrap();
        assert_eq!(&IRC[a..b], "seveas");
        assert_eq!(&IRC[turns[0].body..turns[0].end], "delire, indeed");
        assert!(is_chat(IRC));
    }

    #[test]
    fn the_query_message_and_its_replies_are_kept() {
        let q = "is there a way i could remotely connect to my home ubuntu PC from work?";
        let p = compress_chat(IRC, Some(q), 60, &approx).unwrap();
        assert!(approx(&p.text) <= 60);
        assert!(p.text.contains(q), "{}", p.text);
        assert!(p.text.contains("bigfoot1, ssh; install ssh server"), "{}", p.text);
        assert!(p.text.contains("bigfoot1: vnc over ssh"), "{}", p.text);
        // Every output line is an input line.
        for l in p.text.lines() {
            assert!(IRC.lines().any(|o| o == l), "{l}");
        }
    }

    #[test]
    fn a_last_turn_shown_in_part_leaves_its_room_to_the_question_it_answers() {
        let quote = "\"The library opens a new reading room in March. It has forty seats and quiet \
                     booths for study. Volunteers are needed for the opening week, and the cafe \
                     will serve tea every afternoon. Parking stays free for members.\"";
        let text = format!("Human: Can you reformat this notice for me?\n\nAssistant: Sure! {quote}");
        let p = compress_chat(&text, None, 22, &approx).unwrap();
        assert!(approx(&p.text) <= 22, "{}", p.text);
        // The answer's one sentence that fits, and beside it the whole question it answers.
        assert_eq!(p.text, "Human: Can you reformat this notice for me?\n\nAssistant: Sure!", "{}", p.text);
        assert_eq!(p.retained_indices, [0, 1]);
    }

    #[test]
    fn without_a_query_the_last_turn_is_kept_and_status_lines_go_first() {
        let p = compress_chat(IRC, None, 40, &approx).unwrap();
        assert!(p.text.ends_with("imagemagick rocks, it does everything with images"));
        assert!(!p.text.contains("has joined"));
    }

    #[test]
    fn without_a_query_the_conversations_end_comes_before_a_long_older_message() {
        let nicks = ["ana", "bo", "cy", "dee"];
        let mut lines: Vec<String> =
            (0..200).map(|i| format!("[10:{:02}] <{}> short note number {i} here", i % 60, nicks[i % 4])).collect();
        // Seventy lines before the end, one long message full of rare words.
        lines[130] = "[11:10] <eve> the nightly rsync between the backup appliance and the colocated \
                      storage array throttles itself whenever the fibre uplink saturates, so \
                      snapshots lag behind replication by several hours on Sundays"
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let text = lines.join("\n");
        // Room for about the last forty lines.
        let p = compress_chat(&text, None, 280, &approx).unwrap();
        for l in &lines[165..] {
            assert!(p.text.contains(l.as_str()), "{l:?} missing from:\n{}", p.text);
        }
        assert!(!p.text.contains("nightly rsync"), "{}", p.text);
    }

    #[test]
    fn when_no_sentence_fits_with_its_label_the_label_and_opening_words_are_kept_marked() {
        let text = "Human: Could you write a short poem about the sea for my grandmother's birthday card?\n\n\
                    Assistant: The grey sea hums beneath a patient moon and every wave returns to shore at last.";
        let p = compress_chat(text, None, 10, &approx).unwrap();
        assert_eq!(p.text, "Assistant: The grey sea hums beneath a patient moon …");
        assert!(approx(&p.text) <= 10);
        assert_eq!(p.retained_indices, [1]);
        // Not even the label and one word: nothing here, the caller's phrase fallback decides.
        assert!(compress_chat(text, None, 1, &approx).is_none());
    }

    #[test]
    fn transcript_turns_span_paragraphs_and_keep_their_labels() {
        let t = "Human: Write two jokes about cats.\n\nAssistant: Why did the cat sit on the \
                 computer? To keep an eye on the mouse.\n\nWhat is a cat's favourite colour? \
                 Purrple.\n\nHuman: Now one about dogs.\n\nAssistant: Why did the dog sit in \
                 the shade? Because he did not want to be a hot dog.";
        let turns = parse(t).unwrap();
        assert_eq!(turns.len(), 4);
        assert!(t[turns[1].start..turns[1].end].ends_with("Purrple."));
        let p = compress_chat(t, Some("and about birds?"), 30, &approx).unwrap();
        assert!(p.text.ends_with("not want to be a hot dog."), "{}", p.text);
        for block in p.text.split("\n\n") {
            // No paragraph starts without a label unless it continues a kept turn.
            assert!(t.contains(block));
        }
        assert!(p.text.starts_with("Human:") || p.text.starts_with("Assistant:"));
    }

    #[test]
    fn a_last_turn_larger_than_the_budget_keeps_its_label_and_first_sentences() {
        let t = "User: hello there friend\nAssistant: One two three. Four five six. Seven \
                 eight nine. Ten eleven twelve.";
        let p = compress_chat(t, None, 8, &approx).unwrap();
        assert_eq!(p.text, "Assistant: One two three. Four five six.");
    }

    #[test]
    fn nick_colon_chats_are_recognised_but_not_key_value_text() {
        let chat = "alice: did the deploy finish?\nbob: not yet, the tests are slow\n\
                    alice: ok ping me\nbob: done now\ncarol: great work both";
        assert!(is_chat(chat));
        let yaml = "name: omnimemory\nversion: 1\nedition: 2024\nlicense: MIT\npublish: false";
        assert!(!is_chat(yaml));
        let prose = "Note: this is important.\nThe rest of the text explains why.\nIt goes on.";
        assert!(!is_chat(prose));
        let urls = "see http://example.com\nhttp://foo.bar/baz\nhttps://x.y\n";
        assert!(!is_chat(urls));
    }

    #[test]
    fn chat_app_exports_are_conversations_with_their_speakers() {
        // WhatsApp's export: a date, a time to the minute and ` - ` before `Name: text`.
        let wa = "12/03/2024, 09:00 - Bob: the deploy failed on staging\n\
                  12/03/2024, 09:07 - Alice: raise the statement timeout to 60 seconds\n\
                  12/03/2024, 09:14 - Bob: ok, retrying the migration now\n\
                  3/12/24, 9:21 PM - Alice: the staging migration passed after the change\n";
        let turns = parse(wa).unwrap();
        assert_eq!(turns.len(), 4);
        let (a, b) = turns[3].speaker.unwrap();
        assert_eq!(&wa[a..b], "Alice");
        assert_eq!(&wa[turns[3].body..turns[3].end], "the staging migration passed after the change");
        // Slack and Discord copies: the name and time alone on a line, the message below it.
        let slack = "Bob Smith  9:00 AM\nthe deploy failed on staging\nbecause the migration timed out\n\n\
                     Alice Jones  9:07 AM\nraise the statement timeout to 60 seconds\n\n\
                     Bob Smith  9:14 AM\nok, retrying the migration now\n\n\
                     Alice Jones  9:21 AM\nthe staging migration passed after the change\n";
        let discord = "Bob — Today at 9:00 AM\nthe deploy failed on staging\n\
                       Alice — Today at 9:07 AM\nraise the statement timeout to 60 seconds\n\
                       Bob — Today at 9:14 AM\nok, retrying the migration now\n\
                       Alice — Today at 9:21 AM\nthe staging migration passed after the change\n";
        for (text, first) in [(slack, "Bob Smith"), (discord, "Bob")] {
            let turns = parse(text).unwrap();
            assert_eq!(turns.len(), 4, "{text}");
            let (a, b) = turns[0].speaker.unwrap();
            assert_eq!(&text[a..b], first);
            assert!(text[turns[0].start..turns[0].end].ends_with(if first == "Bob" { "staging" } else { "timed out" }));
            // Without a query the latest turns are kept, each with its header.
            let p = compress_chat(text, None, 22, &approx).unwrap();
            assert!(p.text.ends_with("the staging migration passed after the change"), "{}", p.text);
            assert!(p.text.contains("9:21 AM\nthe staging"), "{}", p.text);
            // Every kept header is followed by the line that follows it in the input.
            let input: Vec<&str> = text.lines().collect();
            let output: Vec<&str> = p.text.lines().collect();
            for (k, line) in output.iter().enumerate().filter(|(_, l)| l.ends_with(" AM")) {
                let at = input.iter().position(|l| l == line).unwrap();
                assert_eq!(output.get(k + 1), input.get(at + 1), "a header without its message: {}", p.text);
            }
        }
        // Logs stamped to the second are not chats, with a date or a separator before `name:`.
        let log = "2024-05-01 12:00:00 - worker: job 17 finished in 3.2s\n\
                   2024-05-01 12:00:01 - api: request 4 served with status 200\n\
                   2024-05-01 12:00:02 - worker: job 18 finished in 1.1s\n\
                   2024-05-01 12:00:03 - api: request 5 served with status 200\n";
        assert!(!is_chat(log));
        // A schedule names no one twice.
        let agenda = "Keynote  9:00 AM\nWelcome and the year ahead\nLunch  12:00 PM\nPizza in the hall\n\
                      Workshops  1:30 PM\nThree rooms, see the board\n";
        assert!(!is_chat(agenda));
    }

    #[test]
    fn names_of_two_words_label_turns_but_not_a_transcripts_list() {
        let meeting = "John Smith: the budget review should happen before the launch\n\
                       Mary Jones: legal has not answered about the contract yet\n\
                       Speaker 3: the vendor says delivery slips to March\n\
                       John Smith: can we move the demo to Thursday afternoon\n\
                       Mary Jones: I can take the migration of the old accounts\n";
        let turns = parse(meeting).unwrap();
        assert_eq!(turns.len(), 5);
        let (a, b) = turns[2].speaker.unwrap();
        assert_eq!(&meeting[a..b], "Speaker 3");
        let p = compress_chat(meeting, None, 14, &approx).unwrap();
        assert!(p.text.ends_with("Mary Jones: I can take the migration of the old accounts"), "{}", p.text);
        // An answer that lists `Topic Name: …` lines stays inside its role-labelled turn.
        let transcript = "Human: Plan my training week.\n\nAssistant: Here is a plan.\n\
                          Strength Training: compound lifts for three sets of ten reps\n\
                          Power Training: jump squats and box jumps for three sets\n\
                          Strength Training: lighter lifts for two sets of eight reps\n\
                          Power Training: plyometrics for two sets of eight reps\n\nHuman: And rest days?";
        let turns = parse(transcript).unwrap();
        assert_eq!(turns.len(), 3, "{turns:?}");
        assert!(transcript[turns[1].start..turns[1].end].ends_with("for two sets of eight reps"));
    }

    #[test]
    fn messages_keep_roles_system_and_last_user_whole() {
        let sys = "You are a terse assistant that answers about trains.";
        let long = "The first train left at nine in the morning from the north station. \
                    It stopped in four towns before noon. The weather was fine all day. \
                    Many people travelled to the coast that weekend for the festival.";
        let msgs = [
            ChatMessage { role: "system", content: sys },
            ChatMessage { role: "user", content: "Tell me about the first train." },
            ChatMessage { role: "assistant", content: long },
            ChatMessage { role: "user", content: "When did it leave?" },
            ChatMessage { role: "assistant", content: long },
            ChatMessage { role: "user", content: "And where did people travel to?" },
        ];
        let out = compress_messages(&msgs, None, super::super::Budget::Ratio(0.5), Keep::default(), Encoding::Cl100k);
        assert!(!out.unchanged);
        assert!(out.compressed_tokens <= out.budget_tokens, "{out:?}");
        let roles: Vec<&str> = out.messages.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(roles.first(), Some(&"system"));
        assert_eq!(out.messages.first().unwrap().2, sys);
        let last = out.messages.last().unwrap();
        assert_eq!((last.0, last.2.as_str()), (5, "And where did people travel to?"));
        for (i, role, content) in &out.messages {
            assert_eq!(role, msgs[*i].role);
            assert!(msgs[*i].content.contains(content.as_str()));
        }
    }

    #[test]
    fn a_reply_after_the_last_user_message_is_the_newest_turn_and_comes_first() {
        let draft = "Here is my draft for the newsletter, please review it. The library opens a new \
                     reading room in March. It has forty seats and quiet booths. Volunteers are \
                     needed for the opening week. The cafe will serve tea and cake every afternoon. \
                     Parking stays free for members on weekends.";
        let reply = "The draft is clear. Cut the parking line and end on the date.";
        let msgs = [
            ChatMessage { role: "system", content: "You edit newsletters." },
            ChatMessage { role: "user", content: draft },
            ChatMessage { role: "assistant", content: reply },
        ];
        let out = compress_messages(&msgs, None, super::super::Budget::Tokens(30), Keep::default(), Encoding::Cl100k);
        // The reply a next question builds on is kept whole, within the budget; the draft it
        // answered is not kept past it.
        assert!(out.messages.iter().any(|m| m.0 == 2 && m.2 == reply), "{out:?}");
        assert!(out.compressed_tokens <= 30 && !out.over_budget, "{out:?}");
        assert!(!out.messages.iter().any(|m| m.0 == 1 && m.2 == draft), "{out:?}");
        // With room for both, the question follows its answer in, whole.
        let out = compress_messages(&msgs, None, super::super::Budget::Tokens(75), Keep::default(), Encoding::Cl100k);
        let kept: Vec<usize> = out.messages.iter().map(|m| m.0).collect();
        assert_eq!(kept, [0, 1, 2], "{out:?}");
        // A reply too long to keep whole gives a run of its sentences after its question.
        let long_reply = "The reading room opens on the third of March. It seats forty people in quiet \
                          booths. Volunteers sign up at the front desk before the opening week.";
        let msgs2 = [
            ChatMessage { role: "user", content: "When does it open?" },
            ChatMessage { role: "assistant", content: long_reply },
        ];
        let out = compress_messages(&msgs2, None, super::super::Budget::Tokens(24), Keep::default(), Encoding::Cl100k);
        assert_eq!(out.messages.first().map(|m| m.2.as_str()), Some("When does it open?"), "{out:?}");
        assert!(out.messages.iter().any(|m| m.0 == 1 && long_reply.contains(&m.2)) && !out.over_budget, "{out:?}");
        // When nothing fits, not even a sentence, the question stays rather than nothing.
        let out =
            compress_messages(&msgs[1..], None, super::super::Budget::Tokens(3), Keep::default(), Encoding::Cl100k);
        assert!(out.messages.iter().any(|m| m.0 == 0 && m.2 == draft) && out.over_budget, "{out:?}");
    }

    #[test]
    fn the_contents_are_counted_each_on_its_own_from_one_tokenization() {
        let msgs = [
            ChatMessage { role: "system", content: "Be brief.\n\n" },
            ChatMessage { role: "user", content: "  Where did the   train go?\r\n" },
            ChatMessage { role: "assistant", content: "North, then east along the coast.  " },
        ];
        let expected: usize = msgs.iter().map(|m| Encoding::Cl100k.count(m.content)).sum();
        let text = join_contents(&msgs);
        let counter = PieceCounter::new(Encoding::Cl100k, &text);
        assert_eq!(messages_tokens(&msgs, &counter), expected);
        let out = compress_messages_counted(&msgs, &counter, None, super::super::Budget::Ratio(0.5), Keep::default());
        assert_eq!(out.original_tokens, expected);
        // An empty message still has its place: the next one is not read from the wrong bytes.
        let msgs = [ChatMessage { role: "user", content: "" }, ChatMessage { role: "assistant", content: "Yes." }];
        let text = join_contents(&msgs);
        assert_eq!(messages_tokens(&msgs, &PieceCounter::new(Encoding::Cl100k, &text)), 2);
    }

    #[test]
    fn a_better_message_too_long_to_keep_whole_gives_its_sentences_first() {
        let eiffel = "The Eiffel Tower was built for the 1889 World's Fair in Paris. \
                      Gustave Eiffel's company designed and built it over two years. \
                      It is 330 metres tall and was the tallest structure in the world until 1930. \
                      Millions of people visit it every year, and it is lit every evening. \
                      Its iron is repainted every seven years to protect it from rust.";
        let msgs = [
            ChatMessage { role: "user", content: "Tell me about the Eiffel Tower in Paris." },
            ChatMessage { role: "assistant", content: eiffel },
            ChatMessage { role: "user", content: "Thanks! By the way, what is a good pasta recipe?" },
            ChatMessage { role: "assistant", content: "Boil spaghetti, then toss it with garlic and olive oil." },
            ChatMessage { role: "user", content: "How tall is the Eiffel Tower and when was it built?" },
        ];
        let out = compress_messages(&msgs, None, super::super::Budget::Tokens(60), Keep::default(), Encoding::Cl100k);
        assert!(out.compressed_tokens <= 60, "{out:?}");
        let kept: Vec<usize> = out.messages.iter().map(|m| m.0).collect();
        assert!(kept.contains(&4), "{out:?}");
        let answer = out.messages.iter().find(|m| m.0 == 1).expect("the Eiffel answer");
        assert!(eiffel.contains(answer.2.as_str()));
        assert!(answer.2.contains("1889") || answer.2.contains("330 metres"), "{out:?}");
        assert!(!kept.contains(&3), "the pasta answer took the place: {out:?}");
    }
}
