//! The command line: clap definitions and the commands, which wire model, graph,
//! plan, providers, apply and state together and choose exit codes.

pub mod docs;
pub mod json_schema;
pub mod progress;
pub mod render;

use crate::apply::events::{EventSink, Fanout, LogEvents};
use crate::apply::ApplyOptions;
use crate::ops::{self, Env, PlanFailure};
use crate::signals::shutdown_signal;
use crate::state::{lease, LeaseOptions};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use progress::Progress;
use reconcile_aws::{CallCounter, Cx, Registry};
use reconcile_core::graph::Graph;
use reconcile_core::model::{self, Diagnostic, InputValues, Stack};
use reconcile_core::plan::{self, Plan};
use reconcile_core::state::{State, StateLocation, StateResource, StateStore};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::ops::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};

#[derive(Parser, Debug)]
#[command(
    name = "reconcile",
    version,
    about = "Declarative AWS reconciler: TOML desired state, plan, apply, drift"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory holding state files and leases, for stacks whose state is local.
    #[arg(long, global = true, default_value = "state")]
    pub state_dir: PathBuf,
    /// Where every stack's state lives this run (s3://bucket/prefix), whatever
    /// its `[stack] state` says.
    #[arg(long, global = true, value_parser = parse_state_location)]
    pub state: Option<StateLocation>,
    /// How long this run's lease on a stack lasts unrenewed, in seconds: a
    /// lease nobody renews for that long is taken over by the next run.
    #[arg(long, global = true, env = "RECONCILE_LEASE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_seconds: u64,
    /// AWS endpoint (an emulator, say).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Overrides the stack's region.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Sets an input: NAME=VALUE (repeatable).
    #[arg(long = "input", global = true, value_parser = parse_input)]
    pub inputs: Vec<(String, String)>,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_state_location(s: &str) -> Result<StateLocation, String> {
    StateLocation::parse(s)
}

fn parse_input(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}`: write --input NAME=VALUE"))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse, type-check and build the graph; makes no AWS call.
    Validate { path: Option<PathBuf> },
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Make AWS match the desired state.
    Apply(ApplyArgs),
    /// Delete everything the stack's state tracks, in reverse dependency order.
    Destroy {
        path: Option<PathBuf>,
        #[arg(long)]
        auto_approve: bool,
        /// At most N operations at once (default: as many as the graph allows,
        /// narrowed per AWS service while it throttles).
        #[arg(long)]
        parallelism: Option<usize>,
        /// Print AWS calls by service and operation.
        #[arg(long)]
        timings: bool,
    },
    /// Keep watching for drift: observe every stack each interval, report
    /// differences as events, optionally repair them. Runs until SIGTERM/SIGINT.
    Watch(WatchArgs),
    /// Print the dependency graph as Graphviz DOT.
    Graph { path: Option<PathBuf> },
    /// Inspect or edit state.
    State {
        #[command(subcommand)]
        command: StateCommand,
        /// The stack (needed when the state directory holds several).
        #[arg(long, global = true)]
        stack: Option<String>,
    },
    /// Adopt an existing AWS resource into state under ADDR.
    Import {
        address: String,
        aws_id: String,
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// Print the resource reference (docs/resources.md) as Markdown.
    #[command(hide = true)]
    Docs,
    /// Print the JSON Schema of stack TOML files (docs/stack.schema.json), for
    /// editors such as Taplo / Even Better TOML.
    Schema,
    /// Print the shell completion script for SHELL.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    pub path: Option<PathBuf>,
    /// Machine-readable plan on stdout.
    #[arg(long)]
    pub json: bool,
    /// Save the plan for `apply --plan FILE`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 0 with no changes, 2 with changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Limit to these addresses and what they depend on.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Print AWS calls by service and operation.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    pub path: Option<PathBuf>,
    /// Apply a plan saved with `plan --out`.
    #[arg(long, conflicts_with = "path")]
    pub plan: Option<PathBuf>,
    #[arg(long)]
    pub auto_approve: bool,
    /// At most N operations at once (default: 64, as the graph allows,
    /// narrowed per AWS service while it throttles).
    #[arg(long)]
    pub parallelism: Option<usize>,
    #[arg(long = "target")]
    pub targets: Vec<String>,
    #[arg(long)]
    pub timings: bool,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// A stack, or a directory of stacks (default ./desired-state/).
    pub path: Option<PathBuf>,
    /// Time between cycles (`30s`, `5m`, `1h`), 10% jitter either way.
    #[arg(long, default_value = "5m", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Repair differences through the same engine as `apply --auto-approve`;
    /// protected resources are never deleted or replaced.
    #[arg(long)]
    pub remediate: bool,
    /// Where to serve /metrics, /healthz and /readyz (`none` to turn it off; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:9464", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
    /// One cycle, then exit: 0 no differences, 2 differences, 1 error.
    #[arg(long)]
    pub once: bool,
    /// At most N operations at once when remediating (default: 64, as the
    /// graph allows, narrowed per AWS service while it throttles).
    #[arg(long)]
    pub parallelism: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct MetricsAddr(pub Option<std::net::SocketAddr>);

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}`: {e}; write a duration such as 30s, 5m or 1h"))?;
    if d < std::time::Duration::from_millis(100) {
        return Err(format!("`{s}` is too short; use at least 100ms"));
    }
    Ok(d)
}

fn parse_metrics_addr(s: &str) -> Result<MetricsAddr, String> {
    if s == "none" {
        return Ok(MetricsAddr(None));
    }
    s.parse()
        .map(|a| MetricsAddr(Some(a)))
        .map_err(|e| format!("`{s}`: {e}; write HOST:PORT such as 127.0.0.1:9464, or `none`"))
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Addresses and AWS ids tracked.
    List,
    /// One resource's state entry, or with no address the whole state.
    Show {
        address: Option<String>,
        /// Read this earlier version (from `state history`).
        #[arg(long)]
        version: Option<String>,
    },
    /// Forget a resource without deleting it in AWS.
    Rm { address: String },
    /// The versions of the stack's state kept (S3: the bucket's versions).
    History,
    /// Release the stack's lease whoever holds it, and say who did. For a
    /// holder that is gone when waiting out its lease is not an option.
    Unlock,
    /// Move the stack's state to another backend, under both leases; the
    /// old copy is marked as moved and refuses further runs.
    Migrate {
        /// Where to: s3://bucket/prefix or a directory.
        #[arg(long, value_parser = parse_state_location)]
        to: StateLocation,
    },
}

/// A failure already explained to the user on stderr.
struct Reported;

type Outcome = Result<u8, Reported>;

fn report(msg: impl std::fmt::Display) -> Reported {
    eprintln!("error: {msg}");
    Reported
}

fn report_diags(diags: &[Diagnostic]) -> Reported {
    for d in diags {
        eprintln!("{d}");
    }
    eprintln!(
        "\n{} problem{} found; nothing was changed.",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    Reported
}

pub fn init_tracing(g: &Global) {
    let level = match g.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("RECONCILE_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "reconcile={level},reconcile_aws={level},reconcile_core={level}"
            ))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match g.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What `ops` needs from the global flags.
pub fn env(g: &Global) -> Env {
    Env {
        catalog: Arc::new(Registry::default()),
        state_dir: g.state_dir.clone(),
        state: g.state.clone(),
        lease: LeaseOptions {
            duration: std::time::Duration::from_secs(g.lease_seconds),
            wait: true,
        },
        endpoint_url: g.endpoint_url.clone(),
        region: g.region.clone(),
        inputs: InputValues::from_env(g.inputs.iter().cloned().collect()),
    }
}

pub async fn run(cli: Cli) -> u8 {
    let g = cli.global.clone();
    let env = env(&g);
    let result = match cli.command {
        Command::Validate { path } => for_each_stack(path, |p| validate(&env, p)),
        Command::Graph { path } => for_each_stack(path, |p| graph(&env, p)),
        Command::Plan(args) => {
            let mut worst = Ok(EXIT_OK);
            for p in match stacks(args.path.clone()) {
                Ok(p) => p,
                Err(r) => return code(Err(r)),
            } {
                worst = combine(worst, plan_cmd(&env, &p, &args).await);
            }
            worst
        }
        Command::Apply(args) => match &args.plan {
            Some(file) => apply_saved(&env, file, &args).await,
            None => {
                let mut worst = Ok(EXIT_OK);
                for p in match stacks(args.path.clone()) {
                    Ok(p) => p,
                    Err(r) => return code(Err(r)),
                } {
                    worst = combine(worst, apply_cmd(&env, &p, &args, false).await);
                }
                worst
            }
        },
        Command::Destroy {
            path,
            auto_approve,
            parallelism,
            timings,
        } => {
            let args = ApplyArgs {
                path: None,
                plan: None,
                auto_approve,
                parallelism,
                targets: vec![],
                timings,
            };
            let mut worst = Ok(EXIT_OK);
            for p in match stacks(path) {
                Ok(p) => p,
                Err(r) => return code(Err(r)),
            } {
                worst = combine(worst, apply_cmd(&env, &p, &args, true).await);
            }
            worst
        }
        Command::Watch(args) => {
            let opts = crate::daemon::WatchArgs {
                path: args.path,
                interval: args.interval,
                remediate: args.remediate,
                metrics_addr: args.metrics_addr.0,
                once: args.once,
                parallelism: args.parallelism,
            };
            return crate::daemon::run(env, g.log_format == LogFormat::Json, opts).await;
        }
        Command::State { command, stack } => state_cmd(&env, stack, command).await,
        Command::Import {
            address,
            aws_id,
            path,
        } => import(&env, path, &address, &aws_id).await,
        Command::Docs => {
            print!("{}", docs::render(&env.catalog));
            Ok(EXIT_OK)
        }
        Command::Schema => {
            print!("{}", json_schema::render(&env.catalog));
            Ok(EXIT_OK)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "reconcile",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
    };
    code(result)
}

fn code(r: Outcome) -> u8 {
    r.unwrap_or(EXIT_ERROR)
}

fn combine(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (Err(_), _) | (_, Err(_)) => Err(Reported),
        (Ok(x), Ok(y)) => Ok(x.max(y)),
    }
}

/// PATH, or every stack under `./desired-state/`.
fn stacks(path: Option<PathBuf>) -> Result<Vec<PathBuf>, Reported> {
    match path {
        Some(p) => Ok(vec![p]),
        None => {
            let found =
                model::discover(Path::new("desired-state")).map_err(|d| report_diags(&[d]))?;
            if found.is_empty() {
                return Err(report(
                    "no stack under ./desired-state/: add a .toml file there, or pass a path",
                ));
            }
            Ok(found)
        }
    }
}

fn for_each_stack(path: Option<PathBuf>, mut f: impl FnMut(&Path) -> Outcome) -> Outcome {
    let mut worst = Ok(EXIT_OK);
    for p in stacks(path)? {
        worst = combine(worst, f(&p));
    }
    worst
}

fn load(env: &Env, path: &Path) -> Result<(Stack, Graph), Reported> {
    ops::load(env, path).map_err(|d| report_diags(&d))
}

fn validate(env: &Env, path: &Path) -> Outcome {
    let (stack, _) = load(env, path)?;
    println!(
        "{}: stack `{}` is valid ({} resources).",
        path.display(),
        stack.name,
        stack.resources.len()
    );
    Ok(EXIT_OK)
}

fn graph(env: &Env, path: &Path) -> Outcome {
    let (stack, graph) = load(env, path)?;
    print!("{}", graph.dot(&stack.name));
    Ok(EXIT_OK)
}

/// Observes and plans, explaining on stderr why when no plan can be made.
async fn make_plan(
    cx: &Cx,
    env: &Env,
    stack: &Stack,
    graph: &Graph,
    state: &State,
    destroy: bool,
    targets: &[String],
) -> Result<ops::Planned, Reported> {
    ops::plan(cx, &env.catalog, stack, graph, state, destroy, targets)
        .await
        .map_err(|e| match e {
            PlanFailure::Refused(errs) => {
                for e in &errs {
                    eprintln!("error: {e}");
                }
                eprintln!("\nThe plan was refused before any change; nothing was changed.");
                Reported
            }
            PlanFailure::Observe(e) => {
                report(format!("stack {}: {e}; nothing was changed", stack.name))
            }
            e @ PlanFailure::UnknownTarget(_) => report(e),
        })
}

async fn plan_cmd(env: &Env, path: &Path, args: &PlanArgs) -> Outcome {
    let (stack, graph) = load(env, path)?;
    let store =
        ops::store(env, &stack.name, stack.state.as_deref(), &stack.region).map_err(report)?;
    // A plan takes no lease: it changes nothing, and a saved plan is refused
    // once state moved on.
    let state = ops::read(store, &stack.region).await.map_err(report)?;
    let calls = CallCounter::default();
    let cx = ops::connect(env, &stack.region, &stack.name, &calls).await;
    let mut p = make_plan(&cx, env, &stack, &graph, &state, false, &args.targets).await?;
    if let Some(l) = &env.state {
        p.plan.state_location = Some(l.to_string());
    }
    if let Some(out) = &args.out {
        let body = serde_json::to_vec_pretty(&p.plan).expect("plan serialises");
        std::fs::write(out, body)
            .map_err(|e| report(format!("cannot write {}: {e}", out.display())))?;
    }
    if args.json {
        let doc = serde_json::json!({
            "plan": p.plan,
            "summary": p.plan.counts(),
            "has_changes": p.plan.has_changes(),
            "aws_calls": calls_json(&calls),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("plan serialises")
        );
    } else {
        print!(
            "{}",
            render::plan_text(&p.plan, p.observed, p.seconds, calls.total())
        );
        if let Some(out) = &args.out {
            println!(
                "\nSaved the plan to {}: apply it with `reconcile apply --plan {}`.",
                out.display(),
                out.display()
            );
        }
        if args.timings {
            print!(
                "\n{}",
                render::calls_table(&calls.snapshot(), &calls.throttled_all())
            );
        }
    }
    Ok(if args.detailed_exitcode && p.plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

fn calls_json(calls: &CallCounter) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for ((svc, op), n) in calls.snapshot() {
        m.insert(format!("{svc}.{op}"), n.into());
    }
    serde_json::Value::Object(m)
}

fn confirm(auto_approve: bool, what: &str) -> Result<(), Reported> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(report(format!(
            "{what} needs confirmation and there is no terminal to ask on: pass --auto-approve; nothing was changed"
        )));
    }
    print!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        Err(report(format!("{what} cancelled; nothing was changed")))
    }
}

async fn apply_cmd(env: &Env, path: &Path, args: &ApplyArgs, destroy: bool) -> Outcome {
    let (stack, graph) = load(env, path)?;
    let store =
        ops::store(env, &stack.name, stack.state.as_deref(), &stack.region).map_err(report)?;
    let op = if destroy { "destroy" } else { "apply" };
    let (lease, state) = ops::open(store.clone(), &stack.name, op, &stack.region, &env.lease)
        .await
        .map_err(report)?;
    let calls = CallCounter::default();
    let cx = ops::connect(env, &stack.region, &stack.name, &calls).await;
    let p = make_plan(&cx, env, &stack, &graph, &state, destroy, &args.targets).await?;
    print!(
        "{}",
        render::plan_text(&p.plan, p.observed, p.seconds, calls.total())
    );
    if p.plan.has_changes() {
        confirm(
            args.auto_approve,
            if destroy {
                "destroy these resources"
            } else {
                "apply these changes"
            },
        )?;
    }
    execute(cx, env, store, p.plan, state, args, &calls, &lease).await
}

async fn apply_saved(env: &Env, file: &Path, args: &ApplyArgs) -> Outcome {
    let text = std::fs::read_to_string(file)
        .map_err(|e| report(format!("cannot read plan {}: {e}", file.display())))?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| report(format!("{} is not a saved plan: {e}", file.display())))?;
    if plan.format_version != plan::PLAN_FORMAT_VERSION {
        return Err(report(format!(
            "{} has plan format {}, this reconcile reads {}; make the plan again",
            file.display(),
            plan.format_version,
            plan::PLAN_FORMAT_VERSION
        )));
    }
    let store = ops::store(
        env,
        &plan.stack,
        plan.state_location.as_deref(),
        &plan.region,
    )
    .map_err(report)?;
    let (lease, state) = ops::open(
        store.clone(),
        &plan.stack,
        "apply",
        &plan.region,
        &env.lease,
    )
    .await
    .map_err(report)?;
    if state.lineage != plan.state_lineage || state.serial != plan.state_serial {
        return Err(report(format!(
            "the state of stack `{}` changed since this plan was made (serial {} then, {} now); run `reconcile plan` again. Nothing was changed",
            plan.stack, plan.state_serial, state.serial
        )));
    }
    let region = env.region.clone().unwrap_or(plan.region.clone());
    let calls = CallCounter::default();
    let cx = ops::connect(env, &region, &plan.stack, &calls).await;
    print!("{}", render::plan_text(&plan, plan.observed.len(), 0.0, 0));
    execute(cx, env, store, plan, state, args, &calls, &lease).await
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    cx: Cx,
    env: &Env,
    store: Arc<dyn StateStore>,
    plan: Plan,
    state: State,
    args: &ApplyArgs,
    calls: &CallCounter,
    lease: &lease::LeaseGuard,
) -> Outcome {
    let started = Instant::now();
    let had_changes = plan.has_changes();
    let adopted = plan.adoptions.len();
    if had_changes {
        println!();
    }
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let lost = tokio::spawn(cancel_on_lost_lease(lease.lost_signal(), cancel.clone()));
    let events: Arc<dyn EventSink> =
        Arc::new(Fanout(vec![Arc::new(Progress::new()), Arc::new(LogEvents)]));
    let options = ApplyOptions {
        parallelism: args.parallelism,
        cancel,
        events,
    };
    let rep = ops::apply(cx, env.catalog.clone(), store, plan, state, options).await;
    signals.abort();
    lost.abort();
    let rep = rep.map_err(report)?;
    if had_changes {
        println!(
            "\nApply {}: {} created, {} updated, {} deleted{} in {:.1} s, {} AWS calls.",
            if !rep.failed.is_empty() {
                "FAILED"
            } else if rep.interrupted {
                "INTERRUPTED"
            } else {
                "complete"
            },
            rep.created,
            rep.updated,
            rep.deleted,
            if adopted > 0 {
                format!(", {adopted} adopted")
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64(),
            calls.total()
        );
    }
    if !rep.outputs.is_empty() {
        println!("\nOutputs:");
        for (k, v) in &rep.outputs {
            println!("  {k} = {v}");
        }
    }
    if args.timings {
        print!(
            "\n{}",
            render::calls_table(&calls.snapshot(), &calls.throttled_all())
        );
    }
    if rep.interrupted && lease.lost() {
        eprintln!(
            "error: this run lost its lease on the stack (another run may hold it now), so it started nothing new; {} operation(s) not started: {}. State records everything that was done.",
            rep.not_started.len(),
            rep.not_started.join(", ")
        );
    } else if rep.interrupted {
        eprintln!(
            "error: interrupted; {} operation(s) not started: {}. State records everything that was done; run apply again to finish.",
            rep.not_started.len(),
            rep.not_started.join(", ")
        );
    }
    if rep.failed.is_empty() && !rep.interrupted {
        return Ok(EXIT_OK);
    }
    if rep.failed.is_empty() {
        return Err(Reported);
    }
    for (addr, e) in &rep.failed {
        eprintln!("error: {addr}: {e}");
    }
    if !rep.skipped.is_empty() {
        eprintln!(
            "skipped because a dependency failed: {}",
            rep.skipped.join(", ")
        );
    }
    eprintln!("State records everything that was done; fix the cause and run apply again.");
    Err(Reported)
}

/// Cancels `token` once the run's lease is lost: whoever holds the stack
/// now must not meet new mutations from this run.
async fn cancel_on_lost_lease(lost: lease::LostSignal, token: CancellationToken) {
    while !lost.lost() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    token.cancel();
}

/// Cancels `token` at the first SIGINT or SIGTERM: operations in flight finish
/// and are recorded, nothing new starts. A second signal exits at once; the
/// journal in state covers what was in flight.
async fn cancel_on_signal(token: CancellationToken) {
    shutdown_signal().await;
    token.cancel();
    shutdown_signal().await;
    std::process::exit(130);
}

/// The stack a state command is about: its name, region and where its state
/// lives. `--stack` names it; otherwise the one stack under
/// ./desired-state/, or the one stack with local state.
fn state_target(
    env: &Env,
    stack: Option<String>,
) -> Result<(String, String, Option<String>), Reported> {
    let declared: Vec<Stack> = model::discover(Path::new("desired-state"))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| ops::load(env, p).ok().map(|(s, _)| s))
        .collect();
    let region = |s: Option<&Stack>| {
        env.region
            .clone()
            .or(s.map(|s| s.region.clone()))
            .unwrap_or_else(|| "us-east-1".into())
    };
    let name = match stack {
        Some(s) => s,
        None if declared.len() == 1 => declared[0].name.clone(),
        None => {
            let mut names: Vec<String> = std::fs::read_dir(&env.state_dir)
                .map_err(|e| {
                    report(format!(
                        "cannot read {}: {e}; pass --stack NAME",
                        env.state_dir.display()
                    ))
                })?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".json"))
                        .map(str::to_string)
                })
                .collect();
            names.sort();
            match names.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(report(format!(
                        "no state in {}; pass --stack NAME",
                        env.state_dir.display()
                    )))
                }
                many => {
                    return Err(report(format!(
                        "several stacks have state ({}): pass --stack NAME",
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let found = declared.iter().find(|s| s.name == name);
    Ok((name, region(found), found.and_then(|s| s.state.clone())))
}

async fn state_cmd(env: &Env, stack: Option<String>, cmd: StateCommand) -> Outcome {
    let (name, region, declared) = state_target(env, stack)?;
    let store = ops::store(env, &name, declared.as_deref(), &region).map_err(report)?;
    let not_found =
        |address: &str| report(format!("`{address}` is not in the state of stack `{name}`"));
    match cmd {
        StateCommand::List => {
            let st = ops::read(store, &region).await.map_err(report)?;
            for r in st.resources.values() {
                println!("{:<40} {}", r.address, r.id);
            }
            for r in &st.deposed {
                println!(
                    "{:<40} {} (deposed: deleted by the next apply)",
                    r.address, r.id
                );
            }
        }
        StateCommand::Show { address, version } => {
            let st = match version {
                Some(v) => store.load_version(&v).map_err(report)?,
                None => ops::read(store, &region).await.map_err(report)?,
            };
            let doc = match &address {
                Some(a) => serde_json::to_value(st.resources.get(a).ok_or_else(|| not_found(a))?),
                None => serde_json::to_value(&st),
            }
            .expect("state serialises");
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("state serialises")
            );
        }
        StateCommand::Rm { address } => {
            let (_lease, mut st) = ops::open(store.clone(), &name, "state rm", &region, &env.lease)
                .await
                .map_err(report)?;
            let r = st
                .resources
                .shift_remove(&address)
                .ok_or_else(|| not_found(&address))?;
            store.save(&mut st).map_err(report)?;
            println!(
                "Removed {address} ({}) from state; it still exists in AWS.",
                r.id
            );
        }
        StateCommand::History => {
            let versions = store.history().map_err(report)?;
            if versions.is_empty() {
                println!(
                    "No state is kept for stack `{name}` at {}.",
                    store.location()
                );
            }
            println!("{:<40} {:<22} {:>9}", "VERSION", "WRITTEN (UTC)", "BYTES");
            for v in versions {
                println!(
                    "{:<40} {:<22} {:>9}{}",
                    v.id,
                    v.written
                        .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
                    v.bytes,
                    if v.current { "  (current)" } else { "" }
                );
            }
        }
        StateCommand::Unlock => match lease::break_lease(&*store.lease()).map_err(report)? {
            Some(holder) => println!("Released the lease of stack `{name}`, held by {holder}."),
            None => println!("Stack `{name}` has no lease; nothing to release."),
        },
        StateCommand::Migrate { to } => {
            let from = ops::state_location(env, declared.as_deref()).map_err(report)?;
            if from == to {
                return Err(report(format!(
                    "the state of stack `{name}` is at {to} already"
                )));
            }
            let target = crate::state::open_store(
                &to,
                &name,
                &crate::state::Reach {
                    endpoint_url: env.endpoint_url.clone(),
                    region: region.clone(),
                },
            );
            let (_from_lease, mut st) =
                ops::open(store.clone(), &name, "state migrate", &region, &env.lease)
                    .await
                    .map_err(report)?;
            let (_to_lease, there) =
                ops::open(target.clone(), &name, "state migrate", &region, &env.lease)
                    .await
                    .map_err(report)?;
            if st.lineage.is_none() {
                return Err(report(format!(
                    "stack `{name}` has no state at {from}; nothing to move"
                )));
            }
            if there.lineage.is_some() {
                return Err(report(format!(
                    "{} holds state of stack `{name}` already (serial {}); nothing was moved",
                    target.location(),
                    there.serial
                )));
            }
            let mut copy = st.clone();
            target.save(&mut copy).map_err(report)?;
            st.moved_to = Some(to.to_string());
            store.save(&mut st).map_err(report)?;
            let n = copy.resources.len();
            println!(
                "Moved the state of stack `{name}` ({n} resource{}, serial {}) from {from} to {to}.",
                if n == 1 { "" } else { "s" },
                copy.serial
            );
            println!(
                "Point the stack there: `state = \"{to}\"` in its [stack] table (or --state {to}); runs against {from} are refused from now on."
            );
        }
    }
    Ok(EXIT_OK)
}

async fn import(env: &Env, path: Option<PathBuf>, address: &str, aws_id: &str) -> Outcome {
    let paths = stacks(path)?;
    let [path] = paths.as_slice() else {
        return Err(report(
            "several stacks under ./desired-state/: pass --path to the stack to import into",
        ));
    };
    let (stack, graph) = load(env, path)?;
    let Some(r) = stack.resources.get(address) else {
        return Err(report(format!(
            "`{address}` is not declared in {}: declare it first, then import",
            path.display()
        )));
    };
    let store =
        ops::store(env, &stack.name, stack.state.as_deref(), &stack.region).map_err(report)?;
    let (_lease, mut st) = ops::open(
        store.clone(),
        &stack.name,
        "import",
        &stack.region,
        &env.lease,
    )
    .await
    .map_err(report)?;
    if let Some(existing) = st.resources.get(address) {
        return Err(report(format!(
            "`{address}` already tracks {}; `reconcile state rm {address}` first",
            existing.id
        )));
    }
    let calls = CallCounter::default();
    let cx = ops::connect(env, &stack.region, &stack.name, &calls).await;
    let provider = env.catalog.get(&r.kind).expect("validated kind");
    let found = provider
        .observe(&cx, &[aws_id.to_string()])
        .await
        .map_err(|e| report(format!("{address}: {e}")))?;
    let Some(obs) = found.get(aws_id) else {
        return Err(report(format!(
            "{address}: no {} with id {aws_id} in {}",
            r.kind, stack.region
        )));
    };
    st.resources.insert(
        address.to_string(),
        StateResource {
            address: address.to_string(),
            kind: r.kind.clone(),
            id: obs.id.clone(),
            inputs: obs.fields.clone(),
            attributes: obs.attributes.clone(),
            dependencies: graph.dependencies(address),
            protect: r.protect,
        },
    );
    store.save(&mut st).map_err(report)?;
    println!(
        "Imported {aws_id} as {address}. Run `reconcile plan` to see how it differs from the TOML."
    );
    Ok(EXIT_OK)
}
