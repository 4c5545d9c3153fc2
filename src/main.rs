//! The `omnimemory` binary: parses the command line and dispatches to the library.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use omnimemory::admin::{self, AdminArgs};
use omnimemory::config::{Overrides, Settings};

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
    /// Administer keys, usage and storage.
    Admin(AdminArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve { host, port } => {
            let result = Settings::load(&Overrides { host, port })
                .map_err(anyhow::Error::from)
                .and_then(|settings| runtime.block_on(omnimemory::http::serve(settings)));
            report(result.map(|()| true))
        }
        Command::Admin(args) => {
            let result = Settings::load(&Overrides::default()).map_err(anyhow::Error::from).and_then(|settings| {
                let outcome = runtime.block_on(admin::run(&args, &settings))?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&outcome.json)?);
                } else {
                    print!("{}", outcome.text);
                }
                Ok(outcome.success)
            });
            report(result)
        }
    }
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
