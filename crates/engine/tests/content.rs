//! Content types through the public entry point `compress::compress`: what each kind of input
//! keeps, measured the way EVAL.md measures it.

use omnimemory_engine::compress::{Budget, CompressRequest, Compressed, ContentType, compress};
use omnimemory_engine::eval;
use omnimemory_engine::tokens::Encoding;

/// Compresses `context` for cl100k with the default (whole-sentence) granularity; the output is
/// within its budget.
fn run(context: &str, query: Option<&str>, budget: Budget) -> Compressed {
    let c = compress(&CompressRequest { context, query, budget, granularity: Default::default() }, Encoding::Cl100k);
    assert!(c.compressed_tokens <= c.budget_tokens, "{} > {}:\n{}", c.compressed_tokens, c.budget_tokens, c.text);
    c
}

/// A deterministic pseudo-UUID (lower-case hex, 8-4-4-4-12).
fn uuid(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0123_4567_89AB_CDEF;
    let g = h.rotate_left(23).wrapping_mul(0x2545_F491_4F6C_DD1D);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        h >> 32,
        h & 0xffff,
        g & 0xfff,
        8 + (g >> 12) % 4,
        (g >> 16) & 0xfff,
        (g >> 28) & 0xffff_ffff_ffff
    )
}

/// The kv75 construction of EVAL.md: a pretty-printed object of 75 UUID pairs.
fn kv75(seed: u64) -> (String, Vec<(String, String)>) {
    let pairs: Vec<(String, String)> =
        (0..75).map(|i| (uuid(seed * 1000 + 2 * i), uuid(seed * 1000 + 2 * i + 1))).collect();
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!(" \"{k}\": \"{v}\"")).collect();
    (format!("{{\n{}\n}}", body.join(",\n")), pairs)
}

#[test]
fn kv75_answer_is_retained_as_eval_measures_it_and_output_is_json() {
    for seed in 0..3 {
        let (doc, pairs) = kv75(seed);
        for (i, (k, v)) in pairs.iter().enumerate().step_by(11) {
            let query = format!("What is the value associated with key \"{k}\"?");
            for ratio in [0.5, 0.75, 0.9] {
                let c = run(&doc, Some(&query), Budget::Ratio(ratio));
                assert_eq!(c.content_type, ContentType::Json);
                let parsed: serde_json::Value = serde_json::from_str(&c.text).expect("output parses as JSON");
                assert_eq!(parsed[k.as_str()].as_str(), Some(v.as_str()));
                assert!(
                    eval::retained(&c.text, std::slice::from_ref(v)),
                    "member {i} at {ratio}: the value is not a word of the normalised output: {}",
                    c.text
                );
                // The key is a separate word too.
                assert!(eval::retained(&c.text, std::slice::from_ref(k)));
                // Whole members, yet close to the budget.
                assert!(
                    c.compressed_tokens * 100 >= c.budget_tokens * 95,
                    "{} of {} tokens at {ratio}",
                    c.compressed_tokens,
                    c.budget_tokens
                );
            }
        }
    }
}

/// A markdown document: headings with words found nowhere else, lists, a table, prose.
fn markdown_doc() -> String {
    let topics = [
        ("Kestrel", "installation"),
        ("Osprey", "configuration"),
        ("Plover", "networking"),
        ("Heron", "storage"),
        ("Avocet", "monitoring"),
        ("Curlew", "upgrades"),
    ];
    let mut out = String::from("# Falconry operations handbook\n\n");
    for (k, (bird, topic)) in topics.iter().enumerate() {
        out.push_str(&format!("## {bird} {topic} notes\n\n"));
        out.push_str(&format!(
            "The {topic} procedure was revised in 20{:02} after the audit found {} gaps. \
             Operators should read the whole section before changing anything in production. \
             Most problems reported so far came from skipped steps rather than from defects.\n\n",
            10 + k,
            3 + k
        ));
        out.push_str(&format!(
            "- Verify that release 4.{k}.2 is installed on every node before you start.\n\
             - Back up the {topic} database to the archive volume and record its checksum.\n\
             - Notify the on-call engineer through the paging channel at least one hour ahead.\n\
             1. Drain traffic from the first region and wait for the queue to empty.\n\
             2. Apply the {topic} change with the maintenance flag set to strict.\n\n"
        ));
        if k % 2 == 0 {
            out.push_str(&format!(
                "| setting | default | limit |\n|---|---|---|\n| {topic}_timeout | 30 | 300 |\n| {topic}_retries | 3 | 10 |\n\n"
            ));
        }
    }
    out
}

fn is_marker_only(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && (t.chars().all(|c| c == '#' || c == '-' || c == '*' || c == '+' || c == '|')
            || (t.ends_with(['.', ')']) && t[..t.len() - 1].chars().all(|c| c.is_ascii_digit())))
}

fn list_marker(line: &str) -> bool {
    let t = line.trim_start();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    t.starts_with("- ")
        || t.starts_with("* ")
        || t.starts_with("+ ")
        || (digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") ")))
}

#[test]
fn markdown_keeps_headings_whole_lists_marked_and_tables_with_their_header() {
    let doc = markdown_doc();
    let input_lines: Vec<&str> = doc.lines().collect();
    let headings: Vec<&str> = input_lines.iter().copied().filter(|l| l.starts_with('#')).collect();
    // Words that occur only in list items.
    let word_set = |lines: &mut dyn Iterator<Item = &str>| {
        let mut s = std::collections::HashSet::new();
        for l in lines {
            for w in l.split_whitespace() {
                s.insert(w.to_string());
            }
        }
        s
    };
    let list_words = word_set(&mut input_lines.iter().copied().filter(|l| list_marker(l)));
    let other_words = word_set(&mut input_lines.iter().copied().filter(|l| !list_marker(l)));
    let list_only: Vec<&String> = list_words.difference(&other_words).collect();
    assert!(list_only.len() > 10);
    for query in [None, Some("How do I back up the storage database?")] {
        for ratio in [0.5, 0.75, 0.9] {
            let c = run(&doc, query, Budget::Ratio(ratio));
            assert_eq!(c.content_type, ContentType::Markdown);
            let ctx = format!("query {query:?} ratio {ratio}:\n{}", c.text);
            let mut previous = "";
            for line in c.text.lines() {
                // A table's `|---|` row under its header row is markdown, not an orphan.
                let table_rule = line.starts_with('|') && previous.starts_with('|');
                previous = line;
                assert!(table_rule || !is_marker_only(line), "orphan marker line {line:?} in {ctx}");
                if line.trim_start().starts_with('#') {
                    assert!(headings.contains(&line.trim()), "cut heading {line:?} in {ctx}");
                }
                // A table row is an input row, or the marker of the rows a cut table lost.
                let rows_marker = line.starts_with("| \u{2026} ") && line.ends_with(" rows omitted |");
                if line.trim_start().starts_with('|') && !rows_marker {
                    assert!(input_lines.contains(&line.trim()), "cut table row {line:?}");
                }
                if line.split_whitespace().any(|w| list_only.iter().any(|l| *l == w)) {
                    assert!(list_marker(line), "list item without marker {line:?} in {ctx}");
                }
            }
            // A heading's own words only come with the whole heading.
            for h in &headings {
                let bird = h.split_whitespace().nth(1).unwrap();
                if c.text.split_whitespace().any(|w| w == bird) {
                    assert!(c.text.lines().any(|l| l.trim() == *h), "{h:?} cut in {ctx}");
                }
            }
            // Table rows come with their header.
            if c.text.contains("_timeout |") {
                assert!(c.text.contains("| setting | default | limit |"), "{ctx}");
            }
        }
    }
}

/// A support chat: every turn one line, `User:` or `Assistant:` first.
fn chat_doc() -> String {
    let mut out = String::new();
    let issues = [
        "my invoice for March shows the wrong VAT number",
        "the export to CSV stops at ten thousand rows",
        "two-factor codes arrive after they have expired",
        "the dashboard shows yesterday's numbers until noon",
        "a deleted teammate still receives the weekly digest",
    ];
    for (k, issue) in issues.iter().enumerate() {
        out.push_str(&format!(
            "User: Hello again, I have another problem today. It seems that {issue}. \
             I tried logging out and in, and it did not help at all.\n\n"
        ));
        out.push_str(&format!(
            "Assistant: Thanks for the details, I am sorry about the trouble. I checked ticket \
             84{k}3 and the cause is a stale cache on our side. I have cleared it, so the problem \
             should be gone within five minutes. Let me know if it comes back.\n\n"
        ));
        out.push_str("User: Great, thank you very much for the quick help.\n\n");
    }
    out
}

#[test]
fn chat_keeps_the_speaker_label_on_every_kept_turn() {
    let doc = chat_doc();
    let turns: Vec<&str> = doc.lines().filter(|l| !l.trim().is_empty()).collect();
    for query in [None, Some("Why does the CSV export stop?")] {
        for ratio in [0.5, 0.75, 0.9] {
            let c = run(&doc, query, Budget::Ratio(ratio));
            assert_eq!(c.content_type, ContentType::Chat);
            for line in c.text.lines().filter(|l| !l.trim().is_empty()) {
                let label = ["User: ", "Assistant: "].into_iter().find(|l| line.starts_with(l));
                let Some(label) = label else {
                    panic!("turn without its label: {line:?} in\n{}", c.text);
                };
                // The words after the label come from one turn of that speaker, in order.
                let words: Vec<&str> = line[label.len()..].split_whitespace().collect();
                let from_turn = turns.iter().any(|t| {
                    t.starts_with(label) && {
                        let mut it = t[label.len()..].split_whitespace();
                        words.iter().all(|w| it.any(|x| x == *w))
                    }
                });
                assert!(from_turn, "{line:?} is not from one {label:?} turn");
            }
        }
    }
}

#[test]
fn yaml_comes_back_as_its_outline_with_hash_markers_not_as_markdown() {
    let yaml = include_str!("support/deploy.yml");
    for ratio in [0.5, 0.75] {
        let c = run(yaml, None, Budget::Ratio(ratio));
        assert_eq!(c.content_type, ContentType::Code);
        // Whole input lines, indentation included, or `# …` markers of what was left out.
        for l in c.text.lines().filter(|l| !l.trim().is_empty()) {
            assert!(yaml.lines().any(|o| o == l) || l.trim_start().starts_with("# … "), "{l}\n{}", c.text);
        }
        assert!(c.text.contains("# … "), "{}", c.text);
        assert!(c.text.starts_with("# Build") || c.text.contains("\nname: deploy"), "{}", c.text);
    }
}

#[test]
fn a_diff_keeps_every_file_header_and_marks_what_it_leaves_out() {
    let diff = include_str!("support/change.diff");
    let c = run(diff, None, Budget::Ratio(0.5));
    assert_eq!(c.content_type, ContentType::Code);
    for header in diff.lines().filter(|l| l.starts_with("diff --git ")) {
        assert!(c.text.lines().any(|l| l == header), "{header}\n{}", c.text);
    }
    // Whole input lines (a removed `-- comment` line is not a file header) or `[… N lines omitted]`.
    for l in c.text.lines() {
        assert!(diff.lines().any(|o| o == l) || l.starts_with("[… ") && l.ends_with(" omitted]"), "{l}\n{}", c.text);
    }
    assert!(c.text.contains("--- sessions expire after a number of seconds\n+-- sessions expire after a duration"));
}

#[test]
fn subtitles_keep_each_cue_whole_with_its_timing() {
    let vtt = include_str!("support/talk.vtt");
    let timing = |l: &str| l.contains(" --> ");
    let cues: Vec<&str> = vtt.split("\n\n").skip(1).map(str::trim).collect();
    for (query, ratio) in [(None, 0.5), (None, 0.75), (Some("how long does failover take now"), 0.75)] {
        let c = run(vtt, query, Budget::Ratio(ratio));
        // Read as a transcript, not as logs (its timing lines carry timestamps).
        assert_eq!(c.content_type, ContentType::Prose, "{query:?} {ratio}");
        // Every kept piece is a whole cue: its timing and all its text, never one without the other.
        let kept: Vec<&str> = c.text.split("\n\n").map(str::trim).filter(|p| !p.is_empty() && *p != "WEBVTT").collect();
        assert!(!kept.is_empty());
        for piece in &kept {
            assert!(cues.contains(piece), "{query:?} {ratio}: {piece:?}\n{}", c.text);
            assert!(piece.lines().next().is_some_and(timing));
        }
        if query.is_some() {
            assert!(c.text.contains("It now takes under two seconds"), "{}", c.text);
        }
    }
}

#[test]
fn an_email_reply_never_keeps_a_bare_quote_marker_or_list_number() {
    let mail = include_str!("support/reply.txt");
    // Only `>` markers, or a list number or bullet with nothing after it.
    let bare = |l: &str| {
        let rest = l.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        rest.is_empty() && l.contains('>')
            || rest.strip_suffix('.').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || matches!(rest, "-" | "*")
    };
    for query in [None, Some("when does the billing batch start"), Some("what are the migration steps")] {
        for ratio in [0.5, 0.75] {
            let c = run(mail, query, Budget::Ratio(ratio));
            for l in c.text.lines() {
                assert!(!bare(l), "{query:?} {ratio}: {l:?}\n{}", c.text);
            }
        }
    }
    // A quoted sentence hard-wrapped over two lines, the second starting with a number, is kept
    // whole or not at all.
    let c = run(mail, Some("expected downtime for writes"), Budget::Ratio(0.6));
    assert!(c.text.contains("Expected downtime for writes is about\n> 20 minutes;"), "{}", c.text);
}

#[test]
fn an_email_thread_keeps_its_subject_and_senders_and_drops_its_wrapping() {
    let thread = include_str!("support/thread.txt");
    let greetings = ["Hi Owen,", "Hello,", "Morning Owen,"];
    let wrapping =
        ["Best regards,", "Thanks,", "Kind regards,", "Senior Support Engineer", "Sent from my iPhone", "T: +44"];
    // The sender of each input line: the latest `From:` line above it.
    let senders = |text: &str| -> Vec<(String, String)> {
        let mut from = String::new();
        text.lines()
            .filter_map(|l| {
                if l.starts_with("From: ") {
                    from = l.to_string();
                    None
                } else {
                    Some((l.to_string(), from.clone()))
                }
            })
            .collect()
    };
    let input_senders = senders(thread);
    for query in [None, Some("when does the importer fix go live")] {
        for ratio in [0.6, 0.8] {
            let c = run(thread, query, Budget::Ratio(ratio));
            let out = &c.text;
            assert_eq!(out.matches("Subject: ").count(), 1, "{query:?} {ratio}:\n{out}");
            assert!(out.contains("Subject: RE: Ferry timetable import failing since Monday"), "{out}");
            for l in out.lines() {
                assert!(!greetings.contains(&l) && !wrapping.iter().any(|w| l.starts_with(w)), "{l:?} in:\n{out}");
            }
            // Every kept body line is under its own sender.
            for (line, from) in senders(out) {
                if line.trim().len() > 30 && !line.starts_with("Subject:") && !line.starts_with('[') {
                    // Its first sentence's opening (a line may keep some of its sentences).
                    let first = line.trim().split(". ").next().unwrap_or("");
                    let opening = first.get(..20).unwrap_or(first);
                    let want = input_senders.iter().find(|(l, _)| l.contains(opening)).map(|(_, f)| f);
                    assert_eq!(want, Some(&from), "{line:?} in:\n{out}");
                }
            }
        }
    }
}

#[test]
fn a_handler_that_misreads_its_input_does_not_return_a_sliver_of_the_budget() {
    // Terraform's output after its `$ terraform apply` prompt: a grammar takes it for code and
    // the code handler kept 84 of 2,148 tokens at 4x; the line packer fills the budget.
    let plan = include_str!("support/terraform_plan.txt");
    for ratio in [0.5, 0.75, 0.9] {
        let c = run(plan, None, Budget::Ratio(ratio));
        assert!(
            c.compressed_tokens * 2 >= c.budget_tokens,
            "{ratio}: {} of {}\n{}",
            c.compressed_tokens,
            c.budget_tokens,
            c.text
        );
    }
}

#[test]
fn a_turn_cut_to_some_of_its_sentences_keeps_the_white_space_after_its_label() {
    let answer: String = (0..30)
        .map(|i| format!("Step {i} moves the limiter state into Redis so that every instance agrees on the count. "))
        .collect();
    let text = format!(
        "You said:\nHow do I rate limit across four instances?\n\nChatGPT said:\n\n{answer}\n\n\
         You said:\nAnd with clock drift?\n\nChatGPT said:\n\n{answer}\n"
    );
    let c = run(&text, None, Budget::Tokens(60));
    assert!(c.compressed_tokens <= 60, "{}", c.text);
    // The cut answer keeps the white space after its label; the question it answers fits
    // beside it.
    assert!(c.text.starts_with("You said:\nAnd with clock drift?\n\nChatGPT said:\n\nStep "), "{:?}", c.text);
}

#[test]
fn an_html_article_is_read_as_text_not_as_a_chat_nor_as_one_block() {
    let html = include_str!("support/article.html");
    let c = run(html, Some("how long does failover take"), Budget::Ratio(0.6));
    // `<li> …` lines are not IRC messages, and a page without blank lines is not one atomic
    // block cut to a window of words: the sentence that answers comes whole.
    assert_ne!(c.content_type, ContentType::Chat);
    assert!(
        c.text.contains("Failover used to take about four minutes of manual work. It now takes under two seconds."),
        "{}",
        c.text
    );
    for l in c.text.lines() {
        assert!(html.lines().any(|o| o.contains(l.trim())), "{l}\n{}", c.text);
    }
}

#[test]
fn a_heading_the_query_names_brings_its_section_and_front_matter_stays_whole() {
    let post = include_str!("support/post.md");
    let front = &post[..post.find("\n---\n").unwrap() + 4];
    for (query, ratio) in [(Some("what broke"), 0.6), (None, 0.5), (None, 0.75), (Some("who wrote the post"), 0.6)] {
        let c = run(post, query, Budget::Ratio(ratio));
        // The front matter comes whole or not at all: no key without its `---` fences.
        assert!(
            c.text.starts_with(front) || !c.text.contains("tags:") && !c.text.contains("  - raft"),
            "{query:?} {ratio}\n{}",
            c.text
        );
        if query == Some("what broke") {
            // The heading matches the query; the answer is the paragraph under it.
            assert!(c.text.contains("A partitioned leader kept its lease for up to nine seconds"), "{}", c.text);
        }
    }
}

#[test]
fn a_pasted_traceback_keeps_the_exception_that_ends_it() {
    let ticket = include_str!("support/ticket.txt");
    let error = "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: \
                 https://api.acme.example/v2/export?dataset=sales";
    for (query, ratio) in [(None, 0.5), (None, 0.75), (Some("why does the export fail?"), 0.75)] {
        let c = run(ticket, query, Budget::Ratio(ratio));
        // The line alone, not glued to the frame above it.
        assert!(c.text.lines().any(|l| l == error), "{query:?} {ratio}\n{}", c.text);
    }
}

#[test]
fn a_short_documents_headings_do_not_crowd_out_what_they_head() {
    let pr = include_str!("support/pr.md");
    for ratio in [0.5, 0.75, 0.9] {
        let c = run(pr, None, Budget::Ratio(ratio));
        // Whole sentences or items of the input under their headings; not an outline of
        // headings over `[… 1 line omitted]` markers, nor a phrase cut out of a sentence.
        let content: Vec<&str> =
            c.text.lines().filter(|l| !l.is_empty() && !l.starts_with("###") && !l.starts_with("[…")).collect();
        assert!(!content.is_empty(), "{ratio}\n{}", c.text);
        for l in content {
            let whole = l.ends_with('.') || pr.lines().any(|o| o.trim() == l.trim());
            assert!(pr.contains(l) && whole, "{ratio}: {l:?}\n{}", c.text);
        }
        let markers = c.text.lines().filter(|l| l.starts_with("[…")).count();
        let headings = c.text.lines().filter(|l| l.starts_with("###")).count();
        assert!(markers < headings || markers <= 1, "{ratio}\n{}", c.text);
    }
}

#[test]
fn an_issues_bold_labels_come_only_with_what_they_label() {
    let issue = include_str!("support/issue.md");
    let bold = |l: &str| l.starts_with("**") && (l.ends_with("**") || l.ends_with("commented:"));
    for (query, ratio) in [(None, 0.5), (None, 0.75), (None, 0.9), (Some("why did the upload fail?"), 0.75)] {
        let c = run(issue, query, Budget::Ratio(ratio));
        let lines: Vec<&str> = c.text.lines().collect();
        for (k, l) in lines.iter().enumerate() {
            if bold(l) {
                // Under a label, a line of what it labels: no label alone, nor over a marker.
                let next = lines.get(k + 1).copied().unwrap_or("");
                assert!(!next.is_empty() && !bold(next) && !next.starts_with("[…"), "{query:?} {ratio}\n{}", c.text);
            }
        }
        assert!(c.text.contains("fails with a 500 error") || c.text.contains("integer overflow"), "{}", c.text);
    }
}

#[test]
fn without_a_query_a_posts_front_matter_waits_behind_its_opening() {
    let post = include_str!("support/post.md");
    let c = run(post, None, Budget::Ratio(0.75));
    // Room for the front matter alone, or for the title and the opening sentence: the latter.
    assert!(c.text.starts_with("# Moving the metadata service to Raft\n\nThis quarter we moved"), "{}", c.text);
    assert!(!c.text.contains("author:"), "{}", c.text);
}

#[test]
fn a_kubectl_describe_report_keeps_its_keys_with_their_values_and_its_blocks_under_their_names() {
    let report = include_str!("support/describe_pod.txt");
    let marker = |l: &str| l.trim_start().starts_with("# … ") && l.trim_end().ends_with(" omitted");
    for (query, ratio) in [(None, 0.75), (None, 0.9), (Some("why does the api container keep restarting?"), 0.75)] {
        let c = run(report, query, Budget::Ratio(ratio));
        for l in c.text.lines() {
            // Whole input lines or a marker: a key such as `Finished:` never loses its value.
            assert!(marker(l) || report.lines().any(|o| o == l), "{l:?}\n{}", c.text);
        }
        // A nested line comes with the block that names it.
        if c.text.contains("Reason:       OOMKilled") {
            assert!(c.text.contains("  api:\n") && c.text.contains("Last State:     Terminated"), "{}", c.text);
        }
        if query.is_some() {
            for fact in
                ["Reason:       CrashLoopBackOff", "Reason:       OOMKilled", "Restart Count:  14", "memory:  512Mi"]
            {
                assert!(c.text.contains(fact), "{fact}\n{}", c.text);
            }
        } else {
            assert!(c.text.starts_with("Name:             checkout-api-7d9f8c6b5-x2x7q\n"), "{}", c.text);
        }
        if query.is_none() && ratio < 0.8 {
            // Without a question, the events that report trouble come before the quiet ones.
            assert!(c.text.contains("Warning  BackOff    2m (x187 over 47m)"), "{}", c.text);
            assert!(!c.text.contains("Started container migrate"), "{}", c.text);
        }
    }
}

#[test]
fn a_passage_retrieved_twice_is_said_once_and_its_room_goes_to_other_sentences() {
    let tokyo = "Tokyo is the capital of Japan and one of the most populous cities in the world. \
                 It lies in the Kanto region of Honshu. The city became the capital in 1868. \
                 Famous sights include Senso-ji temple and Tokyo Tower. The subway network covers \
                 the whole city.";
    // The same chunk from two sources, the second wrapped differently.
    let context = format!("{tokyo}\n\n{}\n\nOsaka is the second largest city of Japan.", tokyo.replace(". ", ".\n"));
    for query in [None, Some("when did Tokyo become the capital")] {
        let c = run(&context, query, Budget::Ratio(0.5));
        for sentence in tokyo.split_inclusive(". ") {
            let s = sentence.trim();
            assert!(c.text.matches(s).count() <= 1, "{s:?} twice:\n{}", c.text);
        }
        // The room a second copy would take holds the sentences the first left out.
        let kept = tokyo.split_inclusive(". ").filter(|s| c.text.contains(s.trim())).count();
        assert!(kept >= 4, "{query:?}\n{}", c.text);
    }
}
