//! Commands that run the engine locally, with no server and no key: `compress`, `count-tokens`.
//!
//! Input comes from a file or stdin (`-` or no file); errors name the file and the line.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;

use crate::api::{CompressBody, CountResponse};
use omnimemory_engine::tokens::Registry;

/// Reads a whole file, or stdin for `None` / `-`, as UTF-8.
pub fn read_input(file: Option<&Path>) -> anyhow::Result<(String, String)> {
    match file {
        Some(path) if path != Path::new("-") => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            Ok((path.display().to_string(), text))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("<stdin>")?;
            Ok(("<stdin>".into(), text))
        }
    }
}

pub struct CompressArgs {
    pub file: Option<PathBuf>,
    pub query: Option<String>,
    pub target: Option<f64>,
    pub target_tokens: Option<u64>,
    pub model: Option<String>,
    pub granularity: Option<String>,
    pub json: bool,
}

/// Prints the compressed text (or the `/compress` response with `--json`).
pub fn compress(args: CompressArgs, registry: &Registry) -> anyhow::Result<()> {
    let (name, context) = read_input(args.file.as_deref())?;
    let body = CompressBody {
        context: Some(context),
        messages: None,
        keep_system: None,
        keep_last_user: None,
        query: args.query,
        model_id: args.model,
        target_compression: args.target,
        target_tokens: args.target_tokens,
        tool_id: None,
        session_id: None,
        metadata: None,
        granularity: args.granularity,
    };
    let response = body.run(registry).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &response)?;
        writeln!(out)?;
    } else {
        out.write_all(response.compressed_text.as_bytes())?;
        if !response.compressed_text.ends_with('\n') {
            writeln!(out)?;
        }
        eprintln!(
            "{} → {} tokens ({:.1}% removed, {}, quality {:.3})",
            response.original_tokens,
            response.compressed_tokens,
            response.compression_ratio * 100.0,
            response.content_type,
            response.quality_score
        );
    }
    Ok(())
}

/// Batch mode: each input line is a `/compress` body; each output line its response plus the
/// input's `id`, or `{"id", "error": {detail, code}}`. Returns how many lines failed.
pub fn compress_jsonl(input: &Path, output: Option<&Path>, registry: &Registry) -> anyhow::Result<usize> {
    let (name, text) = read_input(Some(input))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let progress = progress_bar(lines.len() as u64);
    let mut failed = 0;
    for (i, line) in lines.iter().enumerate() {
        progress.inc(1);
        if line.trim().is_empty() {
            continue;
        }
        let value: Result<serde_json::Value, String> = serde_json::from_str(line).map_err(|e| e.to_string());
        let id = value.as_ref().ok().and_then(|v| v.get("id").cloned()).unwrap_or(serde_json::Value::Null);
        let result = value
            .and_then(|v| serde_json::from_value::<CompressBody>(v).map_err(|e| e.to_string()))
            .and_then(|body| body.run(registry));
        let line_out = match result {
            Ok(response) => {
                let mut v = serde_json::to_value(&response)?;
                v["id"] = id;
                v
            }
            Err(detail) => {
                failed += 1;
                progress.suspend(|| eprintln!("{name}:{}: {detail}", i + 1));
                json!({"id": id, "error": {"detail": detail, "code": "invalid_request"}})
            }
        };
        serde_json::to_writer(&mut out, &line_out)?;
        writeln!(out)?;
    }
    progress.finish_and_clear();
    out.flush()?;
    Ok(failed)
}

pub fn count_tokens(file: Option<&Path>, model: &str, json: bool, registry: &Registry) -> anyhow::Result<()> {
    let (_, text) = read_input(file)?;
    let response = CountResponse::count(registry, model, &text);
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        let exact = if response.is_exact { "exact" } else { "approximate" };
        println!("{}", response.token_count);
        eprintln!("{} tokens for {} ({}, {exact})", response.token_count, response.model_id, response.tokenizer);
    }
    Ok(())
}

/// `omnimemory eval`: every file given (a folder: its `.jsonl` files, in name order) in turn.
pub fn eval(data: &[PathBuf], ratios: &[f64], use_query: bool, json: bool) -> anyhow::Result<()> {
    if let Some(bad) = ratios.iter().find(|r| !(r.is_finite() && **r >= 1.0)) {
        anyhow::bail!("--ratios takes numbers of at least 1 (2 keeps half the tokens), got {bad}");
    }
    let mut files = Vec::new();
    for path in data {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                anyhow::bail!("{} holds no .jsonl file", path.display());
            }
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut reports = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let (text, report) = eval_file(file, ratios, use_query)?;
        if !json {
            if k > 0 {
                println!();
            }
            print!("{text}");
        }
        reports.push(json!({"file": file.display().to_string(), "report": report}));
    }
    if json {
        // One file: its report as before; several: `[{file, report}, …]`.
        let out = match <[serde_json::Value; 1]>::try_from(reports) {
            Ok([one]) => one["report"].clone(),
            Err(all) => serde_json::Value::Array(all),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// Retention, JSON validity and achieved ratio per ratio (EVAL.md) for one file, or the
/// structure measures of a chat, code or markdown file: the printed table and its JSON.
fn eval_file(data: &Path, ratios: &[f64], use_query: bool) -> anyhow::Result<(String, serde_json::Value)> {
    if let Some(items) = omnimemory_engine::eval::structure::load(data).map_err(anyhow::Error::msg)? {
        let progress = progress_bar(items.len() as u64);
        let rows = omnimemory_engine::eval::structure::run(&items, ratios, &mut || progress.inc(1));
        progress.finish_and_clear();
        let text =
            format!("{}: {} items\n{}", data.display(), items.len(), omnimemory_engine::eval::structure::render(&rows));
        return Ok((text, serde_json::to_value(&rows)?));
    }
    let items = omnimemory_engine::eval::load_jsonl(data).map_err(anyhow::Error::msg)?;
    let progress = progress_bar(items.len() as u64);
    let report = omnimemory_engine::eval::run(&items, ratios, use_query, &mut || progress.inc(1));
    progress.finish_and_clear();
    let text = format!("{}: {} items\n{report}", data.display(), items.len());
    Ok((text, serde_json::to_value(&report)?))
}

/// A progress bar on stderr when it is a terminal; hidden when piped.
pub fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta}") {
        bar.set_style(style);
    }
    bar
}
