//! Segmentation of prose, markdown and chat into the units the packer keeps or drops.
//!
//! A text is cut into **blocks** (separated by blank lines; a fenced code block is one block even
//! when it holds blank lines) and each block into **segments**:
//! - a `Title: …` line or a markdown heading: a header segment, the *parent* of what follows it
//!   (a heading stays the parent until a heading of the same or a higher level);
//! - a speaker label (`User:`, `Assistant:`, `Bob:` …) at the start of a line: a tiny label
//!   segment, parent of the turn's sentences (until the next label), so that kept sentences keep
//!   their speaker;
//! - a markdown table: the header row and the `|---|` row are parents of the body rows;
//! - a fenced code block: one atomic segment; so is an HTML block that opens a block (up to the
//!   blank line that ends it, or a comment's `-->`; at most 12 lines and 2 KiB, else its lines
//!   are read as text), and a subtitle cue (SRT, WebVTT: its
//!   number, its timing line and its text, up to the blank line), a `<script>`, `<style>`
//!   or `<svg>` element, up to its closing tag, and a document's front matter (`---` … `---`);
//! - otherwise sentences. Hard-wrapped lines are joined (a newline followed by a lower-case letter,
//!   or by a number after a lower-case word, continues the sentence; so does any line aligned
//!   with a long one, 60+ characters, that ends no sentence, as an RFC's or a mail's lines are;
//!   in a quote, `> ` prefixes of the same depth are skipped); other newlines end a segment
//!   (list items, lines of a poem, …).
//!   A quote's `>` and a list marker start their line's first sentence, never stand alone.
//!
//! Sentence ends: `.`, `!`, `?`, `…` (plus closing quotes and brackets) followed by white space
//! and not by a lower-case letter, except after abbreviations ("Dr.", "e.g.", "U.S.", initials
//! like "J."); decimals ("3.14") and URLs never split because no white space follows the dot.
//! CJK `。！？` end a sentence with or without white space after them.
//!
//! Invariants: segments are non-empty, ascending, non-overlapping byte ranges on char
//! boundaries, never start or end with white space, and together cover every non-white-space
//! byte of the input. A parent always comes before its children. A run of more than
//! [`MAX_SEGMENT`] bytes without a sentence end is cut into pieces (at white space when there is
//! some), so no segment is huge; a run of > 4 KiB without any white space is the only thing ever
//! cut inside a "word".

/// What role a segment plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegKind {
    /// `Title: …` line or markdown heading.
    Header,
    /// Speaker label such as `User:`.
    Label,
    /// Table header or separator row.
    TableHead,
    /// Fenced code block, atomic.
    Code,
    /// Body row of a markdown table, atomic.
    TableRow,
    /// A sentence or a line of text.
    Sentence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    /// Index of the block (blank-line separated) the segment belongs to.
    pub block: usize,
    /// Segment that must be kept whenever this one is.
    pub parent: Option<usize>,
    pub kind: SegKind,
}

/// A line at least this long that does not end a sentence is hard-wrapped: the next line
/// at its indentation goes on with it.
const WRAPPED_LINE_CHARS: usize = 60;

/// Longest segment, in bytes, before a sentence is cut into pieces.
pub const MAX_SEGMENT: usize = 2048;

/// Options that depend on the detected content type.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentOptions {
    /// Speaker labels stay parents across blank lines (chat transcripts).
    pub chat: bool,
    /// Every line is a segment of its own (code and logs when their handler gave up).
    pub lines: bool,
}

pub fn segment(text: &str, opts: SegmentOptions) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let lines = lines_of(text);
    // heading stack: (level, segment index)
    let mut headings: Vec<(usize, usize)> = Vec::new();
    let mut label: Option<usize> = None;
    let mut block = 0usize;
    let mut in_block = false;
    let mut i = 0;
    while i < lines.len() {
        let (ls, le) = lines[i];
        let line = &text[ls..le];
        let trimmed = line.trim();
        if trimmed.is_empty() {
            if in_block {
                block += 1;
                in_block = false;
                if !opts.chat {
                    label = None;
                }
            }
            i += 1;
            continue;
        }
        let block_start = !in_block;
        in_block = true;
        let (ts, te) = trim_range(text, ls, le);
        if opts.lines {
            push_capped(&mut out, text, ts, te, block, None, SegKind::Sentence);
            i += 1;
            continue;
        }
        let section_parent =
            |label: Option<usize>, headings: &Vec<(usize, usize)>| label.or(headings.last().map(|h| h.1));

        // Fenced code block: atomic, up to the closing fence (or the end).
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let fence = &trimmed[..3];
            let mut j = i + 1;
            while j < lines.len() && !text[lines[j].0..lines[j].1].trim_start().starts_with(fence) {
                j += 1;
            }
            let last = j.min(lines.len() - 1);
            let (_, end) = trim_range(text, ls, lines[last].1);
            push_capped(&mut out, text, ts, end, block, section_parent(label, &headings), SegKind::Code);
            i = last + 1;
            continue;
        }

        // Front matter (`---` … `---` YAML, `+++` … `+++` TOML, at the very top): one unit, so
        // no key is kept without its fences nor a fence without its close.
        if i == 0 && (trimmed == "---" || trimmed == "+++") {
            let close = |l: &str| l.trim() == trimmed || trimmed == "---" && l.trim() == "...";
            if let Some(j) = (1..lines.len().min(FRONT_MATTER_LINES)).find(|&j| close(&text[lines[j].0..lines[j].1])) {
                let (_, end) = trim_range(text, ls, lines[j].1);
                push_capped(&mut out, text, ts, end, block, None, SegKind::Code);
                i = j + 1;
                continue;
            }
        }

        // A script, style or SVG element: atomic up to its closing tag, blank lines included.
        // It holds nothing to read (the ranking gives it no value: `rank::only_tags`).
        if let Some(tag) = raw_element(trimmed) {
            let close = format!("</{tag}");
            let mut j = i;
            while j + 1 < lines.len() && !text[lines[j].0..lines[j].1].to_ascii_lowercase().contains(&close) {
                j += 1;
            }
            let (_, end) = trim_range(text, ls, lines[j].1);
            push_capped(&mut out, text, ts, end, block, section_parent(label, &headings), SegKind::Code);
            i = j + 1;
            continue;
        }

        // A subtitle cue (SRT, WebVTT): its number, its timing and its text are one unit, up to
        // the blank line that ends it, so no text is kept without its time nor a time alone.
        if block_start && opens_cue(text, &lines, i) {
            let mut j = i;
            while lines.get(j + 1).is_some_and(|n| !text[n.0..n.1].trim().is_empty()) {
                j += 1;
            }
            let (_, end) = trim_range(text, ls, lines[j].1);
            push_capped(&mut out, text, ts, end, block, section_parent(label, &headings), SegKind::Code);
            i = j + 1;
            continue;
        }

        // An HTML block (a logo, a row of badges, a comment) that opens a block: atomic, up to
        // the blank line that ends it (the `-->` of a comment), so no tag is kept in part.
        if block_start && opens_html_block(line) {
            let comment = trimmed.starts_with("<!--");
            let mut j = i;
            loop {
                let l = &text[lines[j].0..lines[j].1];
                let ends = if comment {
                    l.contains("-->")
                } else {
                    lines.get(j + 1).is_none_or(|n| {
                        let next = text[n.0..n.1].trim();
                        next.is_empty() || raw_element(next).is_some()
                    })
                };
                if ends || j + 1 == lines.len() {
                    break;
                }
                j += 1;
            }
            // A logo or a row of badges is a few lines; a page's markup without blank lines is
            // read line by line instead, so its text can be chosen sentence by sentence.
            if comment || (j - i < HTML_BLOCK_LINES && lines[j].1 - ls <= HTML_BLOCK_BYTES) {
                let (_, end) = trim_range(text, ls, lines[j].1);
                push_capped(&mut out, text, ts, end, block, section_parent(label, &headings), SegKind::Code);
                i = j + 1;
                continue;
            }
        }

        // Markdown heading, or a line in bold alone that serves as one (an issue template's
        // `**Describe the bug**`, a comment's `**alice** commented:`), below every `#` level.
        if let Some(level) = heading_level(trimmed).or_else(|| (!opts.chat && bold_heading(trimmed)).then_some(7)) {
            while headings.last().is_some_and(|&(l, _)| l >= level) {
                headings.pop();
            }
            let parent = headings.last().map(|h| h.1);
            let idx = out.len();
            push_capped(&mut out, text, ts, te, block, parent, SegKind::Header);
            headings.push((level, idx));
            label = None;
            i += 1;
            continue;
        }

        // "Title: …" line: header of its block.
        if trimmed.starts_with("Title:") {
            let idx = out.len();
            push_capped(&mut out, text, ts, te, block, None, SegKind::Header);
            label = Some(idx);
            i += 1;
            continue;
        }

        // Markdown table: header and separator rows are parents of the body rows.
        if trimmed.starts_with('|')
            && i + 1 < lines.len()
            && is_table_separator(text[lines[i + 1].0..lines[i + 1].1].trim())
        {
            let parent = section_parent(label, &headings);
            let head = out.len();
            push_capped(&mut out, text, ts, te, block, parent, SegKind::TableHead);
            let (ss, se) = trim_range(text, lines[i + 1].0, lines[i + 1].1);
            let sep = out.len();
            out.push(Segment { start: ss, end: se, block, parent: Some(head), kind: SegKind::TableHead });
            let mut j = i + 2;
            while j < lines.len() && text[lines[j].0..lines[j].1].trim().starts_with('|') {
                let (rs, re) = trim_range(text, lines[j].0, lines[j].1);
                push_capped(&mut out, text, rs, re, block, Some(sep), SegKind::TableRow);
                j += 1;
            }
            i = j;
            continue;
        }

        // Speaker label at the start of the line.
        let mut body_start = ts;
        if let Some(len) = speaker_label_len(&text[ts..te]) {
            let idx = out.len();
            out.push(Segment { start: ts, end: ts + len, block, parent: None, kind: SegKind::Label });
            label = Some(idx);
            body_start = ts + len;
            while body_start < te && text.as_bytes()[body_start].is_ascii_whitespace() {
                body_start += 1;
            }
        }

        // A paragraph: this line plus hard-wrapped continuation lines (in a quote, lines of
        // the same quote depth: `> ` prefixes are not text).
        let mut j = i;
        let mut end = te;
        while j + 1 < lines.len() {
            let (next_quote, next) = split_quote(text[lines[j + 1].0..lines[j + 1].1].trim_start());
            let (prev_quote, prev) = split_quote(text[lines[j].0..lines[j].1].trim());
            // A lower-case start goes on; so does a number after a line that stops on a
            // lower-case word (`about\n20 minutes`).
            // A hard-wrapped paragraph (an RFC, a plain-text mail) goes on whatever the next
            // line opens with: a long line at the paragraph's own indentation, the next one
            // aligned with it (`… the Lightweight Telemetry Framing Protocol\n(LTFP), a …`).
            let indent = |k: usize| {
                let l = &text[lines[k].0..lines[k].1];
                l.len() - l.trim_start().len()
            };
            // (A rule of dashes or `=` is no text that wraps.)
            let wrapped = prev.chars().count() >= WRAPPED_LINE_CHARS
                && prev.chars().any(char::is_alphanumeric)
                && indent(j + 1) == indent(j)
                && next.starts_with(|c: char| c.is_alphanumeric() || "(\"'`".contains(c));
            let goes_on = next.chars().next().is_some_and(char::is_lowercase)
                || next.starts_with(|c: char| c.is_ascii_digit()) && prev.ends_with(char::is_lowercase)
                || wrapped;
            let continues = goes_on
                && next_quote.matches('>').count() == prev_quote.matches('>').count()
                && !prev.ends_with(['.', '!', '?', ':', '。', '！', '？'])
                && !is_list_item(next)
                && speaker_label_len(next).is_none()
                // A stack trace's exception line is no wrapped text (`requests.exceptions.…`).
                && !super::detect::is_exception_line(next);
            if !continues {
                break;
            }
            j += 1;
            end = trim_range(text, lines[j].0, lines[j].1).1;
        }
        if body_start < end {
            let parent = section_parent(label, &headings);
            // A quote's `>` and a list marker (`-`, `1.`) start the first sentence; they never
            // end one.
            let (quote, body) = split_quote(&text[body_start..end]);
            let marker = quote.len() + if is_list_item(body) { body.find(' ').map_or(0, |k| k + 1) } else { 0 };
            let mut first = true;
            split_sentences(text, body_start + marker, end, |s, e| {
                let s = if std::mem::take(&mut first) { body_start } else { s };
                push_capped(&mut out, text, s, e, block, parent, SegKind::Sentence);
            });
        }
        i = j + 1;
    }
    out
}

/// A line's quote markers (`> `, `>> `, `> > `) and the rest.
fn split_quote(line: &str) -> (&str, &str) {
    let k = line.len() - line.trim_start_matches(['>', ' ']).len();
    if line.starts_with('>') { line.split_at(k) } else { ("", line) }
}

/// Byte ranges of lines, without their line terminators.
fn lines_of(text: &str) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            let end = if i > start && text.as_bytes()[i - 1] == b'\r' { i - 1 } else { i };
            v.push((start, end));
            start = i + 1;
        }
    }
    if start < text.len() {
        v.push((start, text.len()));
    }
    v
}

fn trim_range(text: &str, s: usize, e: usize) -> (usize, usize) {
    let slice = &text[s..e];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    if lead == slice.len() {
        return (s, s);
    }
    (s + lead, e - trail)
}

/// Pushes a segment, cutting it into pieces of at most `MAX_SEGMENT` bytes (at white space
/// when possible, otherwise at a char boundary).
fn push_capped(
    out: &mut Vec<Segment>,
    text: &str,
    mut s: usize,
    e: usize,
    block: usize,
    parent: Option<usize>,
    kind: SegKind,
) {
    // Code blocks and headers are kept atomic up to a larger size.
    let cap = if kind == SegKind::Code { 4 * MAX_SEGMENT } else { MAX_SEGMENT };
    while e - s > cap {
        let mut cut = floor_char_boundary(text, s + cap);
        // Prefer the last white space in the second half of the window.
        let window = &text[s..cut];
        if let Some(ws) = window.rfind(char::is_whitespace)
            && ws > cap / 2
        {
            cut = s + ws;
        } else if e - s <= 2 * cap
            && let Some(ws) = text[s..e].rfind(char::is_whitespace)
            && ws > 0
        {
            cut = s + ws;
        } else if cut <= s {
            cut = ceil_char_boundary(text, s + 1);
        }
        let (ps, pe) = trim_range(text, s, cut);
        if ps < pe {
            out.push(Segment { start: ps, end: pe, block, parent, kind });
        }
        s = cut;
        while s < e {
            let c = text[s..].chars().next().unwrap();
            if !c.is_whitespace() {
                break;
            }
            s += c.len_utf8();
        }
    }
    let (ps, pe) = trim_range(text, s, e);
    if ps < pe {
        out.push(Segment { start: ps, end: pe, block, parent, kind });
    }
}

pub fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Whether `s` is a passage's `Title: …` line.
pub(crate) fn is_title(text: &str, s: &Segment) -> bool {
    s.kind == SegKind::Header && text[s.start..s.end].trim_start().starts_with("Title:")
}

/// The name a header segment gives its passage, as a byte range of `text`: after `Title:` when
/// the line has it, up to the first bracket (`The Rack (1915 film)` names `The Rack`), trimmed.
pub(crate) fn title_name(text: &str, header: &Segment) -> std::ops::Range<usize> {
    let line = &text[header.start..header.end];
    let from = line.find("Title:").map_or(0, |p| p + "Title:".len());
    let to = line[from..].find(['(', '[']).map_or(line.len(), |p| from + p);
    let name = &line[from..to];
    let start = header.start + from + (name.len() - name.trim_start().len());
    start..(header.start + from + name.trim_end().len()).max(start)
}

/// A markdown heading or a line in bold alone that serves as one (see [`bold_heading`]).
pub(crate) fn is_heading(line: &str) -> bool {
    heading_level(line).is_some() || bold_heading(line)
}

/// A line that is a bold phrase alone (`**Describe the bug**`, `**v5:**`, `__Notes__`), or one
/// followed by a short verb phrase and a colon (`**alice** commented:`): a heading in all but
/// its syntax. The phrase has a letter or digit, no other emphasis, and at most 80 bytes.
pub(crate) fn bold_heading(line: &str) -> bool {
    let Some(mark) = ["**", "__"].into_iter().find(|m| line.starts_with(m)) else {
        return false;
    };
    let Some(close) = line[2..].find(mark).map(|k| k + 2) else {
        return false;
    };
    let inner = &line[2..close];
    let rest = line[close + 2..].trim();
    inner.len() <= 80
        && !inner.starts_with(char::is_whitespace)
        && !inner.contains(['*', '_'])
        && inner.chars().any(char::is_alphanumeric)
        && (rest.is_empty()
            || rest == ":"
            || rest.ends_with(':')
                && rest.split_whitespace().count() <= 3
                && rest[..rest.len() - 1].chars().all(|c| c.is_alphabetic() || c == ' '))
}

pub(crate) fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) && line.len() > hashes && line.as_bytes()[hashes].is_ascii_whitespace() {
        Some(hashes)
    } else {
        None
    }
}

fn is_table_separator(line: &str) -> bool {
    line.starts_with('|') && line.contains('-') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
}

/// The element a line opens when it starts with a `<script>`, `<style>` or `<svg>` tag.
pub(crate) fn raw_element(trimmed: &str) -> Option<&'static str> {
    let rest = trimmed.strip_prefix('<')?;
    ["script", "style", "svg"].into_iter().find(|tag| {
        rest.get(..tag.len()).is_some_and(|t| t.eq_ignore_ascii_case(tag))
            && rest[tag.len()..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace())
    })
}

/// Whether `s` is a document's front matter (`---` … `---` YAML or `+++` … `+++` TOML at the
/// very top, one segment).
pub(crate) fn is_front_matter(text: &str, s: &Segment) -> bool {
    let t = &text[s.start..s.end];
    s.start == text.len() - text.trim_start().len()
        && s.kind == SegKind::Code
        && (t.starts_with("---\n") || t.starts_with("---\r\n") || t.starts_with("+++\n") || t.starts_with("+++\r\n"))
}

/// Front matter longer than this many lines is not taken for front matter.
const FRONT_MATTER_LINES: usize = 64;

/// An HTML block longer than this (lines or bytes) is not one segment (see [`segment`]).
const HTML_BLOCK_LINES: usize = 12;
const HTML_BLOCK_BYTES: usize = 2048;

/// True when line `i` opens a subtitle cue: it is a cue's timing line, or an identifier (a
/// number, a short name) right above one.
fn opens_cue(text: &str, lines: &[(usize, usize)], i: usize) -> bool {
    let line = |k: usize| lines.get(k).map(|&(a, b)| &text[a..b]);
    line(i).is_some_and(is_cue_timing)
        || line(i).is_some_and(|l| !l.contains("-->") && l.trim().len() <= 64) && line(i + 1).is_some_and(is_cue_timing)
}

/// A subtitle cue's timing line: `00:00:06,500 --> 00:00:09,000` (SRT) or `00:06.500 -->
/// 00:09.000 align:start` (WebVTT, hours optional, settings after).
pub(crate) fn is_cue_timing(line: &str) -> bool {
    let stamp = |s: &str| {
        let s = s.trim();
        let (clock, frac) = match s.rsplit_once([',', '.']) {
            Some(p) => p,
            None => return false,
        };
        let parts: Vec<&str> = clock.split(':').collect();
        (2..=3).contains(&parts.len())
            && parts.iter().all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
            && frac.len() == 3
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    line.split_once(" --> ").is_some_and(|(from, to)| {
        stamp(from.trim_start_matches('\u{feff}')) && stamp(to.split_whitespace().next().unwrap_or(""))
    })
}

/// A line that opens an HTML block: at most three spaces, then `<` and a tag name, a closing
/// tag, or a comment.
fn opens_html_block(line: &str) -> bool {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let t = &line[indent..];
    indent <= 3
        && t.strip_prefix('<').is_some_and(|r| {
            r.starts_with("!--") || r.trim_start_matches('/').starts_with(|c: char| c.is_ascii_alphabetic())
        })
}

pub(crate) fn is_list_item(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && b[1] == b' ' || line.starts_with("\u{2022} ") {
        return true;
    }
    // `(1) `, `(a) `, `(iv) `: a contract's parties, clauses and recitals.
    if b.first() == Some(&b'(') {
        let label = b[1..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        return (1..=4).contains(&label) && b.get(label + 1) == Some(&b')') && b.get(label + 2) == Some(&b' ');
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && digits < 4 && b.len() > digits + 1 && matches!(b[digits], b'.' | b')') && b[digits + 1] == b' '
}

/// Length of a speaker label (`User:`, `Assistant:`, `Dr. Smith:`, `[10:32] Bob:` is not one)
/// at the start of a line: 1–3 words of letters, then `:` and white space.
fn speaker_label_len(line: &str) -> Option<usize> {
    let colon = line.find(':')?;
    if colon == 0 || colon > 32 {
        return None;
    }
    let name = &line[..colon];
    let after = &line[colon + 1..];
    if !after.starts_with([' ', '\t']) || after.trim().is_empty() {
        return None;
    }
    let words = name.split_whitespace().count();
    let first = name.chars().next()?;
    if words == 0
        || words > 3
        || !first.is_uppercase()
        || !name.chars().all(|c| c.is_alphabetic() || c == ' ' || c == '.' || c == '-' || c == '_')
    {
        return None;
    }
    Some(colon + 1)
}

/// Words after which a period does not end a sentence (compared lower-cased, without the dot).
const ABBREVIATIONS: &[&str] = &[
    "al", "approx", "apr", "aug", "ave", "blvd", "c", "ca", "capt", "cf", "co", "col", "corp", "dec", "dept", "dr",
    "e.g", "eg", "est", "etc", "feb", "fig", "figs", "gen", "gov", "i.e", "ie", "inc", "jan", "jr", "jul", "jun", "lt",
    "ltd", "mar", "mr", "mrs", "ms", "mt", "no", "nos", "nov", "oct", "op", "p", "pp", "prof", "rep", "rev", "sen",
    "sep", "sept", "sgt", "sr", "st", "vol", "vs",
];

/// How long a bracket or a quotation may stay open before a sentence may end inside it anyway.
const MAX_BRACKET: usize = 600;
/// How long a quotation that the text closes again may stay one piece (several sentences of a
/// quoted passage): cut, its pieces would leave an unbalanced quote in an output.
const MAX_QUOTE: usize = 2_000;

/// Calls `f(start, end)` for each sentence in `text[s..e]` (trimmed, non-empty).
pub fn split_sentences(text: &str, s: usize, e: usize, mut f: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut start = s;
    let mut i = s;
    // Open round or square brackets since `start`, and where the outermost opened: a sentence
    // does not end inside brackets ("(c. 1450 – c. 1500)", "(German: Georg II. August)") unless
    // the bracket has run on for more than `MAX_BRACKET` bytes (an unclosed one).
    // Double quotes likewise: a quotation of several sentences stays one piece.
    let mut depth = 0usize;
    let mut opened = s;
    // An open quotation: where it opened and, if the text closes it, where.
    let mut quoted: Option<(usize, Option<usize>)> = None;
    while i < e {
        let c = text[i..].chars().next().unwrap();
        let clen = c.len_utf8();
        match c {
            '(' | '[' => {
                if depth == 0 {
                    opened = i;
                }
                depth += 1;
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            '"' if quoted.is_some() => quoted = None,
            '"' | '“' => quoted = Some((i, text[i + clen..e].find(['"', '”']).map(|k| i + clen + k))),
            '”' => quoted = None,
            _ => {}
        }
        let cjk_end = matches!(c, '。' | '！' | '？');
        let latin_end = matches!(c, '.' | '!' | '?' | '…');
        if !cjk_end && !latin_end || depth > 0 && i - opened < MAX_BRACKET {
            i += clen;
            continue;
        }
        // Swallow repeated end marks and closing quotes/brackets.
        let mut j = i + clen;
        while j < e {
            let d = text[j..].chars().next().unwrap();
            // A straight quote closes only an open quotation; otherwise it opens one
            // (`Henry J." Red" Krause`) and the sentence does not end before it.
            if d == '"' && quoted.is_none() {
                break;
            }
            if matches!(
                d,
                '.' | '!' | '?' | '…' | '"' | '\'' | ')' | ']' | '”' | '’' | '」' | '』' | '）' | '。' | '！' | '？'
            ) {
                match d {
                    ')' | ']' => depth = depth.saturating_sub(1),
                    '"' | '”' => quoted = None,
                    _ => {}
                }
                j += d.len_utf8();
            } else {
                break;
            }
        }
        if quoted.is_some_and(|(q, close)| j - q < MAX_BRACKET || close.is_some_and(|c| c - q < MAX_QUOTE)) {
            i = j;
            continue;
        }
        if cjk_end {
            f_trimmed(text, start, j, &mut f);
            start = j;
            i = j;
            depth = 0;
            quoted = None;
            continue;
        }
        // Latin: needs white space after, then not a lower-case start. A run of four dots or
        // more (a leader, a test runner's `....F...`) ends nothing.
        let leader = text[i..j].matches('.').count() >= 4;
        if j >= e || !bytes[j].is_ascii_whitespace() || leader {
            i = j;
            continue;
        }
        let mut k = j;
        while k < e && bytes[k].is_ascii_whitespace() {
            k += 1;
        }
        let next = text[k..e].chars().next();
        let lower_next = next.is_some_and(|n| n.is_lowercase());
        if lower_next || (c == '.' && j == i + 1 && is_abbreviation(text, start, i)) {
            i = j;
            continue;
        }
        f_trimmed(text, start, j, &mut f);
        start = k;
        i = k;
        depth = 0;
        quoted = None;
    }
    if start < e {
        f_trimmed(text, start, e, &mut f);
    }
}

fn f_trimmed(text: &str, s: usize, e: usize, f: &mut impl FnMut(usize, usize)) {
    let (ts, te) = trim_range(text, s, e);
    if ts < te {
        f(ts, te);
    }
}

/// Is the word ending just before the period at `dot` an abbreviation?
fn is_abbreviation(text: &str, sentence_start: usize, dot: usize) -> bool {
    let before = &text[sentence_start..dot];
    let word = before.rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"').next().unwrap_or("");
    if word.is_empty() {
        return false;
    }
    let mut chars = word.chars();
    let first = chars.next().unwrap();
    // Single capital letter: an initial ("J. R. R. Tolkien").
    if chars.next().is_none() && first.is_uppercase() {
        return true;
    }
    // Dotted acronyms: "U.S", "e.g", "Ph.D".
    if word.contains('.') && word.split('.').all(|p| p.chars().count() <= 2 && !p.is_empty()) {
        return true;
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.binary_search(&lower.as_str()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        split_sentences(text, 0, text.len(), |s, e| v.push(&text[s..e]));
        v
    }

    #[test]
    fn a_run_of_dots_is_a_leader_not_a_sentence_end() {
        let progress = "tests/test_api.py .................................................. [69%]";
        assert_eq!(sentences(progress), vec![progress]);
        let toc = "Introduction .......... 3 Methods .......... 9";
        assert_eq!(sentences(toc), vec![toc]);
        // Three dots still end a sentence before a capital.
        assert_eq!(sentences("He waited... Then he left."), vec!["He waited...", "Then he left."]);
    }

    fn segs(text: &str) -> Vec<&str> {
        segment(text, SegmentOptions::default()).iter().map(|s| &text[s.start..s.end]).collect()
    }

    #[test]
    fn an_html_block_is_one_segment() {
        let text = "<div align=\"center\">\n  <picture>\n    <img\n      src=\"logo.png\"\n    />\n  </picture>\n</div>\n\n\
                    # Title\n\nSome text. More text.\n\n<!-- a comment\n\nover lines -->\n\nThe end.";
        let s = segs(text);
        assert_eq!(
            s[0],
            "<div align=\"center\">\n  <picture>\n    <img\n      src=\"logo.png\"\n    />\n  </picture>\n</div>"
        );
        assert!(s.contains(&"<!-- a comment\n\nover lines -->"), "{s:?}");
        assert!(s.contains(&"Some text."), "{s:?}");
        // Inline HTML inside a paragraph is text.
        assert_eq!(segs("A line.\n<b>bold</b> words."), ["A line.", "<b>bold</b> words."]);
    }

    #[test]
    fn list_items_by_their_markers() {
        for item in
            ["- a", "* a", "+ a", "1. a", "12) a", "\u{2022} a", "(1) NORTHGATE", "(a) the Client", "(iv) any SOW"]
        {
            assert!(is_list_item(item), "{item}");
        }
        for not in ["-a", "1.5 a", "2024. a", "(see above) a", "(1)a", "() a", "(costs) a"] {
            assert!(!is_list_item(not), "{not}");
        }
    }

    #[test]
    fn abbreviation_list_is_sorted() {
        assert!(ABBREVIATIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn sentences_survive_abbreviations_decimals_and_urls() {
        let text = "Dr. Smith paid $3.14 in the U.S. Army store. See https://example.com/a.b?x=1. \
                    J. R. R. Tolkien wrote it, e.g. in 1937! Really? Yes.";
        assert_eq!(
            sentences(text),
            [
                "Dr. Smith paid $3.14 in the U.S. Army store.",
                "See https://example.com/a.b?x=1.",
                "J. R. R. Tolkien wrote it, e.g. in 1937!",
                "Really?",
                "Yes."
            ]
        );
    }

    #[test]
    fn sentences_do_not_end_inside_brackets() {
        let text = "John Cabot (c. 1450 – c. 1500) explored the coast. George II (German: Georg II. \
                    August; 1683) was king. The Talmud has two parts (the Mishnah. And more.";
        let s = sentences(text);
        assert_eq!(s[0], "John Cabot (c. 1450 – c. 1500) explored the coast.");
        assert_eq!(s[1], "George II (German: Georg II. August; 1683) was king.");
        assert!(s[2].starts_with("The Talmud has two parts (the Mishnah."));
        assert_eq!(
            sentences("Henry J.\" Red\" Krause played. He won."),
            ["Henry J.\" Red\" Krause played.", "He won."]
        );
        let text = "Atwood wrote: \"Chopin roused them. Some sought solace.\" Others did not. \
                    He said “Go. Now.” Then he left.";
        assert_eq!(
            sentences(text),
            [
                "Atwood wrote: \"Chopin roused them. Some sought solace.\"",
                "Others did not.",
                "He said “Go. Now.”",
                "Then he left."
            ]
        );
    }

    #[test]
    fn a_title_names_its_passage_without_its_brackets() {
        let text = "Title: The Rack (1915 film)\nThe Rack is a film.\n\n## Install [beta]\nRun it.";
        let s = segment(text, SegmentOptions::default());
        let names: Vec<&str> =
            s.iter().filter(|g| g.kind == SegKind::Header).map(|g| &text[title_name(text, g)]).collect();
        assert_eq!(names, ["The Rack", "## Install"]);
    }

    #[test]
    fn cjk_punctuation_ends_sentences() {
        assert_eq!(
            sentences("今日は晴れです。明日は雨！本当？「はい。」終わり"),
            ["今日は晴れです。", "明日は雨！", "本当？", "「はい。」", "終わり"]
        );
    }

    #[test]
    fn quotes_stay_with_their_sentence() {
        assert_eq!(sentences("He said \"Stop.\" Then he left."), ["He said \"Stop.\"", "Then he left."]);
        // A quoted passage of several sentences, longer than a bracket may stay open, is one
        // piece when the text closes it; a quote never closed holds only so long.
        let long =
            format!("He wrote: \"{}\" Then he left.", "It rained all day in the old town. ".repeat(25).trim_end());
        let pieces = sentences(&long);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces[0].ends_with("town.\""), "{pieces:?}");
        let stray = format!("He wrote: \"{}", "It rained all day in the old town. ".repeat(25));
        assert!(sentences(&stray).len() > 2);
    }

    #[test]
    fn titles_are_parents_of_their_passage() {
        let text = "Title: Bee Gees\nThey sang. They danced.\n\nTitle: Other\nText here.";
        let s = segment(text, SegmentOptions::default());
        let texts: Vec<&str> = s.iter().map(|x| &text[x.start..x.end]).collect();
        assert_eq!(texts, ["Title: Bee Gees", "They sang.", "They danced.", "Title: Other", "Text here."]);
        assert_eq!(s[1].parent, Some(0));
        assert_eq!(s[4].parent, Some(3));
        assert_eq!(s[4].block, 1);
        assert_eq!(s[0].kind, SegKind::Header);
    }

    #[test]
    fn markdown_structure() {
        let text = "# Top\n\nIntro text.\n\n## Sub\n\n- item one\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n\nmore\n```\n";
        let s = segment(text, SegmentOptions::default());
        let texts: Vec<&str> = s.iter().map(|x| &text[x.start..x.end]).collect();
        assert_eq!(
            texts,
            [
                "# Top",
                "Intro text.",
                "## Sub",
                "- item one",
                "- item two",
                "| a | b |",
                "|---|---|",
                "| 1 | 2 |",
                "```\ncode\n\nmore\n```"
            ]
        );
        assert_eq!(s[1].parent, Some(0));
        assert_eq!(s[2].parent, Some(0));
        assert_eq!(s[3].parent, Some(2));
        assert_eq!(s[7].parent, Some(6));
        assert_eq!(s[6].parent, Some(5));
        assert_eq!(s[8].kind, SegKind::Code);
    }

    #[test]
    fn a_line_in_bold_alone_is_a_heading_over_what_follows() {
        for line in ["**Describe the bug**", "**v4 (master):**", "__Notes__", "**alice** commented:", "**Impact**:"] {
            assert!(bold_heading(line), "{line}");
        }
        for line in [
            "**Impact:** 🔴 **CRITICAL BREAKING CHANGE**",
            "**Note** that the cache is per thread.",
            "** not bold **",
            "**a** and **b**",
            "****",
            "__init__.py holds the package",
        ] {
            assert!(!bold_heading(line), "{line}");
        }
        let text = "**To Reproduce**\nRun the build.\n\n**Expected**\nIt passes.\n\n# Notes\nNone.";
        let segs = segment(text, SegmentOptions::default());
        let kinds: Vec<(SegKind, Option<usize>)> = segs.iter().map(|s| (s.kind, s.parent)).collect();
        assert_eq!(
            kinds,
            [
                (SegKind::Header, None),
                (SegKind::Sentence, Some(0)),
                (SegKind::Header, None),
                (SegKind::Sentence, Some(2)),
                (SegKind::Header, None),
                (SegKind::Sentence, Some(4)),
            ]
        );
    }

    #[test]
    fn speaker_labels_are_kept_apart_as_parents() {
        let text = "User: Hello there. How are you?\nAssistant: Fine. Thanks!";
        let s = segment(text, SegmentOptions { chat: true, ..Default::default() });
        let texts: Vec<&str> = s.iter().map(|x| &text[x.start..x.end]).collect();
        assert_eq!(texts, ["User:", "Hello there.", "How are you?", "Assistant:", "Fine.", "Thanks!"]);
        assert_eq!(s[2].parent, Some(0));
        assert_eq!(s[5].parent, Some(3));
    }

    #[test]
    fn hard_wrapped_lines_are_joined() {
        assert_eq!(
            segs("The quick brown fox\njumps over the dog. Next one.\nNew line here"),
            ["The quick brown fox\njumps over the dog.", "Next one.", "New line here"]
        );
    }

    #[test]
    fn huge_runs_are_cut_into_bounded_pieces() {
        let text = "a".repeat(10_000);
        let s = segment(&text, SegmentOptions::default());
        assert!(s.len() >= 5);
        assert!(s.iter().all(|x| x.end - x.start <= MAX_SEGMENT));
        assert_eq!(s.iter().map(|x| x.end - x.start).sum::<usize>(), 10_000);
        let text = "é".repeat(3_000);
        let s = segment(&text, SegmentOptions::default());
        assert!(s.iter().all(|x| text.is_char_boundary(x.start) && text.is_char_boundary(x.end)));
    }
}
