//! `orchflow-eval`: runs the solver over a JSONL benchmark and writes a report.
//!
//! ```text
//! orchflow-eval --data orchflow-agent/data/sample_eval.jsonl --out eval-out --offline
//! orchflow-eval --data items.jsonl --out out --ollama qwen3:8b --concurrency 2
//! orchflow-eval --data items.jsonl --out out --openai gpt-4o-mini
//! ```
//!
//! `DIR/results.jsonl` gets one line per finished item (a rerun resumes from it: finished items
//! are not asked again); `DIR/report.json` and `DIR/report.md` get the report, which is also
//! printed. Exit status: 0 when the eval ran (whatever its accuracy), 1 when it could not
//! (unreadable items, unreachable configuration, unwritable output), 2 for bad arguments.

use clap::{ArgGroup, Parser, ValueEnum};
use orchflow_agent::agent::AgentConfig;
use orchflow_agent::eval::{EvalItem, EvalOptions, read_items, run_eval};
use orchflow_agent::llm::ollama::OllamaClient;
use orchflow_agent::llm::openai::{DEFAULT_API_KEY_VAR, OpenAiClient};
use orchflow_agent::offline::{OfflineModel, offline_tools};
use orchflow_agent::solver::{MAX_STEPS_CAP, Solver, SolverConfig};
use orchflow_agent::tools::search::TavilySearch;
use orchflow_agent::{LlmClient, Tool};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Which search tool the solver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SearchBackend {
    /// Tavily when `TAVILY_API_KEY` is set, else the offline search.
    Auto,
    /// The offline BM25 search over the built-in notes.
    Local,
    /// Tavily web search (needs `TAVILY_API_KEY`).
    Tavily,
}

/// Runs the orchflow solver over a JSONL benchmark (integer and multiple-choice items) and
/// writes results.jsonl, report.json and report.md into the output directory. Reruns resume:
/// items already in results.jsonl are not asked again.
#[derive(Debug, Parser)]
#[command(name = "orchflow-eval", version)]
#[command(group(ArgGroup::new("model").args(["offline", "ollama", "openai"])))]
struct Args {
    /// The items: JSONL, one {"id", "question", "answer", "kind": "integer" | "choice"} a line.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,

    /// The output directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// How many items are solved at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,

    /// The solver's step budget per item.
    #[arg(long, value_name = "N", default_value_t = SolverConfig::default().max_steps,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_STEPS_CAP)))]
    max_steps: u32,

    /// Only the first N items of the file.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Use the offline rule-based stand-in for a model (the default when no model is given).
    #[arg(long)]
    offline: bool,

    /// Use this model on an Ollama server.
    #[arg(long, value_name = "MODEL")]
    ollama: Option<String>,

    /// The Ollama server.
    #[arg(long, value_name = "URL", requires = "ollama",
          default_value = orchflow_agent::llm::ollama::DEFAULT_BASE_URL)]
    ollama_url: String,

    /// Use this model on an OpenAI-compatible server (key from OPENAI_API_KEY; with
    /// --base-url and no key set, requests go without one, as local servers expect).
    #[arg(long, value_name = "MODEL")]
    openai: Option<String>,

    /// The OpenAI-compatible server.
    #[arg(long, value_name = "URL", requires = "openai")]
    base_url: Option<String>,

    /// The search tool given to a model-driven solver (the offline solver always searches
    /// offline).
    #[arg(long, value_enum, default_value_t = SearchBackend::Auto)]
    search: SearchBackend,

    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("orchflow-eval: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut items: Vec<EvalItem> = read_items(&args.data).map_err(|e| e.to_string())?;
    if let Some(limit) = args.limit {
        items.truncate(limit);
    }
    let solver = build_solver(&args)?;
    let results_path = args.out.join("results.jsonl");
    let options = EvalOptions {
        concurrency: args.concurrency as usize,
        results_path: Some(results_path.clone()),
        progress: !args.no_progress,
    };
    eprintln!(
        "orchflow-eval: {} item(s) from {}, model {}, results in {}",
        items.len(),
        args.data.display(),
        solver.config().model.model,
        results_path.display()
    );
    let solver = &solver;
    let solve = move |item: EvalItem| async move { solver.solve(&item.question).await };
    let report = run_eval(items, solve, &options)
        .await
        .map_err(|e| e.to_string())?;
    let (json, md) = report.write(&args.out).map_err(|e| e.to_string())?;
    println!("{}", report.to_markdown());
    eprintln!(
        "orchflow-eval: report written to {} and {}",
        json.display(),
        md.display()
    );
    Ok(())
}

fn build_solver(args: &Args) -> Result<Solver, String> {
    let config = |model: &str| SolverConfig {
        max_steps: args.max_steps,
        model: AgentConfig::default().with_model(model),
        ..SolverConfig::default()
    };
    if let Some(model) = &args.ollama {
        let client = OllamaClient::builder()
            .base_url(args.ollama_url.clone())
            .build()
            .map_err(|e| format!("cannot set up the Ollama client: {e}"))?;
        return Ok(Solver::new(Arc::new(client), tools(args)?, config(model)));
    }
    if let Some(model) = &args.openai {
        let mut builder = OpenAiClient::builder();
        if let Some(url) = &args.base_url {
            builder = builder.base_url(url.clone());
            let key_set = std::env::var(DEFAULT_API_KEY_VAR).is_ok_and(|k| !k.trim().is_empty());
            if !key_set {
                builder = builder.no_api_key();
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the OpenAI-compatible client: {e}"))?;
        let client: Arc<dyn LlmClient> = Arc::new(client);
        return Ok(Solver::new(client, tools(args)?, config(model)));
    }
    Ok(Solver::new(
        Arc::new(OfflineModel::new()),
        offline_tools(),
        config("offline"),
    ))
}

/// The offline tools, with the search swapped for Tavily when asked (or, with `auto`, when a
/// key is set).
fn tools(args: &Args) -> Result<Vec<Arc<dyn Tool>>, String> {
    let tavily = TavilySearch::from_env();
    let use_tavily = match args.search {
        SearchBackend::Local => false,
        SearchBackend::Auto => tavily.has_key(),
        SearchBackend::Tavily if tavily.has_key() => true,
        SearchBackend::Tavily => {
            return Err("--search tavily needs TAVILY_API_KEY".to_string());
        }
    };
    let mut tools = offline_tools();
    if use_tavily {
        tools.retain(|t| t.name() != "search");
        tools.push(Arc::new(tavily));
    }
    Ok(tools)
}
