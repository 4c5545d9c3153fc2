//! Email threads copied from a mail client: messages under `From:` / `Sent:` / `To:` /
//! `Subject:` header blocks (quoted with `>` or not), or under `On … wrote:` lines; and
//! helpdesk ticket exports, whose replies open with a rule, their author's line and a date.
//!
//! Read as prose, a thread's greetings ("Hi Daniel,"), sign-offs ("Best,\nHelen"), signatures
//! and address lines are each a short paragraph, so each ranks as a paragraph's first sentence
//! and they fill the budget before the messages' substance. [`roles`] tells the ranking what
//! they are:
//! - the sentences of a message's body come with its `From:` line (who wrote them), as a chat
//!   turn comes with its speaker; its date line comes with the `From:` line too, when there is
//!   room after the substance;
//! - the thread's subject is kept first, once (`RE: …` repeats of it are worth nothing);
//! - greetings, everything from a sign-off on (the name, the signature, "Sent from my
//!   iPhone"), address lines (`To:`, `Cc:`), separators (`-----Original Message-----`) and a
//!   sentence repeated from earlier in the thread (a quoted copy, a legal footer) are worth
//!   nothing.

use super::rank::MONTHS;
use super::segment::{SegKind, Segment};

/// What the ranking should make of each segment of an email thread.
pub struct Roles {
    /// Factor on each segment's utility: 0 for boilerplate, 1 for the messages' substance.
    pub weight: Vec<f64>,
    /// The thread's subject line (its text after `Subject:`), to keep first.
    pub subject: Option<usize>,
    /// Each segment's parent: a body segment without one comes with its message's `From:` line.
    pub parent: Vec<Option<usize>>,
}

impl Roles {
    /// Weighs `utility` (value × cost, per segment): boilerplate to nothing, the subject to
    /// the best value of any segment, so it comes first.
    pub fn apply(&self, utility: &mut [f64], cost: &dyn Fn(usize) -> usize) {
        for (u, w) in utility.iter_mut().zip(&self.weight) {
            *u *= w;
        }
        if let Some(s) = self.subject {
            let best = (0..utility.len()).map(|i| utility[i] / cost(i).max(1) as f64).fold(0.0, f64::max);
            utility[s] = best * cost(s).max(1) as f64;
        }
    }
}

/// Factor on a message's date line, which comes with its `From:` line: after the messages'
/// substance (each message's `From:` and date lines cost 25–35 tokens; a six-message thread at
/// 4x kept one fact fewer with every date).
const DATE_WEIGHT: f64 = 0.2;
/// A sentence repeated from earlier in the thread is dropped from this many words up (short
/// ones, "Thanks!", may well be said twice).
const REPEAT_WORDS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    From,
    Date,
    Address,
    Subject,
    Other,
}

/// The header field a line (without its quote markers) opens, if any.
fn field(line: &str) -> Option<Field> {
    let (name, rest) = line.split_once(':')?;
    if !rest.starts_with([' ', '\t']) && !rest.is_empty() {
        return None;
    }
    Some(match name {
        "From" => Field::From,
        "Sent" | "Date" => Field::Date,
        "To" | "Cc" | "CC" | "Bcc" | "BCC" | "Reply-To" => Field::Address,
        "Subject" => Field::Subject,
        "Attachments" | "Attachment" | "Importance" => Field::Other,
        _ => return None,
    })
}

/// A reply's quote introduction: `On Mon, 16 Sep 2024 at 09:07, Rachel <r@x.com> wrote:`.
fn quote_intro(line: &str) -> bool {
    line.starts_with("On ") && line.ends_with("wrote:") && line.len() < 300
}

/// A line that only separates messages.
fn separator(line: &str) -> bool {
    let t = line.trim();
    (t.starts_with("-----") && t.ends_with("-----") && t.len() > 10)
        || t == "[quoted text hidden]"
        || (t.len() >= 3 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*')))
}

/// The line without its quote markers (`> `, `>> `).
fn unquoted(line: &str) -> &str {
    line.trim_start().trim_start_matches(['>', ' ', '\t']).trim_end()
}

fn words(line: &str) -> usize {
    line.split_whitespace().count()
}

/// A greeting: "Hi Daniel,", "Morning both,", "Helen,", "Hello!".
fn greeting(line: &str) -> bool {
    let w = words(line);
    (w <= 4 && line.ends_with(',')) || (w <= 2 && line.ends_with('!'))
}

/// A sign-off: "Best,", "Thanks!", "Kind regards,", "Have a lovely weekend,", "--".
fn sign_off(line: &str) -> bool {
    line == "--" || (words(line) <= 5 && line.ends_with([',', '!']))
}

/// A reply's author line in a ticket export: one to six words, capitalised, ending no
/// sentence ("Priya Raman", "Autoresponder (Helpdesk)").
fn author_line(line: &str) -> bool {
    (1..=6).contains(&words(line))
        && line.starts_with(|c: char| c.is_uppercase())
        && !line.ends_with(['.', ':', '!', '?', ','])
        && field(line).is_none()
}

/// A line that gives a date: a year (19xx, 20xx) and a time or a month's name, and few words
/// besides ("Mon, 4 Mar 2024 at 09:12 CET", "2024-03-04 09:12").
fn date_line(line: &str) -> bool {
    let year =
        line.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() == 4 && (d.starts_with("19") || d.starts_with("20")));
    let time = line.as_bytes().windows(3).any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit());
    let month = line
        .split(|c: char| !c.is_alphabetic())
        .any(|w| w.len() >= 3 && MONTHS.iter().any(|m| w.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(&m[..3]))));
    words(line) <= 10 && year && (time || month)
}

/// A line that reads as a paragraph of its own: eight words or more, ending a sentence.
fn paragraph(line: &str) -> bool {
    words(line) >= 8 && line.ends_with(['.', '?', '!'])
}

/// A line of one to four capitalised words and nothing else: a name, a job title; also signed
/// with a slash or a dash before it ("/Martin", "- Priya", "—Helen").
fn name_line(line: &str) -> bool {
    let line = match line.strip_prefix(['/', '-', '\u{2013}', '\u{2014}']) {
        Some(rest) => rest.trim_start(),
        None => line,
    };
    let w = words(line);
    (1..=4).contains(&w)
        && line.split_whitespace().all(|w| {
            w.starts_with(|c: char| c.is_uppercase()) && w.chars().all(|c| c.is_alphabetic() || "-.'&".contains(c))
        })
}

/// A subject without its `RE:` / `Fwd:` prefixes, for comparing.
fn bare_subject(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let lower = t.to_ascii_lowercase();
        match ["re:", "fw:", "fwd:", "aw:", "sv:"].iter().find(|p| lower.starts_with(**p)) {
            Some(p) => t = t[p.len()..].trim_start(),
            None => return t.to_string(),
        }
    }
}

/// The roles of `segs` when `text` is an email thread (at least one header block with `From:`
/// and a subject or date, or two `On … wrote:` messages); `None` otherwise.
pub fn roles(text: &str, segs: &[Segment]) -> Option<Roles> {
    // Lines: (start, end, content without quote markers).
    // (Lines of a code block count as blank: an email shown in a README's fence is no thread.)
    let mut code = segs.iter().filter(|s| s.kind == SegKind::Code).map(|s| (s.start, s.end)).peekable();
    let mut lines: Vec<(usize, usize, &str)> = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        while code.next_if(|&(_, e)| e <= at).is_some() {}
        let in_code = code.peek().is_some_and(|&(s, e)| s <= at && at < e);
        lines.push((at, at + l.len(), if in_code { "" } else { unquoted(l) }));
        at += l.len();
    }
    // Message starts: header blocks (From + date or subject) and quote introductions. Per
    // line: its header field, if it is in a message's header block.
    let mut fields: Vec<Option<Field>> = vec![None; lines.len()];
    let mut starts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if quote_intro(lines[i].2) {
            starts.push(i);
            fields[i] = Some(Field::From);
            i += 1;
            continue;
        }
        // A helpdesk ticket's reply: a rule, then its author's line and a date line.
        if separator(lines[i].2) && lines[i].2.len() >= 10 {
            let author = (i + 1..lines.len()).find(|&k| !lines[k].2.is_empty());
            if let Some(a) = author
                && a + 1 < lines.len()
                && author_line(lines[a].2)
                && date_line(lines[a + 1].2)
            {
                starts.push(a);
                fields[a] = Some(Field::From);
                fields[a + 1] = Some(Field::Date);
                i = a + 2;
                continue;
            }
        }
        let block: Vec<Field> = lines[i..].iter().map_while(|l| field(l.2)).collect();
        if block.contains(&Field::From) && block.iter().any(|f| matches!(f, Field::Date | Field::Subject)) {
            starts.push(i);
            for (k, f) in block.iter().enumerate() {
                fields[i + k] = Some(*f);
            }
            i += block.len();
        } else {
            i += 1;
        }
    }
    let headed = fields.iter().filter(|f| **f == Some(Field::From)).count();
    let with_subject = fields.contains(&Some(Field::Subject));
    if headed == 0 || (headed == 1 && !with_subject) {
        return None;
    }

    // Per line: its factor, and for body lines the line of their message's `From:`.
    let mut weight = vec![1.0f64; lines.len()];
    let mut from_line: Vec<Option<usize>> = vec![None; lines.len()];
    let mut date_of: Vec<(usize, usize)> = Vec::new();
    let mut subject_line = None;
    let mut subjects_seen: Vec<String> = Vec::new();
    for (m, &start) in starts.iter().enumerate() {
        let end = starts.get(m + 1).copied().unwrap_or(lines.len());
        let from = (start..end).find(|&k| fields[k] == Some(Field::From));
        let date = (start..end).find(|&k| fields[k] == Some(Field::Date));
        if let (Some(f), Some(d)) = (from, date) {
            date_of.push((d, f));
        }
        let mut body: Vec<usize> = Vec::new();
        for k in start..end {
            match fields[k] {
                Some(Field::From) | Some(Field::Address) => weight[k] = 0.0,
                Some(Field::Date) => weight[k] = DATE_WEIGHT,
                Some(Field::Subject) => {
                    let bare = bare_subject(lines[k].2.split_once(':').map_or("", |x| x.1));
                    if subjects_seen.contains(&bare) {
                        weight[k] = 0.0;
                    } else {
                        subject_line.get_or_insert(k);
                        subjects_seen.push(bare);
                    }
                }
                Some(Field::Other) => {}
                None if separator(lines[k].2) => weight[k] = 0.0,
                None if !lines[k].2.is_empty() => body.push(k),
                None => {}
            }
            if fields[k].is_none() {
                from_line[k] = from;
            }
        }
        // The greeting.
        if let Some(&first) = body.first()
            && greeting(lines[first].2)
        {
            weight[first] = 0.0;
        }
        // From a sign-off to the next paragraph (a legal footer, a P.S.): the name, the
        // signature's titles, numbers and addresses.
        if let Some(p) = body.iter().skip(1).position(|&k| sign_off(lines[k].2)) {
            for &k in body[p + 1..].iter().take_while(|&&k| !paragraph(lines[k].2)) {
                weight[k] = 0.0;
            }
        }
        // A signature without a sign-off: a name alone on its line ("Daniel", then a blank
        // line) or opening the message's last block ("Helen Osei", "Senior Event Manager"),
        // with no paragraph after it.
        let blank_after = |k: usize| lines.get(k + 1).is_none_or(|l| l.2.is_empty());
        let last_block = body.iter().rposition(|&k| k == 0 || lines[k - 1].2.is_empty()).unwrap_or(0);
        if let Some(p) = body.iter().enumerate().skip(1).position(|(j, &k)| {
            name_line(lines[k].2)
                && (blank_after(k) || j == last_block)
                && !body.iter().any(|&later| later > k && paragraph(lines[later].2))
        }) {
            for &k in &body[p + 1..] {
                weight[k] = 0.0;
            }
        }
    }

    // Per segment: the factor and parent of the line it starts on; a sentence said before is
    // worth nothing.
    let line_of = |offset: usize| lines.partition_point(|l| l.1 <= offset).min(lines.len() - 1);
    let mut seg_weight = vec![1.0f64; segs.len()];
    let mut parent: Vec<Option<usize>> = segs.iter().map(|s| s.parent).collect();
    let mut subject = None;
    let mut said: std::collections::HashSet<String> = Default::default();
    // The segments that open and end each line (a `From:` line's name, after its label).
    let mut first_on_line: Vec<Option<usize>> = vec![None; lines.len()];
    let mut last_on_line: Vec<Option<usize>> = vec![None; lines.len()];
    for (i, s) in segs.iter().enumerate() {
        let l = line_of(s.start);
        first_on_line[l].get_or_insert(i);
        last_on_line[l] = Some(i);
    }
    // A segment without a parent, or only its heading's (which the sender line has), comes
    // with its sender.
    let free = |parent: &[Option<usize>], i: usize| parent[i].is_none_or(|p| segs[p].kind == SegKind::Header);
    // A date line's first segment (its label) comes with the sender's line.
    for &(d, f) in &date_of {
        if let (Some(first), Some(from)) = (first_on_line[d], last_on_line[f])
            && from < first
            && free(&parent, first)
        {
            parent[first] = Some(from);
        }
    }
    for (i, s) in segs.iter().enumerate() {
        let l = line_of(s.start);
        seg_weight[i] = weight[l];
        if Some(l) == subject_line && s.kind != SegKind::Label {
            subject = Some(i);
        }
        let piece = text[s.start..s.end].split_whitespace().filter(|w| !w.starts_with('>')).collect::<Vec<_>>();
        if piece.len() >= REPEAT_WORDS && !said.insert(piece.join(" ")) {
            seg_weight[i] = 0.0;
        }
        if free(&parent, i)
            && let Some(from) = from_line[l].and_then(|f| last_on_line[f])
            && from < i
        {
            parent[i] = Some(from);
        }
    }
    Some(Roles { weight: seg_weight, subject, parent })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::segment::{SegmentOptions, segment};

    const THREAD: &str = "From: Helen Osei <h.osei@example.com>\n\
        Sent: Friday, September 13, 2024 4:52 PM\n\
        To: Daniel Whitcombe <daniel@example.com>\n\
        Subject: RE: Partner Summit venue change\n\
        \n\
        Hi Daniel,\n\
        \n\
        The Granary Rooms are booked for 7 November. The deposit is due by 27 September.\n\
        \n\
        Best,\n\
        Helen\n\
        \n\
        Helen Osei\n\
        Senior Event Manager\n\
        \n\
        -----Original Message-----\n\
        From: Daniel Whitcombe <daniel@example.com>\n\
        Sent: Friday, September 13, 2024 2:15 PM\n\
        Subject: Partner Summit venue change\n\
        \n\
        Helen,\n\
        \n\
        Let's go with the Granary Rooms. Thanks!\n\
        \n\
        Daniel\n";

    #[test]
    fn a_thread_reads_its_boilerplate_as_boilerplate() {
        let segs = segment(THREAD, SegmentOptions::default());
        let r = roles(THREAD, &segs).expect("an email thread");
        let at =
            |p: &str| segs.iter().position(|s| THREAD[s.start..s.end].trim() == p).unwrap_or_else(|| panic!("{p}"));
        for boilerplate in [
            "Hi Daniel,",
            "Best,",
            "Helen",
            "Senior Event Manager",
            "-----Original Message-----",
            "Helen,",
            "Daniel",
            "To:",
        ] {
            assert_eq!(r.weight[at(boilerplate)], 0.0, "{boilerplate}");
        }
        for substance in ["The Granary Rooms are booked for 7 November.", "Let's go with the Granary Rooms."] {
            assert_eq!(r.weight[at(substance)], 1.0, "{substance}");
        }
        // Each body sentence comes with its message's sender; the subject is the first one.
        let booked = at("The Granary Rooms are booked for 7 November.");
        let helen = at("Helen Osei <h.osei@example.com>");
        assert_eq!(r.parent[booked], Some(helen));
        let date = at("Friday, September 13, 2024 4:52 PM");
        assert_eq!(r.parent[date - 1], Some(helen));
        let go = at("Let's go with the Granary Rooms.");
        let daniel = segs.iter().rposition(|s| &THREAD[s.start..s.end] == "From:").unwrap() + 1;
        assert_eq!(r.parent[go], Some(daniel));
        assert_eq!(r.subject, Some(at("RE: Partner Summit venue change")));
        assert_eq!(r.weight[at("Partner Summit venue change")], 0.0);
    }

    #[test]
    fn a_ticket_export_reads_each_reply_under_its_author() {
        let rule = "-".repeat(69);
        let ticket = format!(
            "Ticket #48213 - Invoices show wrong VAT\n=======================================\n\
             Status:        Pending\n\n{rule}\nMartin Lindqvist\nMon, 4 Mar 2024 at 09:12 CET\n\n\
             Hello,\n\nOur invoices show Swedish VAT since the plan change.\n\nBest regards,\nMartin\n\n\
             {rule}\nPriya Raman (Agent)\nTue, 5 Mar 2024 at 09:31 CET\n\nHi Martin,\n\n\
             I have restored the reverse-charge status on your account.\n\n/Priya\n"
        );
        let segs = segment(&ticket, SegmentOptions::default());
        let r = roles(&ticket, &segs).expect("a ticket's replies");
        let at =
            |p: &str| segs.iter().position(|s| ticket[s.start..s.end].trim() == p).unwrap_or_else(|| panic!("{p}"));
        // The rule above an author's line is no text that wraps onto it.
        let martin = at("Martin Lindqvist");
        assert_eq!(r.parent[at("Our invoices show Swedish VAT since the plan change.")], Some(martin));
        assert_eq!(
            r.parent[at("I have restored the reverse-charge status on your account.")],
            Some(at("Priya Raman (Agent)"))
        );
        assert_eq!(r.parent[at("Mon, 4 Mar 2024 at 09:12 CET")], Some(martin));
        for boilerplate in ["Hello,", "Best regards,", "Martin", "Hi Martin,", "/Priya", "Martin Lindqvist"] {
            assert_eq!(r.weight[at(boilerplate)], 0.0, "{boilerplate}");
        }
    }

    #[test]
    fn prose_with_a_from_line_or_a_mail_in_a_code_block_is_no_thread() {
        let text = "From: the desk of the editor\n\nThe issue goes to print on Monday. Send corrections by Friday.\n";
        assert!(roles(text, &segment(text, SegmentOptions::default())).is_none());
        let readme = "# Mailer\n\nThe mailer sends messages like this one:\n\n```\nFrom: a@example.com\nTo: b@example.com\n\
                      Subject: Hello\n\nHi there,\n```\n\nConfigure it in `mailer.toml`.\n";
        assert!(roles(readme, &segment(readme, SegmentOptions::default())).is_none());
    }
}
