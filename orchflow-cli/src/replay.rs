//! `orchflow replay`: the build's flows replayed over recorded runs (see `orchflow::replay`),
//! reported as text, JSON or JUnit XML, so that a CI job can check last week's runs before a
//! deploy.
//!
//! First comes the fingerprint check: every unfinished run (queued, running, suspended,
//! failed) of the selected flows, with what a replay says about it and whether a resume by
//! this build would be allowed ([`ResumeCheck`]). Then one report per selected run.
//!
//! Invariants: a replay writes nothing to the store and runs no step (except those named with
//! `--reexecute`, each of which must be a step of a selected flow, or the command is refused
//! with exit code 2); a run is replayed at most once per command (the fingerprint check and the
//! reports share the result); every selected run gets a report, a run the store cannot read
//! included (once, though the store cannot say its flow, so it counts against every
//! selection); the exit code is 0 only when every run passes ([`ReplayReport::passes`]: a
//! compatible replay, or a divergence under a fingerprint the build declares compatible, and for
//! an unfinished run a resume this build allows), and 2 when the store cannot list runs at all.

use crate::runs::show::one_line;
use crate::runs::{resolve, stdout_error};
use crate::store::Store;
use crate::{CliError, runs::list};
use clap::{Args, ValueEnum};
use orchflow::RunId;
use orchflow::registry::Registry;
use orchflow::replay::{Call, ReplayOptions, ReplayOutcome, ReplayReport, ResumeCheck};
use orchflow::store::{CheckpointStore, RunQuery};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write;

/// `replay` arguments.
///
/// ```
/// use clap::Parser;
/// use orchflow_cli::{Cli, Command, ReplayFormat};
/// let cli = Cli::try_parse_from(["orchflow", "replay", "--flow", "launch", "--format", "junit", "--reexecute", "parse"]).unwrap();
/// let Command::Replay(args) = cli.command else { panic!() };
/// assert_eq!(args.format, ReplayFormat::Junit);
/// assert_eq!(args.reexecute, ["parse"]);
/// assert!(Cli::try_parse_from(["orchflow", "replay", "--run", "abcd", "--status", "failed"]).is_err());
/// ```
#[derive(Debug, Args, Default)]
pub struct ReplayArgs {
    /// Only runs of this flow (default: every flow of this build).
    #[arg(long, value_name = "NAME")]
    pub flow: Option<String>,
    /// Replay this run (an id or the start of one); repeatable. Default: the runs the filters
    /// list.
    #[arg(long = "run", value_name = "ID", conflicts_with_all = ["flow", "status", "since", "limit"])]
    pub runs: Vec<String>,
    /// Only runs with this status (queued, running, suspended, completed, failed, cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs created at or after this time: RFC 3339 or a duration ago (15m, 2h, 7days).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many runs per flow, newest first (default 50); also the most unfinished
    /// runs checked per flow and status.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Run this step for real (it must be pure) and compare its output with the recorded one;
    /// repeatable.
    #[arg(long = "reexecute", value_name = "STEP")]
    pub reexecute: Vec<String>,
    /// How to print the reports.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Text)]
    pub format: ReplayFormat,
}

/// How `replay` prints its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReplayFormat {
    /// For people: the fingerprint check, then each run's verdict and divergence.
    #[default]
    Text,
    /// One JSON document: `{"unfinished": [report…], "reports": [report…], "unreadable": […]}`.
    Json,
    /// JUnit XML: one test suite, one test case per run (a failure per divergence, an error
    /// per run that cannot be replayed).
    Junit,
}

/// A run that could not be replayed because the store could not read it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Unreadable {
    /// The run, when known (a listing's unreadable entries may not say).
    pub run_id: Option<RunId>,
    /// Why.
    pub error: String,
}

/// What `replay` found: the unfinished runs' reports (the fingerprint check), the selected
/// runs' reports, and the runs that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct Findings {
    /// The reports of the unfinished runs of the selected flows.
    pub unfinished: Vec<ReplayReport>,
    /// The reports of the selected runs.
    pub reports: Vec<ReplayReport>,
    /// Selected runs the store could not read.
    pub unreadable: Vec<Unreadable>,
}

impl Findings {
    /// How many runs fail the check ([`ReplayReport::passes`]: cannot be replayed, diverge
    /// under a fingerprint the build does not declare compatible, or are unfinished and would
    /// be refused or broken by a resume), among the selected runs and the unfinished ones, each
    /// counted once; plus the runs that cannot be read.
    pub fn failing(&self) -> usize {
        let mut failing: Vec<RunId> = self
            .reports
            .iter()
            .chain(&self.unfinished)
            .filter(|r| !r.passes())
            .map(|r| r.run_id)
            .collect();
        failing.sort_unstable();
        failing.dedup();
        failing.len() + self.unreadable.len()
    }

    /// How many runs were selected.
    pub fn total(&self) -> usize {
        self.reports.len() + self.unreadable.len()
    }
}

/// Runs `replay` with `args` over `store` with the build's `flows`, printing the findings in
/// the format asked. Fails with [`CliError::Usage`] for a flow this build does not have or a
/// bad filter, with [`CliError::Incompatible`] (after printing) when a selected run is not
/// compatible, and with [`CliError::ReplayStore`] when the store cannot list runs (a run that
/// cannot be read is reported as such, and is not compatible).
pub async fn run(
    store: &Store,
    flows: &Registry,
    args: &ReplayArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let findings = find(store, flows, args).await.map_err(|e| match e {
        CliError::Store(e) => CliError::ReplayStore(e),
        other => other,
    })?;
    let text = match args.format {
        ReplayFormat::Text => render_text(&findings),
        ReplayFormat::Json => serde_json::to_string_pretty(&findings)
            .map(|mut t| {
                t.push('\n');
                t
            })
            .map_err(|e| CliError::Failed(format!("cannot write the reports as JSON: {e}")))?,
        ReplayFormat::Junit => render_junit(&findings),
    };
    out.write_all(text.as_bytes()).map_err(stdout_error)?;
    match findings.failing() {
        0 => Ok(()),
        failing => Err(CliError::Incompatible {
            failing,
            total: findings.total(),
        }),
    }
}

/// Selects and replays the runs `args` names (see the [module docs](self)).
pub async fn find(
    store: &Store,
    flows: &Registry,
    args: &ReplayArgs,
) -> Result<Findings, CliError> {
    let selected: Vec<String> = match &args.flow {
        Some(name) if flows.fingerprint(name).is_some() => vec![name.clone()],
        Some(name) => {
            return Err(CliError::Usage(format!(
                "this build has no flow `{name}`; its flows: {}",
                flows.names().join(", ")
            )));
        }
        None => flows.names().iter().map(|n| n.to_string()).collect(),
    };
    // A step to re-execute must be a step of a flow replayed here.
    let known: BTreeSet<String> = selected
        .iter()
        .filter_map(|f| flows.steps(f))
        .flatten()
        .collect();
    if let Some(unknown) = args.reexecute.iter().find(|s| !known.contains(*s)) {
        return Err(CliError::Usage(format!(
            "cannot re-execute `{unknown}`: no flow replayed here has such a step; their steps: {}",
            known.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let limit = args.limit.unwrap_or(list::DEFAULT_LIMIT).max(1);
    let options = ReplayOptions::default().reexecute(args.reexecute.iter().cloned());
    let checkpoints = store.checkpoints().clone();
    let mut replayer = Replayer {
        flows,
        store: checkpoints.clone(),
        options,
        done: HashMap::new(),
    };

    let mut findings = Findings {
        unfinished: Vec::new(),
        reports: Vec::new(),
        unreadable: Vec::new(),
    };
    for run_id in flows.unfinished(checkpoints.as_ref(), limit).await? {
        if args.flow.is_some() {
            match checkpoints.document(run_id).await {
                Ok(Some(d)) if selected.contains(&d.flow) => {}
                // Another flow, a run deleted since, or one the replay below reports.
                Ok(_) | Err(_) => continue,
            }
        }
        // A run that cannot be read here is reported if it is selected below.
        if let Ok(report) = replayer.replay(run_id).await {
            findings.unfinished.push(report);
        }
    }

    let mut runs = Vec::new();
    if args.runs.is_empty() {
        let now = std::time::SystemTime::now();
        let mut query = RunQuery::new().limit(limit);
        if let Some(status) = &args.status {
            query = query.status(list::parse_status(status)?);
        }
        if let Some(since) = &args.since {
            query = query.since(list::parse_time(since, now)?);
        }
        for flow in &selected {
            let listing = checkpoints
                .list_runs(&query.clone().flow(flow.clone()))
                .await?;
            runs.extend(listing.runs.iter().map(|d| d.run_id));
            // A run the store cannot read has no known flow: every flow's listing has it.
            for e in &listing.unreadable {
                let error = e.to_string();
                if !findings.unreadable.iter().any(|u| u.error == error) {
                    findings.unreadable.push(Unreadable {
                        run_id: None,
                        error,
                    });
                }
            }
        }
    } else {
        for text in &args.runs {
            let run_id = resolve(store, text).await?;
            if !runs.contains(&run_id) {
                runs.push(run_id);
            }
        }
    }
    for run_id in runs {
        match replayer.replay(run_id).await {
            Ok(report) => findings.reports.push(report),
            Err(e) => findings.unreadable.push(Unreadable {
                run_id: Some(run_id),
                error: e.to_string(),
            }),
        }
    }
    Ok(findings)
}

/// Replays runs once each.
struct Replayer<'a> {
    flows: &'a Registry,
    store: std::sync::Arc<dyn CheckpointStore>,
    options: ReplayOptions,
    done: HashMap<RunId, ReplayReport>,
}

impl Replayer<'_> {
    async fn replay(&mut self, run_id: RunId) -> Result<ReplayReport, orchflow::store::StoreError> {
        if let Some(report) = self.done.get(&run_id) {
            return Ok(report.clone());
        }
        let report = self
            .flows
            .replay(self.store.clone(), run_id, &self.options)
            .await?;
        self.done.insert(run_id, report.clone());
        Ok(report)
    }
}

/// The verdict of a report in a few words: `compatible`, `diverges at PATH`, or
/// `unreplayable: REASON`.
///
/// ```
/// use orchflow::replay::{ReplayOutcome, Divergence, DivergenceKind};
/// use orchflow_cli::replay::verdict;
/// assert_eq!(verdict(&ReplayOutcome::Compatible), "compatible");
/// let d = Divergence { kind: DivergenceKind::StepChanged, path: "step draft".into(), recorded: None, new: None, message: "m".into() };
/// assert_eq!(verdict(&ReplayOutcome::Diverges(Box::new(d))), "diverges at step draft");
/// ```
pub fn verdict(outcome: &ReplayOutcome) -> String {
    match outcome {
        ReplayOutcome::Compatible => "compatible".to_string(),
        ReplayOutcome::Diverges(d) => format!("diverges at {}", d.path),
        ReplayOutcome::Unreplayable { reason } => format!("unreplayable: {reason}"),
    }
}

/// Whether this build could resume a run, in a few words (`same shape`, `declared: REASON`,
/// `undeclared: a resume would be refused — declare with Flow::compatible_with("FP", "...")`,
/// `undecodable: REASON`, `finished`).
///
/// ```
/// use orchflow::replay::ResumeCheck;
/// use orchflow_cli::replay::resume_label;
/// assert_eq!(resume_label(&ResumeCheck::SameShape, "00ab"), "same shape");
/// assert!(resume_label(&ResumeCheck::Undeclared, "00ab").contains(r#"Flow::compatible_with("00ab", "...")"#));
/// ```
pub fn resume_label(check: &ResumeCheck, recorded_fingerprint: &str) -> String {
    match check {
        ResumeCheck::Finished => "finished".to_string(),
        ResumeCheck::SameShape => "same shape".to_string(),
        ResumeCheck::Declared { reason } => format!("declared: {reason}"),
        ResumeCheck::Undeclared => format!(
            "undeclared: a resume would be refused — declare with Flow::compatible_with(\"{recorded_fingerprint}\", \"...\")"
        ),
        ResumeCheck::Undecodable { reason } => format!("undecodable: {reason}"),
    }
}

/// The findings for people: the fingerprint check, one report per run, the totals.
pub fn render_text(findings: &Findings) -> String {
    let mut out = String::new();
    if findings.unfinished.is_empty() {
        out.push_str("fingerprint check: no unfinished runs\n");
    } else {
        let _ = writeln!(
            out,
            "fingerprint check: {} unfinished run{}",
            findings.unfinished.len(),
            plural(findings.unfinished.len())
        );
        for r in &findings.unfinished {
            let _ = writeln!(out, "  {}", heading(r));
            let _ = writeln!(out, "    replay: {}", verdict(&r.outcome));
            let _ = writeln!(
                out,
                "    resume: {}",
                resume_label(&r.resume, &r.recorded_fingerprint)
            );
            if r.is_compatible() && !r.continues_at.is_empty() {
                let _ = writeln!(out, "    continues at {}", calls(&r.continues_at));
            }
        }
    }
    out.push('\n');
    if findings.total() == 0 {
        out.push_str("no runs to replay\n");
        return out;
    }
    for r in &findings.reports {
        let _ = writeln!(out, "run {}", heading(r));
        match &r.outcome {
            ReplayOutcome::Compatible => {
                let _ = write!(
                    out,
                    "  compatible: {} call{} answered from the recording",
                    r.reused,
                    plural(r.reused as usize)
                );
                if r.reexecuted > 0 {
                    let _ = write!(out, ", {} re-executed with the same output", r.reexecuted);
                }
                out.push('\n');
                if !r.continues_at.is_empty() {
                    let _ = writeln!(out, "  continues at {}", calls(&r.continues_at));
                }
            }
            ReplayOutcome::Diverges(d) => {
                let kind = serde_json::to_value(d.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = writeln!(out, "  diverges at {} ({kind})", d.path);
                let _ = writeln!(out, "    {}", d.message);
                if let Some(reason) = &r.declared {
                    let _ = writeln!(
                        out,
                        "    accepted: this build declares fingerprint {} compatible: {reason}",
                        r.recorded_fingerprint
                    );
                }
                if let Some(call) = &d.recorded {
                    let _ = writeln!(out, "    recorded: {}", call_text(call));
                }
                if let Some(call) = &d.new {
                    let _ = writeln!(out, "    new:      {}", call_text(call));
                }
            }
            ReplayOutcome::Unreplayable { reason } => {
                let _ = writeln!(out, "  unreplayable: {reason}");
            }
        }
    }
    for u in &findings.unreadable {
        match u.run_id {
            Some(id) => {
                let _ = writeln!(out, "run {id}\n  cannot be read: {}", u.error);
            }
            None => {
                let _ = writeln!(out, "a run cannot be read: {}", u.error);
            }
        }
    }
    let count =
        |f: fn(&ReplayOutcome) -> bool| findings.reports.iter().filter(|r| f(&r.outcome)).count();
    let _ = write!(
        out,
        "\n{} run{} replayed: {} compatible, {} diverge{}, {} unreplayable",
        findings.total(),
        plural(findings.total()),
        count(|o| matches!(o, ReplayOutcome::Compatible)),
        count(|o| matches!(o, ReplayOutcome::Diverges(_))),
        if count(|o| matches!(o, ReplayOutcome::Diverges(_))) == 1 {
            "s"
        } else {
            ""
        },
        count(|o| matches!(o, ReplayOutcome::Unreplayable { .. })),
    );
    if !findings.unreadable.is_empty() {
        let _ = write!(out, ", {} unreadable", findings.unreadable.len());
    }
    out.push('\n');
    out
}

/// `RUN  FLOW  STATUS  fingerprint RECORDED[ → CURRENT]`.
fn heading(r: &ReplayReport) -> String {
    let fingerprint = if r.fingerprint.is_empty() || r.fingerprint == r.recorded_fingerprint {
        r.recorded_fingerprint.clone()
    } else {
        format!("{} → {}", r.recorded_fingerprint, r.fingerprint)
    };
    format!(
        "{}  {}  {}  fingerprint {fingerprint}",
        r.run_id,
        r.flow,
        r.status.as_str()
    )
}

/// A call with its input and, for new code, where its step is defined.
fn call_text(call: &Call) -> String {
    let mut text = call.to_string();
    if let Some(input) = &call.input {
        let _ = write!(text, ", input {}", one_line(input));
    }
    if let Some(source) = call.source.as_ref().filter(|s| !s.is_unknown()) {
        let _ = write!(text, ", defined at {source}");
    }
    text
}

/// Calls where a run continues: `step `x` at PATH, step `y` at PATH`.
fn calls(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The findings as JUnit XML: one `<testsuite name="orchflow replay">`, one `<testcase
/// classname="FLOW" name="RUN">` per selected run, with a `<failure>` for a run that does not
/// pass ([`ReplayReport::passes`]: an undeclared divergence, or a resume this build would
/// refuse) and an `<error>` for a run that cannot be replayed or read; a declared divergence
/// passes with a note in its `<system-out>`; the fingerprint check in the suite's `<system-out>`.
pub fn render_junit(findings: &Findings) -> String {
    let unreplayable = |r: &&ReplayReport| matches!(r.outcome, ReplayOutcome::Unreplayable { .. });
    let failures = findings
        .reports
        .iter()
        .filter(|r| !r.passes() && !unreplayable(r))
        .count();
    let errors = findings.reports.iter().filter(unreplayable).count() + findings.unreadable.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"orchflow replay\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        findings.total()
    );
    for r in &findings.reports {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&r.flow),
            r.run_id
        );
        match &r.outcome {
            ReplayOutcome::Compatible if r.passes() => out.push_str("/>\n"),
            ReplayOutcome::Compatible => {
                let label = resume_label(&r.resume, &r.recorded_fingerprint);
                let _ = write!(
                    out,
                    ">\n    <failure message=\"{}\" type=\"resume\"/>\n  </testcase>\n",
                    xml_escape(&format!(
                        "compatible, but this build cannot resume it: {label}"
                    ))
                );
            }
            ReplayOutcome::Diverges(d) if r.passes() => {
                let reason = r.declared.as_deref().unwrap_or_default();
                let _ = write!(
                    out,
                    ">\n    <system-out>{}</system-out>\n  </testcase>\n",
                    xml_escape(&format!(
                        "diverges at {}: {} (accepted: this build declares fingerprint {} compatible: {reason})",
                        d.path, d.message, r.recorded_fingerprint
                    ))
                );
            }
            ReplayOutcome::Diverges(d) => {
                let kind = serde_json::to_value(d.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut body = format!("{}\n", d.message);
                if let Some(call) = &d.recorded {
                    let _ = writeln!(body, "recorded: {}", call_text(call));
                }
                if let Some(call) = &d.new {
                    let _ = writeln!(body, "new: {}", call_text(call));
                }
                let _ = write!(
                    out,
                    ">\n    <failure message=\"{}\" type=\"{}\">{}</failure>\n  </testcase>\n",
                    xml_escape(&format!("diverges at {}: {}", d.path, d.message)),
                    xml_escape(&kind),
                    xml_escape(&body)
                );
            }
            ReplayOutcome::Unreplayable { reason } => {
                let _ = write!(
                    out,
                    ">\n    <error message=\"{}\" type=\"unreplayable\"/>\n  </testcase>\n",
                    xml_escape(reason)
                );
            }
        }
    }
    for u in &findings.unreadable {
        let name = u
            .run_id
            .map_or_else(|| "unknown run".to_string(), |id| id.to_string());
        let _ = write!(
            out,
            "  <testcase classname=\"unreadable\" name=\"{}\">\n    <error message=\"{}\" type=\"unreadable\"/>\n  </testcase>\n",
            xml_escape(&name),
            xml_escape(&u.error)
        );
    }
    let check = render_text(&Findings {
        unfinished: findings.unfinished.clone(),
        reports: Vec::new(),
        unreadable: Vec::new(),
    });
    let check = check.split("\n\n").next().unwrap_or_default();
    let _ = writeln!(out, "  <system-out>{}</system-out>", xml_escape(check));
    out.push_str("</testsuite>\n");
    out
}

/// `text` as XML character data or an attribute value: `&`, `<`, `>`, `"` and `'` as
/// entities, tab, newline and carriage return as character references (so that attribute
/// values keep them), and the characters XML 1.0 forbids (other control characters, U+FFFE,
/// U+FFFF) replaced by U+FFFD.
///
/// ```
/// use orchflow_cli::replay::xml_escape;
/// assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{FFFD}");
/// ```
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchflow::replay::{Divergence, DivergenceKind, Source};
    use orchflow::store::RunStatus;

    #[test]
    fn escaping_leaves_no_markup_and_no_forbidden_character() {
        let hostile = "\"quoted\" 'single' <tag attr=\"x\"> & &amp; ]]> \u{0}\u{1}\u{8}\u{b}\u{c}\u{1b}\u{1f}\t\n\r \u{7f} \u{fffe}\u{ffff} é 🦀";
        let escaped = xml_escape(hostile);
        for bad in ['<', '>', '"', '\''] {
            assert!(!escaped.contains(bad), "{bad:?} in {escaped:?}");
        }
        // Every `&` starts one of the entities written.
        for (i, _) in escaped.match_indices('&') {
            let rest = &escaped[i..];
            assert!(
                [
                    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#9;", "&#10;", "&#13;"
                ]
                .iter()
                .any(|e| rest.starts_with(e)),
                "{rest}"
            );
        }
        assert!(
            escaped.chars().all(|c| !c.is_control() || c == '\u{7f}'),
            "{escaped:?}"
        );
        assert!(!escaped.contains('\u{fffe}') && !escaped.contains('\u{ffff}'));
        assert_eq!(escaped.matches('\u{FFFD}').count(), 9, "{escaped:?}");
        assert!(escaped.contains("&#9;&#10;&#13;"), "{escaped}");
        assert!(escaped.contains("é 🦀"), "{escaped}");
        assert!(escaped.contains("&amp;amp;"), "{escaped}");
    }

    fn report(outcome: ReplayOutcome) -> ReplayReport {
        ReplayReport {
            run_id: uuid::Uuid::nil(),
            flow: "la<unch>".into(),
            status: RunStatus::Completed,
            recorded_fingerprint: "00000000000000aa".into(),
            fingerprint: "00000000000000bb".into(),
            outcome,
            reused: 3,
            reexecuted: 0,
            continues_at: Vec::new(),
            resume: ResumeCheck::Finished,
            declared: None,
        }
    }

    #[test]
    fn junit_counts_failures_and_errors_and_escapes_every_text() {
        let call = |step: &str, input: serde_json::Value| Call {
            step: step.into(),
            path: format!("step {step}"),
            input: Some(input),
            ..Call::default()
        };
        let mut new = call("draft", serde_json::json!("a \"b\" <c>\u{7}"));
        new.source = Some(Source::at("src/lib.rs", 12, 10));
        let findings = Findings {
            unfinished: Vec::new(),
            reports: vec![
                report(ReplayOutcome::Compatible),
                report(ReplayOutcome::Diverges(Box::new(Divergence {
                    kind: DivergenceKind::StepChanged,
                    path: "step draft".into(),
                    recorded: Some(call("plan", serde_json::json!(1))),
                    new: Some(new),
                    message: "the recorded run called `plan` here & <more>".into(),
                }))),
                report(ReplayOutcome::Unreplayable {
                    reason: "no \"flow\"\u{0}".into(),
                }),
            ],
            unreadable: vec![Unreadable {
                run_id: None,
                error: "bad file <x>".into(),
            }],
        };
        let xml = render_junit(&findings);
        assert!(
            xml.contains(
                "<testsuite name=\"orchflow replay\" tests=\"4\" failures=\"1\" errors=\"2\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("classname=\"la&lt;unch&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"diverges at step draft: the recorded run called `plan` here &amp; &lt;more&gt;\" type=\"step_changed\""),
            "{xml}"
        );
        assert!(xml.contains("defined at src/lib.rs:12:10"), "{xml}");
        assert!(xml.contains("no &quot;flow&quot;\u{FFFD}"), "{xml}");
        assert!(!xml.contains('\u{0}') && !xml.contains('\u{7}'), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");

        // A strict XML 1.0 parser reads back every text as it was, forbidden characters
        // replaced.
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap_or_else(|| panic!("{xml}"));
        assert_eq!(
            failure.attribute("message"),
            Some("diverges at step draft: the recorded run called `plan` here & <more>")
        );
        let body = failure.text().unwrap_or_default();
        assert!(
            body.contains("new: step `draft` at step draft, input \"a \\\"b\\\" <c>\\u0007\""),
            "{body}"
        );
        let error = doc
            .descendants()
            .find(|n| n.has_tag_name("error"))
            .unwrap_or_else(|| panic!("{xml}"));
        assert_eq!(error.attribute("message"), Some("no \"flow\"\u{FFFD}"));
        let names: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .filter_map(|n| n.attribute("classname"))
            .collect();
        assert_eq!(names, ["la<unch>", "la<unch>", "la<unch>", "unreadable"]);
        let hostile = "a\tb\nc\r\"d' <e> &f; \u{1}";
        let attr = format!(
            "<x a=\"{}\">{}</x>",
            xml_escape(hostile),
            xml_escape(hostile)
        );
        let doc = roxmltree::Document::parse(&attr).unwrap_or_else(|e| panic!("{e}: {attr}"));
        let kept = "a\tb\nc\r\"d' <e> &f; \u{FFFD}";
        assert_eq!(doc.root_element().attribute("a"), Some(kept));
        assert_eq!(doc.root_element().text(), Some(kept));
    }

    #[test]
    fn without_escaping_the_parser_refuses_what_escaping_fixes() {
        // The checks above mean something: the parser refuses raw markup and control
        // characters.
        for raw in [
            "<x a=\"\"\"/>",
            "<x>\u{1}</x>",
            "<x>a & b</x>",
            "<x a=\"<\"/>",
        ] {
            assert!(roxmltree::Document::parse(raw).is_err(), "{raw:?}");
        }
    }
}
