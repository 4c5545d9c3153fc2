//! The `omnimemory` binary: parses the command line and dispatches to the library.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use omnimemory::admin::{self, AdminArgs};
use omnimemory::config::{Overrides, Settings};
use omnimemory::local;
use omnimemory::tokens::Registry;

/// mimalloc instead of the system allocator: a request allocates and frees many small buffers
/// on several threads, where glibc's malloc spent about a sixth of the server's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "omnimemory", version, about = "LLM-context compression service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        #[arg(long)]
        host: Option<IpAddr>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// Compress a file or stdin locally (no server, no key).
    Compress {
        /// The text to compress; stdin when absent or `-`.
        file: Option<PathBuf>,
        #[arg(long)]
        query: Option<String>,
        /// Fraction of tokens to remove, in [0, 1).
        #[arg(long)]
        target: Option<f64>,
        /// Absolute token budget; wins over --target.
        #[arg(long)]
        target_tokens: Option<u64>,
        #[arg(long)]
        model: Option<String>,
        /// `sentence` (default: whole sentences and lines) or `word` (prune words inside them).
        #[arg(long, value_parser = ["sentence", "word"])]
        granularity: Option<String>,
        /// Print the `/compress` response as JSON.
        #[arg(long, conflicts_with = "jsonl")]
        json: bool,
        /// Batch mode: each line of this file is a `/compress` request body.
        #[arg(long, conflicts_with = "file")]
        jsonl: Option<PathBuf>,
        /// Where batch mode writes its responses (stdout by default).
        #[arg(long, requires = "jsonl")]
        out: Option<PathBuf>,
    },
    /// Count the tokens of a file or stdin for a model.
    CountTokens {
        file: Option<PathBuf>,
        #[arg(long, default_value = "gpt-4")]
        model: String,
        #[arg(long)]
        json: bool,
    },
    /// Run the EVAL.md protocol on JSONL files of `{id, query, answers, context}` items (answer
    /// retention per ratio) or of chat, `messages`, code and markdown items (structure
    /// measures); a folder stands for every `.jsonl` file in it.
    Eval {
        #[arg(required = true)]
        data: Vec<PathBuf>,
        /// Compression ratios to measure (2 = keep half the tokens).
        #[arg(long, value_delimiter = ',', default_values_t = [2.0, 4.0, 10.0])]
        ratios: Vec<f64>,
        /// Compress without the query (query-agnostic mode).
        #[arg(long)]
        no_query: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Administer keys, usage and storage.
    Admin(AdminArgs),
    /// Print performance figures.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Records per second through the group-commit usage writer.
    Writer {
        #[arg(long, default_value_t = 20_000)]
        records: u64,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    report(run(cli.command))
}

fn run(command: Command) -> anyhow::Result<bool> {
    let runtime = || tokio::runtime::Runtime::new().map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"));
    match command {
        Command::Serve { host, port } => {
            let settings = Settings::load(&Overrides { host, port })?;
            runtime()?.block_on(omnimemory::http::serve(settings))?;
            Ok(true)
        }
        Command::Compress { file, query, target, target_tokens, model, granularity, json, jsonl, out } => {
            let registry = local_registry()?;
            if let Some(input) = jsonl {
                let failed = local::compress_jsonl(&input, out.as_deref(), &registry)?;
                return Ok(failed == 0);
            }
            let args = local::CompressArgs { file, query, target, target_tokens, model, granularity, json };
            local::compress(args, &registry)?;
            Ok(true)
        }
        Command::CountTokens { file, model, json } => {
            local::count_tokens(file.as_deref(), &model, json, &local_registry()?)?;
            Ok(true)
        }
        Command::Eval { data, ratios, no_query, json } => {
            local::eval(&data, &ratios, !no_query, json)?;
            Ok(true)
        }
        Command::Admin(args) => {
            let settings = Settings::load(&Overrides::default())?;
            let outcome = runtime()?.block_on(admin::run(&args, &settings, &omnimemory::clock::SystemClock))?;
            // A command that wrote its output already (export-usage) has no JSON to add.
            if args.json && !outcome.json.is_null() {
                println!("{}", serde_json::to_string_pretty(&outcome.json)?);
            } else {
                print!("{}", outcome.text);
            }
            Ok(outcome.success)
        }
        Command::Bench { what: BenchCommand::Writer { records, concurrency } } => {
            let report = runtime()?.block_on(omnimemory::bench::usage_writer(records, concurrency))?;
            println!(
                "usage writer: {} records, {} concurrent requests, {:.2} s, {:.0} records/s (durable, SQLite WAL, synchronous=FULL)",
                report.records,
                report.concurrency,
                report.seconds,
                report.per_second()
            );
            Ok(true)
        }
    }
}

/// The model registry of the data folder, for local commands.
fn local_registry() -> anyhow::Result<Registry> {
    let settings = Settings::load(&Overrides::default())?;
    Ok(Registry::load(&settings.home)?)
}

fn report(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
