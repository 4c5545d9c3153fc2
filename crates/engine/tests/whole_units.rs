//! Whole units by default (issue: compression that holds without a query): output is made of
//! whole sentences, lines, titles and items of the input, and a tiny budget gives a phrase of
//! whole words, never a cut word or a lone marker.

use omnimemory_engine::compress::{Budget, CompressRequest, Granularity, compress};
use omnimemory_engine::tokens::Encoding;

fn run(text: &str, query: Option<&str>, budget: Budget, granularity: Granularity) -> String {
    let c = compress(&CompressRequest { context: text, query, budget, granularity }, Encoding::Cl100k);
    assert!(c.compressed_tokens <= c.budget_tokens || c.over_budget);
    c.text
}

const PASSAGES: &str = "Title: The Flash (season 4)\nThe fourth season of the American television series The Flash premiered on The CW on October 10, 2017. It follows Barry Allen, a crime scene investigator who gains super-human speed. The season was ordered in January 2017.\n\nTitle: Indigenous peoples of Arizona\nIndigenous peoples of Arizona include the Navajo, the Hopi and the Tohono O'odham. Many of them live on reservations. The Navajo Nation is the largest.\n\nTitle: Ripgrep\nripgrep (rg) is a line-oriented search tool that recursively searches the current directory. It respects gitignore rules (and hidden files) by default. Binaries are published for [every\nrelease](https://github.com/BurntSushi/ripgrep/releases) on GitHub.";

fn input_lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

#[test]
fn without_a_query_every_output_piece_is_a_whole_sentence_or_title() {
    let sentences: Vec<&str> =
        PASSAGES.split(['\n']).flat_map(|l| l.split_inclusive(". ")).map(str::trim).filter(|s| !s.is_empty()).collect();
    for ratio in [0.5, 0.75] {
        let out = run(PASSAGES, None, Budget::Ratio(ratio), Granularity::Sentence);
        assert!(!out.is_empty());
        for line in input_lines(&out) {
            // A line of the output is a run of whole input sentences (or a whole title).
            let mut rest = line;
            while !rest.is_empty() {
                let s = sentences
                    .iter()
                    .filter(|s| rest.starts_with(**s) || s.starts_with(rest) && rest.ends_with('.'))
                    .max_by_key(|s| s.len())
                    .unwrap_or_else(|| panic!("{rest:?} is not made of input sentences, in:\n{out}"));
                rest = rest[s.len().min(rest.len())..].trim_start();
            }
        }
        for title in ["Title: The Flash (season 4)", "Title: Indigenous peoples of Arizona"] {
            let kept_partly = out.lines().any(|l| l.starts_with("Title:") && title.starts_with(l) && l != title);
            assert!(!kept_partly, "a title was cut: {out}");
        }
        assert!(!out.contains("Flash 4)") && !out.contains("Indigenous Arizona"), "{out}");
        assert_eq!(out.matches('(').count(), out.matches(')').count(), "{out}");
        assert_eq!(out.matches('[').count(), out.matches(']').count(), "{out}");
    }
}

#[test]
fn with_a_query_the_output_is_whole_sentences_too() {
    let out = run(PASSAGES, Some("what does ripgrep respect by default"), Budget::Ratio(0.75), Granularity::Sentence);
    assert!(out.contains("It respects gitignore rules (and hidden files) by default."), "{out}");
    for line in input_lines(&out) {
        assert!(PASSAGES.contains(line) || line.starts_with("Title:"), "{line:?} is not an input piece");
    }
}

#[test]
fn tiny_budgets_give_a_phrase_of_whole_words() {
    let sentence = "Kubernetes schedules containers onto nodes according to their resource requests and limits.";
    for budget in [Budget::Ratio(0.944), Budget::Tokens(1), Budget::Tokens(3), Budget::Tokens(6)] {
        let out = run(sentence, None, budget, Granularity::Sentence);
        assert!(out.chars().any(char::is_alphanumeric), "{out:?}");
        // Whole words: the output is a run of the sentence's own words.
        let words: Vec<&str> = sentence.split(' ').collect();
        let got: Vec<&str> = out.split(' ').collect();
        assert!(words.windows(got.len()).any(|w| w == got.as_slice()), "{out:?} cuts a word");
    }
    let markdown = "# Notes\n\n- first item of the list here\n- second item of the list\n- third one";
    let out = run(markdown, None, Budget::Ratio(0.944), Granularity::Sentence);
    assert!(out.chars().any(char::is_alphanumeric), "{out:?}");
}

#[test]
fn small_inputs_come_back_unchanged_and_say_so() {
    let c = compress(
        &CompressRequest {
            context: "Short note.",
            query: None,
            budget: Budget::Ratio(0.9),
            granularity: Granularity::Sentence,
        },
        Encoding::Cl100k,
    );
    assert_eq!(c.text, "Short note.");
    assert!(c.unchanged);
    let c = compress(
        &CompressRequest {
            context: PASSAGES,
            query: None,
            budget: Budget::Ratio(0.5),
            granularity: Granularity::Sentence,
        },
        Encoding::Cl100k,
    );
    assert!(!c.unchanged);
}

#[test]
fn word_granularity_is_an_opt_in_that_prunes_inside_sentences() {
    let out = run(PASSAGES, None, Budget::Ratio(0.5), Granularity::Word);
    let sentence_out = run(PASSAGES, None, Budget::Ratio(0.5), Granularity::Sentence);
    assert_ne!(out, sentence_out);
    // Some output line is no longer an input line nor a run of input sentences.
    assert!(input_lines(&out).iter().any(|l| !PASSAGES.contains(l)), "{out}");
}

/// Twelve titled passages of three sentences each, every one about its own subject.
fn titled_passages() -> String {
    let subjects = [
        "harbour",
        "glacier",
        "orchard",
        "lighthouse",
        "vineyard",
        "observatory",
        "monastery",
        "aqueduct",
        "canal",
        "quarry",
        "windmill",
        "citadel",
    ];
    subjects
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "Title: The old {s} of town {i}\nThe old {s} was built in {} by masons from the coast. Its keepers recorded every storm and harvest in a ledger. The ledger is kept in the town library today.",
                1700 + 7 * i
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn without_a_query_every_passage_lead_comes_before_the_titles_when_the_leads_fit() {
    let text = titled_passages();
    let leads: Vec<String> =
        text.split("\n\n").map(|p| p.lines().nth(1).unwrap().split(". ").next().unwrap().to_string()).collect();
    let lead_tokens: usize = leads.iter().map(|l| Encoding::Cl100k.count(&format!("{l}.\n\n"))).sum();
    // Room for every lead and a few titles, not for all of them.
    let out = run(&text, None, Budget::Tokens(lead_tokens + 20), Granularity::Sentence);
    for lead in &leads {
        assert!(out.contains(lead.as_str()), "{lead:?} missing from:\n{out}");
    }
    assert!(out.matches("Title: ").count() < leads.len(), "{out}");

    // Room for two thirds of the leads (and still a fifth of the text): then every passage is
    // at least named by its title.
    let budget = lead_tokens * 2 / 3;
    assert!(budget * 5 >= Encoding::Cl100k.count(&text));
    let out = run(&text, None, Budget::Tokens(budget), Granularity::Sentence);
    assert_eq!(out.matches("Title: ").count(), leads.len(), "{out}");
}

#[test]
fn a_title_repeated_by_a_later_chunk_of_its_article_is_never_shown_alone_again() {
    // Passages 4, 8 and 11 are later chunks of passage 0's article: same title line.
    let text: Vec<String> = titled_passages()
        .split("\n\n")
        .enumerate()
        .map(|(i, p)| match i {
            4 | 8 | 11 => p.replacen(p.lines().next().unwrap(), "Title: The old harbour of town 0", 1),
            _ => p.to_string(),
        })
        .collect();
    let text = text.join("\n\n");
    // Leads far over the budget, a fifth of the text: the titles name the passages left out.
    let budget = Encoding::Cl100k.count(&text) / 5 + 1;
    let out = run(&text, None, Budget::Tokens(budget), Granularity::Sentence);
    let mut shown = std::collections::HashSet::new();
    for block in out.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let lines: Vec<&str> = block.lines().collect();
        if lines.len() == 1 && lines[0].starts_with("Title: ") {
            assert!(shown.insert(lines[0]), "{:?} shown alone twice in:\n{out}", lines[0]);
        }
    }
    // Every distinct title is still there.
    for t in text.lines().filter(|l| l.starts_with("Title: ")) {
        assert!(out.contains(t), "{t:?} missing from:\n{out}");
    }
}

#[test]
fn a_table_cut_down_says_how_many_rows_it_lost() {
    let rows: String = (0..40)
        .map(|i| {
            format!("| Region-{i} | {} | ${}/mo | {} |\n", ["Basic", "Team", "Enterprise"][i % 3], 40 + 17 * i, 3 + i)
        })
        .collect();
    let text = format!(
        "# Billing\n\nThe table lists every region's plan as of March.\n\n| Region | Plan | Cost | Seats |\n|---|---|---|---|\n{rows}\nCosts are billed monthly.\n"
    );
    let all = Encoding::Cl100k.count(&text);
    let budgets = [Budget::Ratio(0.6), Budget::Ratio(0.3), Budget::Tokens(all - 4), Budget::Tokens(all - 40)];
    for query in [None, Some("Which region has the Enterprise plan?")] {
        for budget in budgets {
            let out = run(&text, query, budget, Granularity::Sentence);
            let lines: Vec<&str> = out.lines().collect();
            let head = lines.iter().position(|l| l.starts_with("| Region |")).expect("header kept");
            let table: Vec<&str> = lines[head..].iter().copied().take_while(|l| l.starts_with('|')).collect();
            // Every row shown is an input row, and the table's last line says what is missing.
            let rows_shown: Vec<&str> = table.iter().copied().filter(|r| text.lines().any(|l| l == *r)).collect();
            let kept = rows_shown.len() - 2; // header and separator
            assert!(kept > 0, "{out}");
            if kept == 40 {
                assert_eq!(table.len(), 42, "{out}");
            } else {
                assert_eq!(table.len(), rows_shown.len() + 1, "{out}");
                assert_eq!(table[table.len() - 1], format!("| \u{2026} {} of 40 rows omitted |", 40 - kept), "{out}");
            }
        }
    }
}

#[test]
fn a_list_cut_down_says_how_many_items_it_lost() {
    let agenda: String = [
        "Review of last week's incidents and what the on-call rotation learned.",
        "Status of the database migration to the new cluster in eu-west.",
        "Budget review for the third quarter and the instance renewals.",
        "Hiring update for the two open backend positions.",
        "Deprecation plan for the legacy v1 API and its customers.",
        "Security audit findings from the external penetration test.",
        "Load testing results for checkout under holiday traffic.",
        "Roadmap alignment with the product team for the next cycle.",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| format!("{}. {t}\n", i + 1))
    .collect();
    let checklist = "- [ ] Dana writes the incident review for the cache outage.\n\n\
                     - [x] Sam confirms the migration window with the vendor.\n  \
                     The vendor asked for two weeks of notice.\n\n\
                     - [ ] Priya drafts the deprecation notice for v1 customers.\n\n\
                     - [ ] Leo schedules the follow-up with the auditors.\n";
    let text = format!(
        "# Weekly sync\n\nNotes from the platform sync.\n\n## Agenda\n\n{agenda}\n## Action items\n\n{checklist}\n\
         ## Decisions\n\nThe v1 API is switched off on 30 June.\n"
    );
    let all = Encoding::Cl100k.count(&text);
    for query in [None, Some("Who confirms the migration window?")] {
        for budget in [Budget::Ratio(0.5), Budget::Ratio(0.7), Budget::Tokens(all)] {
            let out = run(&text, query, budget, Granularity::Sentence);
            for (items, total) in [(&agenda, 8), (&checklist.to_string(), 4)] {
                let starts: Vec<&str> = items.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).collect();
                let shown = starts.iter().filter(|l| out.lines().any(|o| o == **l)).count();
                assert_eq!(starts.len(), total);
                let marker =
                    format!("[\u{2026} {} item{} omitted]", total - shown, if total - shown == 1 { "" } else { "s" });
                if shown == total || shown == 0 {
                    assert!(!out.contains(&marker), "{out}");
                    continue;
                }
                // The marker line follows the list's last shown line.
                let lines: Vec<&str> = out.lines().collect();
                let last = lines
                    .iter()
                    .rposition(|o| items.lines().any(|l| !l.trim().is_empty() && l.trim() == o.trim()))
                    .unwrap();
                assert_eq!(lines.get(last + 1), Some(&marker.as_str()), "{out}");
            }
        }
    }
}

#[test]
fn a_line_that_introduces_a_list_none_of_whose_items_is_kept_says_so() {
    let text = "The venue is confirmed for the seventh and eighth of November, and the deposit was paid on time.\n\n\
                Next milestones on our side:\n  \u{2022} 4 Oct: run-of-show draft\n  \u{2022} 10 Oct: room block release\n  \
                \u{2022} 18 Oct: final headcount\n  \u{2022} 31 Oct: final dietary list\n\n\
                The keynote moves to half past nine, and the lectern microphone costs nothing extra.\n";
    // Room for the introduction and one item, then for the introduction alone.
    let out = run(text, Some("what are the next milestones"), Budget::Tokens(30), Granularity::Sentence);
    assert!(
        out.contains("Next milestones on our side:\n  \u{2022} 4 Oct: run-of-show draft\n  [\u{2026} 3 items omitted]"),
        "{out}"
    );
    let out = run(text, Some("what are the next milestones"), Budget::Tokens(22), Granularity::Sentence);
    assert_eq!(out.trim_end(), "Next milestones on our side:\n  [\u{2026} 4 items omitted]");
}

#[test]
fn a_changelogs_release_headings_come_with_their_lines() {
    let mut text = String::from("# Changelog\n\nAll notable changes to this project are listed here.\n\n");
    for v in 0..12 {
        text.push_str(&format!(
            "## [3.{v}.0] - 2024-0{}-1{}\n\n### Added\n- Option `--mode-{v}` for the tile writer.\n\n\
             ### Fixed\n- Crash {v} when the input folder was empty.\n- Leak {v} in the cache reader.\n\n",
            1 + v % 9,
            v % 10
        ));
    }
    let out = run(&text, None, Budget::Ratio(0.8), Granularity::Sentence);
    let lines: Vec<&str> = out.lines().collect();
    for (k, l) in lines.iter().enumerate() {
        if l.starts_with("## [") {
            // What follows a release heading: its subsections, or the marker of their lines.
            let next = lines[k + 1..].iter().find(|n| !n.trim().is_empty()).copied().unwrap_or("");
            assert!(next.starts_with("### ") || next == "[\u{2026} 5 lines omitted]", "{l:?} then {next:?}:\n{out}");
        }
    }
    // Its headings alone would take most of the budget: releases come with some of their lines
    // (a short document's outline is no summary of it), and no heading stands over nothing.
    assert!(out.contains("\n- "), "{out}");
    assert!(!out.contains("[\u{2026} 5 lines omitted]"), "{out}");
}

#[test]
fn a_heading_shown_without_its_lines_says_they_were_omitted() {
    let topics = ["Upgrade status", "Cost review", "Runner proposal", "On-call retro", "Hiring", "Security review"];
    let mut text = String::from("# Platform Guild weekly sync\n\nNotes by Pavel, facilitator Ines.\n\n");
    for (i, t) in topics.iter().enumerate() {
        text.push_str(&format!("## {}. {t}\n\n", i + 1));
        for k in 0..4 {
            text.push_str(&format!(
                "- Item {k} of {t}: owner{i}{k} reported {} open tickets and {} closed since the last sync.\n",
                3 + i * k,
                7 + k
            ));
        }
        text.push('\n');
    }
    for ratio in [0.6, 0.75, 0.9] {
        let out = run(&text, None, Budget::Ratio(ratio), Granularity::Sentence);
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        for (k, l) in lines.iter().enumerate() {
            if l.starts_with("## ") {
                // What follows a section's heading is its content or the marker, never the
                // next heading.
                let next = lines.get(k + 1).copied().unwrap_or("");
                assert!(!next.starts_with('#') && !next.is_empty(), "{l:?} reads as empty at {ratio}:\n{out}");
                if next.starts_with("[\u{2026} ") {
                    assert!(next.ends_with(" lines omitted]") || next.ends_with(" line omitted]"), "{next}");
                }
            }
        }
    }
}

#[test]
fn a_hard_wrapped_sentence_is_kept_whole_whatever_its_lines_open_with() {
    let para = "   This document specifies the Lightweight Telemetry Framing Protocol\n   \
                (LTFP), a binary framing layer for carrying batches of telemetry\n   \
                records from constrained devices to collectors over TCP or QUIC.\n   \
                A collector SHOULD send an ACK at least once per second while DATA\n   \
                frames arrive, and MUST send one when its receive window is full.\n";
    let mut text = String::new();
    for k in 0..8 {
        text.push_str(&format!("{}.  Section {k}\n\n{para}\n", k + 1));
    }
    let sentences = [
        "This document specifies the Lightweight Telemetry Framing Protocol",
        "A collector SHOULD send an ACK at least once per second while DATA",
    ];
    for ratio in [0.5, 0.75] {
        let out = run(&text, None, Budget::Ratio(ratio), Granularity::Sentence);
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        for s in sentences {
            // A kept first line of a sentence comes with the rest of the sentence.
            let whole = if s.starts_with("This") {
                "This document specifies the Lightweight Telemetry Framing Protocol (LTFP), a binary framing layer for carrying batches of telemetry records from constrained devices to collectors over TCP or QUIC."
            } else {
                "A collector SHOULD send an ACK at least once per second while DATA frames arrive, and MUST send one when its receive window is full."
            };
            assert_eq!(
                flat.matches(s).count(),
                flat.matches(whole).count(),
                "{ratio}: a sentence cut at a line end:\n{out}"
            );
        }
    }
}

#[test]
fn a_sql_dump_is_outlined_and_says_what_it_dropped() {
    let mut dump = String::from(
        "-- MySQL dump 10.13  Distrib 8.0.36\n--\n-- Host: 127.0.0.1    Database: bookshop\n\n\
         /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!50503 SET NAMES utf8mb4 */;\n\
         /*!40103 SET TIME_ZONE='+00:00' */;\n/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\n",
    );
    for table in ["authors", "books", "orders", "customers"] {
        dump.push_str(&format!(
            "--\n-- Table structure for table `{table}`\n--\n\nDROP TABLE IF EXISTS `{table}`;\n\
             CREATE TABLE `{table}` (\n  `id` int unsigned NOT NULL AUTO_INCREMENT,\n  `name` varchar(200) NOT NULL,\n  \
             PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\nLOCK TABLES `{table}` WRITE;\n"
        ));
        for k in 0..6 {
            let rows: Vec<String> = (0..12).map(|r| format!("({},'{table} row {k}-{r}')", k * 12 + r)).collect();
            dump.push_str(&format!("INSERT INTO `{table}` VALUES {};\n", rows.join(",")));
        }
        dump.push_str("UNLOCK TABLES;\n\n");
    }
    let c = compress(
        &CompressRequest {
            context: &dump,
            query: None,
            budget: Budget::Ratio(0.75),
            granularity: Granularity::Sentence,
        },
        Encoding::Cl100k,
    );
    assert_eq!(c.content_type, omnimemory_engine::compress::ContentType::Code);
    // Dropped statements leave a marker in SQL's own comment syntax, never in C's.
    assert!(c.text.contains("-- \u{2026} "), "{}", c.text);
    assert!(!c.text.contains("// \u{2026} "), "{}", c.text);
    for line in c.text.lines() {
        assert!(dump.lines().any(|l| l == line) || line.trim_start().starts_with("-- \u{2026} "), "{line:?}");
    }
}
