//! `runs show`: a run in the terminal, with the timeline of every attempt of every step.
//!
//! Invariants: every trace of the journal appears once in the timeline, grouped by session
//! (sessions in order) and, within a session, in order of start (ties in journal order); the
//! gap shown before an attempt is the time since the previous attempt of the same step at the
//! same node and item in the same session ended (the retry's backoff), and is blank for a
//! first attempt. Colour is added only when asked, and only around padded cells, so that the
//! columns line up with and without it.

use crate::bundle::format_time;
use orchflow::AttemptOutcome;
use orchflow::StepTrace;
use orchflow::store::{JournalEntry, PointRecord, RunDocument, RunStatus};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// Renders a run: its document (flow, status, times, input, output or error), the timeline of
/// its attempts, the answers it was given and the questions it waits on. With `color`, outcome
/// and status words are coloured with ANSI escapes.
///
/// ```
/// use orchflow::store::{RunDocument, RunStatus};
/// # let document: RunDocument = serde_json::from_value(serde_json::json!({
/// #   "format": "orchflow-checkpoint", "version": 2, "run_id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
/// #   "flow": "f", "fingerprint": "0000000000000001", "shape": "a", "input": 1,
/// #   "status": "completed", "pending": [], "output": 2, "error": null,
/// #   "created_at": "2026-12-03T10:00:00Z", "updated_at": "2026-12-03T10:00:01Z"})).unwrap();
/// let text = orchflow_cli::runs::show::render(&document, &[], false);
/// assert!(text.contains("status   completed"));
/// assert!(text.contains("no attempts recorded"));
/// ```
pub fn render(document: &RunDocument, journal: &[JournalEntry], color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    let d = document;
    let _ = writeln!(out, "run      {}", d.run_id);
    let _ = writeln!(out, "flow     {} (fingerprint {})", d.flow, d.fingerprint);
    let _ = writeln!(
        out,
        "status   {}",
        paint.status(&d.status, d.status.as_str())
    );
    let _ = writeln!(
        out,
        "created  {}   updated {}",
        format_time(d.created_at),
        format_time(d.updated_at)
    );
    let _ = writeln!(out, "input    {}", one_line(&d.input));
    if let Some(output) = &d.output {
        let _ = writeln!(out, "output   {}", one_line(output));
    }
    if let Some(error) = &d.error {
        let _ = writeln!(out, "error    {error}");
    }
    if let Some(waiting) = &d.waiting {
        let _ = writeln!(out, "waiting  {waiting}");
    }
    if let Some(origin) = &d.lineage.forked_from {
        let input = origin
            .input
            .as_ref()
            .map(|i| format!(" with input {}", one_line(i)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "lineage  forked from {} at {} ({}){input}",
            origin.run_id, origin.at, origin.path
        );
    }
    if !d.lineage.forks.is_empty() {
        let forks: Vec<String> = d.lineage.forks.iter().map(|f| f.to_string()).collect();
        let _ = writeln!(out, "forks    {}", forks.join(", "));
    }

    let traces: Vec<&StepTrace> = journal.iter().flat_map(|e| e.traces.iter()).collect();
    out.push('\n');
    if traces.is_empty() {
        out.push_str("no attempts recorded\n");
    } else {
        timeline(&mut out, &traces, paint);
    }

    let answers: Vec<(&str, &str)> = journal
        .iter()
        .filter_map(|e| match &e.record {
            PointRecord::Answer { question, text } => Some((question.as_str(), text.as_str())),
            _ => None,
        })
        .collect();
    if !answers.is_empty() {
        out.push_str("\nanswers\n");
        for (question, text) in answers {
            let _ = writeln!(out, "  {question}: {text:?}");
        }
    }
    if !d.pending.is_empty() {
        out.push_str("\npending questions\n");
        for p in &d.pending {
            let _ = writeln!(out, "  {} (step {}): {}", p.question, p.step, p.prompt);
            if let Some(schema) = &p.schema {
                let _ = writeln!(out, "    answer: JSON of {}", schema_name(schema));
            }
            if let Some(error) = &p.error {
                let _ = writeln!(out, "    the last answer was refused: {error}");
            }
        }
    }
    out
}

/// One row of the timeline, its cells as plain text.
struct Row<'a> {
    trace: &'a StepTrace,
    start: String,
    node: String,
    step: String,
    attempt: String,
    outcome: &'static str,
    duration: String,
    gap: String,
}

/// Where an attempt ran: its session, step, node, enclosing step and map item.
type Place<'t> = (u32, &'t str, &'t str, Option<&'t str>, Option<u32>);

fn timeline(out: &mut String, traces: &[&StepTrace], paint: Paint) {
    let mut ordered: Vec<(usize, &StepTrace)> = traces.iter().copied().enumerate().collect();
    ordered.sort_by(|(ia, a), (ib, b)| {
        (a.session, a.started_at, *ia).cmp(&(b.session, b.started_at, *ib))
    });
    let origin = ordered
        .iter()
        .map(|(_, t)| t.started_at)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let sessions = ordered.last().map_or(0, |(_, t)| t.session);
    let _ = writeln!(
        out,
        "attempts ({}, {} session{})",
        ordered.len(),
        sessions,
        if sessions == 1 { "" } else { "s" }
    );

    let mut rows = Vec::with_capacity(ordered.len());
    // When the previous attempt of each step at its place ended.
    let mut last_end: HashMap<Place, SystemTime> = HashMap::new();
    for (_, t) in &ordered {
        let key = (
            t.session,
            t.step.as_ref(),
            t.node.as_ref(),
            t.parent.as_deref(),
            t.item,
        );
        let previous_end = last_end.insert(key, t.ended_at);
        let gap = match previous_end {
            Some(ended) if t.attempt > 1 => t
                .started_at
                .duration_since(ended)
                .map(duration)
                .unwrap_or_else(|_| "0".to_string()),
            _ => String::new(),
        };
        let node = match &t.parent {
            Some(parent) => format!("{parent} > {}", t.node),
            None => t.node.to_string(),
        };
        let step = match t.item {
            Some(item) => format!("{}[{item}]", t.step),
            None => t.step.to_string(),
        };
        rows.push(Row {
            trace: t,
            start: format!(
                "+{}",
                duration(t.started_at.duration_since(origin).unwrap_or_default())
            ),
            node,
            step,
            attempt: t.attempt.to_string(),
            outcome: outcome_name(t.outcome),
            duration: duration(t.duration),
            gap,
        });
    }

    let width = |f: fn(&Row) -> usize, header: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(header.len())
    };
    let w_start = width(|r| r.start.len(), "START");
    let w_node = width(|r| r.node.chars().count(), "NODE");
    let w_step = width(|r| r.step.chars().count(), "STEP");
    let w_attempt = width(|r| r.attempt.len(), "ATTEMPT");
    let w_outcome = width(|r| r.outcome.len(), "OUTCOME");
    let w_duration = width(|r| r.duration.len(), "DURATION");
    let w_gap = width(|r| r.gap.len(), "GAP");

    let mut session = 0;
    for row in &rows {
        if row.trace.session != session {
            session = row.trace.session;
            let _ = writeln!(out, "  session {session}");
            let _ = writeln!(
                out,
                "    {:<w_start$}  {:<w_node$}  {:<w_step$}  {:>w_attempt$}  {:<w_outcome$}  {:>w_duration$}  {:>w_gap$}  ERROR",
                "START", "NODE", "STEP", "ATTEMPT", "OUTCOME", "DURATION", "GAP"
            );
        }
        let outcome = paint.outcome(row.trace.outcome, &format!("{:<w_outcome$}", row.outcome));
        let error = row
            .trace
            .error
            .as_deref()
            .map(|e| e.replace('\n', " "))
            .unwrap_or_default();
        let line = format!(
            "    {:<w_start$}  {:<w_node$}  {:<w_step$}  {:>w_attempt$}  {outcome}  {:>w_duration$}  {:>w_gap$}  {error}",
            row.start, row.node, row.step, row.attempt, row.duration, row.gap
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// What a JSON Schema describes, in a few words: its title, else its type.
fn schema_name(schema: &serde_json::Value) -> String {
    if let Some(title) = schema.get("title").and_then(|t| t.as_str()) {
        return title.to_string();
    }
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
        None => "any type".to_string(),
    }
}

/// How an outcome is written (as in JSON).
fn outcome_name(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::TimedOut => "timed_out",
        AttemptOutcome::Panicked => "panicked",
        AttemptOutcome::Cancelled => "cancelled",
        AttemptOutcome::Suspended => "suspended",
        AttemptOutcome::Reused => "reused",
    }
}

/// A duration for people: `850µs`, `12.3ms`, `1.250s`, `2m05s`.
///
/// ```
/// use std::time::Duration;
/// use orchflow_cli::runs::show::duration;
/// assert_eq!(duration(Duration::from_micros(850)), "850µs");
/// assert_eq!(duration(Duration::from_micros(12_340)), "12.3ms");
/// assert_eq!(duration(Duration::from_millis(1250)), "1.250s");
/// assert_eq!(duration(Duration::from_secs(125)), "2m05s");
/// ```
pub fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else if d.as_secs() < 60 {
        format!("{:.3}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A JSON value on one line, cut to 200 characters.
pub(crate) fn one_line(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 200 {
        let cut: String = text.chars().take(199).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// ANSI colour, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn outcome(self, o: AttemptOutcome, text: &str) -> String {
        let code = match o {
            AttemptOutcome::Succeeded => "32",
            AttemptOutcome::Failed | AttemptOutcome::Panicked => "31",
            AttemptOutcome::TimedOut => "33",
            AttemptOutcome::Cancelled => "90",
            AttemptOutcome::Suspended => "36",
            AttemptOutcome::Reused => "34",
        };
        self.wrap(code, text)
    }

    fn status(self, s: &RunStatus, text: &str) -> String {
        let code = match s {
            RunStatus::Completed => "32",
            RunStatus::Failed => "31",
            RunStatus::Suspended => "36",
            RunStatus::Running | RunStatus::Queued => "33",
            RunStatus::Cancelled => "90",
        };
        self.wrap(code, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
    }

    fn trace(step: &'static str, attempt: u32, session: u32, start: u64, end: u64) -> StepTrace {
        StepTrace {
            step: Cow::Borrowed(step),
            node: Cow::Borrowed("0"),
            parent: None,
            attempt,
            session,
            parallel_group_id: None,
            item: None,
            input: None,
            output: None,
            error: Some("boom".into()),
            outcome: AttemptOutcome::Failed,
            started_at: at(start),
            ended_at: at(end),
            duration: Duration::from_millis(end - start),
            success: false,
        }
    }

    fn document() -> RunDocument {
        RunDocument {
            format: orchflow::store::FORMAT.into(),
            version: orchflow::store::FORMAT_VERSION,
            run_id: uuid::Uuid::nil(),
            flow: "flaky".into(),
            fingerprint: "00000000000000aa".into(),
            shape: "a".into(),
            input: serde_json::json!("x"),
            status: RunStatus::Failed,
            pending: vec![orchflow::store::PendingInput {
                schema: Some(Box::new(
                    serde_json::json!({"title": "Rating", "type": "object"}),
                )),
                error: Some("expected an integer".into()),
                ..orchflow::store::PendingInput::new("1/review", "review", "ok?")
            }],
            output: None,
            error: Some("a failed".into()),
            created_at: at(0),
            updated_at: at(100),
            waiting: None,
            lineage: Default::default(),
        }
    }

    #[test]
    fn the_timeline_shows_sessions_attempts_gaps_and_errors_in_order() {
        // Journaled out of start order: the timeline sorts by session, then start.
        let mut entry = JournalEntry::new(1, PointRecord::Stopped);
        entry.traces = vec![
            trace("a", 2, 1, 30, 31),
            trace("a", 1, 1, 0, 10),
            trace("a", 1, 2, 500, 502),
        ];
        let answer = JournalEntry::new(
            2,
            PointRecord::Answer {
                question: "1/review".into(),
                text: "yes".into(),
            },
        );
        let text = render(&document(), &[entry, answer], false);
        let lines: Vec<&str> = text.lines().collect();
        let first = lines.iter().position(|l| l.contains("+0µs")).unwrap_or(0);
        assert!(lines[first - 2].contains("session 1"), "{text}");
        assert!(lines[first].contains("10.0ms"), "{text}");
        // The retry: 20 ms after the first attempt ended.
        assert!(lines[first + 1].contains("+30.0ms"), "{text}");
        assert!(lines[first + 1].ends_with("20.0ms  boom"), "{text}");
        assert!(lines[first + 2].contains("session 2"), "{text}");
        // A first attempt in a new session has no gap.
        assert!(lines[first + 4].contains("+500.0ms"), "{text}");
        let cells: Vec<&str> = lines[first + 4].split_whitespace().collect();
        assert_eq!(
            cells,
            ["+500.0ms", "0", "a", "1", "failed", "2.0ms", "boom"]
        );
        assert!(text.contains("attempts (3, 2 sessions)"), "{text}");
        assert!(text.contains("1/review: \"yes\""), "{text}");
        assert!(text.contains("1/review (step review): ok?"), "{text}");
        assert!(text.contains("    answer: JSON of Rating\n"), "{text}");
        assert!(
            text.contains("    the last answer was refused: expected an integer\n"),
            "{text}"
        );
        assert!(text.contains("error    a failed"), "{text}");
        assert!(!text.contains('\x1b'), "no colour unless asked");
    }

    #[test]
    fn the_lineage_is_shown_when_the_document_has_one() {
        let plain = render(&document(), &[], false);
        assert!(
            !plain.contains("lineage") && !plain.contains("forks"),
            "{plain}"
        );
        let mut d = document();
        let origin = uuid::Uuid::new_v4();
        let fork = uuid::Uuid::new_v4();
        d.lineage.forked_from = Some(orchflow::store::ForkOrigin {
            run_id: origin,
            at: orchflow::store::ForkAt {
                step: "market".into(),
                occurrence: 2,
            },
            path: "loop plan[2] > step market".into(),
            input: Some(serde_json::json!({"region": "eu"})),
            fingerprint: "00000000000000aa".into(),
        });
        d.lineage.forks = vec![fork];
        let text = render(&d, &[], false);
        assert!(
            text.contains(&format!(
                "lineage  forked from {origin} at market@2 (loop plan[2] > step market) with input {{\"region\":\"eu\"}}\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("forks    {fork}\n")), "{text}");
    }

    #[test]
    fn colour_keeps_the_columns() {
        let mut entry = JournalEntry::new(1, PointRecord::Stopped);
        entry.traces = vec![trace("a", 1, 1, 0, 10)];
        let plain = render(&document(), std::slice::from_ref(&entry), false);
        let coloured = render(&document(), &[entry], true);
        assert!(coloured.contains("\x1b[31mfailed"), "{coloured}");
        let stripped = coloured
            .replace("\x1b[31m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }
}
