//! Content-type detection: prose, markdown, code, JSON, logs or chat.
//!
//! Cheap by construction: only JSON looks at the whole text (a linear bracket-depth scan and
//! `serde_json`'s iterative validator, run only when the trimmed text starts and ends like an
//! object or array); every other test looks at the first [`SAMPLE_LINES`] lines, each cut to
//! [`LINE_PREFIX`] bytes, within the first [`SAMPLE_BYTES`] bytes. A 1 MB single line or 1 MB of
//! one character costs a few microseconds beyond the JSON check.
//!
//! Order of the tests, first match wins:
//! 1. JSON: the trimmed text is an object or array that parses (see `json::is_json_document`).
//! 2. Chat: at least two lines start with a speaker label (`User:`, `Assistant:`, `Human:`,
//!    `AI:`, `System:`, `[user]`, `### Assistant`…) from at least two different speakers, and
//!    labelled lines are at least 10% of the non-blank lines.
//! 3. Logs: at least 3 lines, and at least 40% of the non-blank lines, carry a timestamp or a
//!    level word (`INFO`, `WARN`, `ERROR`, `DEBUG`, …) near their start.
//! 4. Markdown / code: markdown when the sample has a code fence; code when at least two lines
//!    and 30% of the non-blank lines look like code (keywords at the start, lines ending in
//!    `{ } ; (`, assignments, indented code punctuation) and they outnumber markdown lines
//!    (`# comment` lines count for neither); else markdown when headings, lists, tables,
//!    quotes or links make up 10% of the lines (at least two of them).
//! 5. Prose otherwise.
//!
//! It does not decide the programming language; `code.rs` does that.

use super::ContentType;
use super::json::is_json_document;

/// Lines looked at.
const SAMPLE_LINES: usize = 400;
/// Bytes of each line looked at.
const LINE_PREFIX: usize = 400;
/// Bytes of the text looked at.
const SAMPLE_BYTES: usize = 64 * 1024;

const SPEAKERS: &[&str] = &[
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
];

const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR", "FATAL", "CRITICAL",
    "CRIT", "SEVERE", "PANIC",
];

const CODE_STARTS: &[&str] = &[
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
    if trimmed.starts_with(['{', '[']) && is_json_document(trimmed) {
        return ContentType::Json;
    }
    let sample = prefix(text, SAMPLE_BYTES);
    let lines: Vec<&str> = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(SAMPLE_LINES)
        .map(|l| prefix(l, LINE_PREFIX))
        .collect();
    if lines.is_empty() {
        return ContentType::Prose;
    }
    let n = lines.len();

    let mut speakers: Vec<String> = Vec::new();
    let mut labelled = 0usize;
    for l in &lines {
        if let Some(s) = speaker_label(l) {
            labelled += 1;
            if !speakers.contains(&s) {
                speakers.push(s);
            }
        }
    }
    if labelled >= 2 && speakers.len() >= 2 && labelled * 10 >= n {
        return ContentType::Chat;
    }

    let log_lines = lines.iter().filter(|l| is_log_line(l)).count();
    if log_lines >= 3 && log_lines * 10 >= n * 4 {
        return ContentType::Logs;
    }

    let fence = lines.iter().any(|l| l.trim_start().starts_with("```"));
    let md = lines.iter().filter(|l| is_markdown_line(l)).count();
    let code = lines.iter().filter(|l| is_code_line(l)).count();
    if fence {
        return ContentType::Markdown;
    }
    // `# text` is a level-1 heading or a Python/shell comment: code decides on the rest.
    let hash_comments = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("# "))
        .count();
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

/// The longest prefix of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The normalised speaker of a line that starts with a label, e.g. `User:` or `[assistant]`.
fn speaker_label(line: &str) -> Option<String> {
    let t = line.trim_start();
    let t = t.trim_start_matches(['#', '*', '>', ' ']);
    let (name, rest) = if let Some(r) = t.strip_prefix('[') {
        let close = r.find(']')?;
        (&r[..close], &r[close + 1..])
    } else {
        let end = t.find([':', '\n']).filter(|&e| e <= 24)?;
        (&t[..end], &t[end..])
    };
    let name = name
        .trim()
        .trim_end_matches('*')
        .trim()
        .to_ascii_lowercase();
    let name = name.split_whitespace().next()?.to_string();
    let labelled = rest.starts_with(':')
        || rest.starts_with("**:")
        || (t.starts_with('[') && (rest.is_empty() || rest.starts_with([' ', ':'])));
    (labelled && SPEAKERS.contains(&name.as_str())).then_some(name)
}

/// A timestamp or level word near the start of the line.
fn is_log_line(line: &str) -> bool {
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
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .is_some_and(|(inside, _)| {
            let inside = inside.trim();
            inside.contains('.')
                && inside.starts_with(|c: char| c.is_ascii_digit())
                && inside.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

fn has_level(s: &str) -> bool {
    s.split(|c: char| !c.is_ascii_alphabetic())
        .take(8)
        .any(|w| LEVELS.contains(&w))
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
    is_assignment(t)
        || (t.contains(" = ") && (t.ends_with(')') || t.ends_with(']') || t.ends_with('"')))
}

/// `name = …`, `obj.field += …`, `items[0] = …`: an identifier path, then an assignment.
fn is_assignment(t: &str) -> bool {
    let lhs_end = t
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '$')))
        .unwrap_or(t.len());
    if lhs_end == 0 || t[..lhs_end].starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let rest = &t[lhs_end..];
    let assigned = [" = ", " += ", " -= ", " := "]
        .iter()
        .any(|op| rest.starts_with(op));
    let annotated = [": str", ": int", ": bool", ": float"]
        .iter()
        .any(|ty| rest == *ty || rest.strip_prefix(ty).is_some_and(|r| r.starts_with(" =")));
    assigned || annotated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_json() {
        assert_eq!(
            detect(" {\"a\": [1, 2, {\"b\": null}]}\n"),
            ContentType::Json
        );
        assert_eq!(detect("[1, 2, 3]"), ContentType::Json);
        // Looks like JSON but does not parse.
        assert_ne!(detect("{\"a\": 1,, }"), ContentType::Json);
        // Too deep for serde_json::Value.
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_ne!(detect(&deep), ContentType::Json);
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
    fn detects_code() {
        let rust = "use std::io;\n\nfn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n";
        assert_eq!(detect(rust), ContentType::Code);
        let py = "import os\n\ndef main(argv):\n    path = os.getcwd()\n    return path\n\nclass A:\n    pass\n";
        assert_eq!(detect(py), ContentType::Code);
        let go = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n";
        assert_eq!(detect(go), ContentType::Code);
        let commented = "#!/usr/bin/env python3\n# Copyright 2024 Acme\n# Licensed under MIT\n\n# Helpers for paths.\nimport os\n\n\n# Return the home folder.\ndef home():\n    # may be unset\n    return os.environ.get(\"HOME\")\n";
        assert_eq!(detect(commented), ContentType::Code);
        let js =
            "const x = require('x');\nfunction f(a) {\n  return a + 1;\n}\nmodule.exports = f;\n";
        assert_eq!(detect(js), ContentType::Code);
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
    fn huge_inputs_are_fast() {
        let start = std::time::Instant::now();
        let a = "a".repeat(1 << 20);
        assert_eq!(detect(&a), ContentType::Prose);
        let line = "word ".repeat(200_000);
        assert_eq!(detect(&line), ContentType::Prose);
        let brackets = "[".repeat(1 << 20);
        assert_ne!(detect(&brackets), ContentType::Json);
        assert!(start.elapsed().as_secs_f64() < 1.0);
    }

    proptest::proptest! {
        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}|[\\[\\]{}\"\\\\:, \n0-9a-z]{0,300}") {
            let _ = detect(&text);
        }
    }
}
