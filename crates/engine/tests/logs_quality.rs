//! What a user notices about log compression, through the public `compress` call (cl100k):
//! logs in formats the detector has no rule for are still handled as logs, every error
//! template survives, output lines are input lines or marked collapse lines whose counts add
//! up, the budget holds, and template coverage stays high at 4x and 10x.
//!
//! Inputs are generated here (`support/loghub.rs`: HDFS-like, HPC-like, RFC 5424, glog and
//! tab-separated logs with known templates). `logs_dev_and_its_variants` also measures
//! `shared/data/logs-dev` and the variants issue 9 names when that folder exists beside the
//! repository, and skips with a message when it does not.

#[path = "support/loghub.rs"]
mod loghub;

use loghub::{System, TimeFormat};
use omnimemory_engine::compress::logs::is_collapse_line;
use omnimemory_engine::compress::{Budget, CompressRequest, Compressed, ContentType, compress};
use omnimemory_engine::tokens::Encoding;
use std::collections::HashSet;
use std::path::PathBuf;

fn run(text: &str, target: f64) -> Compressed {
    compress(
        &CompressRequest { context: text, query: None, budget: Budget::Ratio(target), granularity: Default::default() },
        Encoding::Cl100k,
    )
}

/// Coverage and error coverage of one system at one target, after checking the invariants.
fn measure(sys: &System, target: f64) -> (f64, Option<f64>, Vec<String>) {
    let text = sys.text();
    let c = run(&text, target);
    assert_eq!(c.content_type, ContentType::Logs, "{}: not logs", sys.name);
    assert!(!c.over_budget, "{}", sys.name);
    assert!(c.compressed_tokens <= c.budget_tokens, "{}", sys.name);
    assert_eq!(Encoding::Cl100k.count(&c.text), c.compressed_tokens);
    let input: HashSet<&str> = sys.lines.iter().map(String::as_str).collect();
    for line in c.text.split('\n') {
        assert!(
            input.contains(line) || is_collapse_line(line),
            "{} @{target}: {line:?} is neither an input line nor a collapse line",
            sys.name
        );
    }
    loghub::coverage(&c.text, &loghub::templates(sys))
}

#[test]
fn hdfs_and_hpc_style_logs_are_detected_as_logs() {
    let systems = loghub::synthetic_systems(400);
    for name in ["HDFS-like", "HPC-like"] {
        let sys = systems.iter().find(|s| s.name == name).unwrap();
        let c = run(&sys.text(), 0.75);
        assert_eq!(c.content_type, ContentType::Logs, "{name}");
        // The messages survive, not only numbers and ids.
        assert!(
            c.text.contains("PacketResponder") || c.text.contains("Component State Change"),
            "{name}: {}",
            &c.text[..c.text.len().min(400)]
        );
    }
}

#[test]
fn unseen_formats_keep_every_error_and_most_templates() {
    for sys in loghub::synthetic_systems(2000) {
        for (target, least) in [(0.75, 0.95), (0.9, 0.85)] {
            let (cov, err, missed) = measure(&sys, target);
            assert!(cov >= least, "{} @{target}: coverage {cov:.3}, missed {missed:?}", sys.name);
            assert_eq!(err, Some(1.0), "{} @{target}: missed {missed:?}", sys.name);
        }
    }
}

#[test]
fn collapse_lines_count_the_lines_they_stand_for() {
    let mut log = String::new();
    for i in 0..600 {
        log.push_str(&format!("{} worker-{} processed batch {i} in {}ms\n", 1_700_000_000 + i * 3, i % 4, 10 + i % 90));
        if i == 300 {
            log.push_str("1700000900 worker-2 batch 300 failed: disk quota exceeded\n");
        }
    }
    let c = run(&log, 0.9);
    assert_eq!(c.content_type, ContentType::Logs);
    assert!(c.text.contains("batch 300 failed: disk quota exceeded"));
    let mut shown = 0usize;
    let mut folded = 0usize;
    for line in c.text.split('\n') {
        if is_collapse_line(line) {
            let nums: Vec<usize> = line.split(|ch: char| !ch.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
            folded += nums[0] * nums.get(1).copied().unwrap_or(1);
        } else {
            shown += 1;
        }
    }
    // Every line is shown or counted once in a collapse line.
    assert_eq!(shown + folded, 601, "{}", c.text);
    assert!(c.text.contains("  [\u{2026} "), "{}", c.text);
}

#[test]
fn the_same_input_gives_the_same_output() {
    let sys = &loghub::synthetic_systems(800)[2];
    let text = sys.text();
    assert_eq!(run(&text, 0.9).text, run(&text, 0.9).text);
}

#[test]
fn a_tiny_budget_is_honoured() {
    let sys = &loghub::synthetic_systems(300)[0];
    let text = sys.text();
    for tokens in [1, 5, 20, 60, 200] {
        let c = compress(
            &CompressRequest {
                context: &text,
                query: None,
                budget: Budget::Tokens(tokens),
                granularity: Default::default(),
            },
            Encoding::Cl100k,
        );
        assert!(c.compressed_tokens <= tokens || c.over_budget, "{tokens}: {}", c.compressed_tokens);
        assert_eq!(Encoding::Cl100k.count(&c.text), c.compressed_tokens);
    }
}

/// `shared/data/logs-dev` beside the repository, if it is there.
fn logs_dev() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/logs-dev");
    dir.is_dir().then_some(dir)
}

#[test]
fn logs_dev_and_its_variants() {
    let Some(dir) = logs_dev() else {
        eprintln!("skipped: shared/data/logs-dev is not beside the repository");
        return;
    };
    let systems: Vec<System> = loghub::SYSTEMS.iter().filter_map(|s| loghub::load_system(&dir, s)).collect();
    assert_eq!(systems.len(), loghub::SYSTEMS.len(), "a system did not load");
    let mean = |systems: &[System], target: f64| -> (f64, f64) {
        let (mut cov, mut err, mut n_err) = (0.0, 0.0, 0);
        for sys in systems {
            let (c, e, _) = measure(sys, target);
            cov += c;
            if let Some(e) = e {
                err += e;
                n_err += 1;
            }
        }
        (cov / systems.len() as f64, err / n_err.max(1) as f64)
    };
    let base4 = mean(&systems, 0.75);
    let base10 = mean(&systems, 0.9);
    assert_eq!(base4, (1.0, 1.0), "logs-dev at 4x");
    assert!(base10.0 >= 0.97, "logs-dev at 10x: {base10:?}");
    assert_eq!(base10.1, 1.0, "logs-dev at 10x: {base10:?}");

    let by_name = |n: &str| systems.iter().find(|s| s.name == n).unwrap();
    let mut variants: Vec<(&str, Vec<System>)> = TimeFormat::ALL
        .iter()
        .map(|&f| (f.name(), systems.iter().map(|s| loghub::rewrite_timestamps(s, f)).collect()))
        .collect();
    variants
        .push(("interleaved", loghub::PAIRS.iter().map(|(a, b)| loghub::interleave(by_name(a), by_name(b))).collect()));
    for (name, v) in &variants {
        for (target, base) in [(0.75, base4), (0.9, base10)] {
            let (cov, err) = mean(v, target);
            assert!(
                cov >= base.0 - 0.02 && err >= base.1 - 0.02,
                "{name} @{target}: coverage {cov:.3}, errors {err:.3} against {base:?}"
            );
        }
    }
}
