//! [`EvalReport`]: accuracy, counts, steps, tool use, failures by kind, time and tokens, as
//! JSON and Markdown.

use super::*;

/// Accuracy of one answer kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    /// Items of this kind.
    pub total: usize,
    /// Of which correct.
    pub correct: usize,
    /// `correct / total` (0 when there are none).
    pub accuracy: f64,
}

/// What an eval run measured. Means are over all items (0 when there are none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Items scored.
    pub total: usize,
    /// Items answered correctly.
    pub correct: usize,
    /// `correct / total`.
    pub accuracy: f64,
    /// Items from which an answer could be extracted.
    pub answered: usize,
    /// Items whose results came from an earlier run (the results file), not asked again.
    pub resumed: usize,
    /// Accuracy per answer kind (`integer`, `choice`).
    pub by_kind: BTreeMap<String, KindReport>,
    /// Items per outcome ([`outcome_kind`]).
    pub outcomes: BTreeMap<String, usize>,
    /// Items per failure kind ([`FailureKind::as_str`]); correct items are not counted.
    pub failures: BTreeMap<String, usize>,
    /// Malformed planner outputs, over all items.
    pub malformed_decisions: usize,
    /// Items with at least one malformed planner output.
    pub items_with_malformed: usize,
    /// Tool calls per tool, over all items.
    pub tool_calls: BTreeMap<String, usize>,
    /// Items that called each tool at least once.
    pub items_using_tool: BTreeMap<String, usize>,
    /// Failed tool calls per error kind, over all items.
    pub tool_errors: BTreeMap<String, usize>,
    /// Mean steps per item.
    pub mean_steps: f64,
    /// Mean trajectory duration, in milliseconds.
    pub mean_duration_ms: f64,
    /// Tokens used in all.
    pub usage: Usage,
    /// Mean tokens (prompt and completion) per item.
    pub mean_tokens: f64,
}

impl EvalReport {
    /// The report over these records (`resumed` is left at 0; [`run_eval`] sets it).
    pub fn from_records(records: &[EvalRecord]) -> Self {
        let total = records.len();
        let mean = |sum: f64| if total == 0 { 0.0 } else { sum / total as f64 };
        let correct = records.iter().filter(|r| r.correct).count();
        let mut by_kind: BTreeMap<String, KindReport> = BTreeMap::new();
        let mut outcomes = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let mut tool_calls = BTreeMap::new();
        let mut items_using_tool = BTreeMap::new();
        let mut tool_errors = BTreeMap::new();
        let mut usage = Usage::default();
        for r in records {
            let k = by_kind
                .entry(r.kind.as_str().to_string())
                .or_insert(KindReport {
                    total: 0,
                    correct: 0,
                    accuracy: 0.0,
                });
            k.total += 1;
            k.correct += usize::from(r.correct);
            *outcomes.entry(r.outcome.clone()).or_insert(0) += 1;
            if let Some(f) = r.failure {
                *failures.entry(f.as_str().to_string()).or_insert(0) += 1;
            }
            for (tool, n) in &r.tool_calls {
                *tool_calls.entry(tool.clone()).or_insert(0) += n;
                if *n > 0 {
                    *items_using_tool.entry(tool.clone()).or_insert(0) += 1;
                }
            }
            for (kind, n) in &r.tool_errors {
                *tool_errors.entry(kind.clone()).or_insert(0) += n;
            }
            usage += r.usage;
        }
        for k in by_kind.values_mut() {
            k.accuracy = k.correct as f64 / k.total as f64;
        }
        EvalReport {
            total,
            correct,
            accuracy: mean(correct as f64),
            answered: records.iter().filter(|r| r.predicted.is_some()).count(),
            resumed: 0,
            by_kind,
            outcomes,
            failures,
            malformed_decisions: records.iter().map(|r| r.malformed_decisions).sum(),
            items_with_malformed: records.iter().filter(|r| r.malformed_decisions > 0).count(),
            tool_calls,
            items_using_tool,
            tool_errors,
            mean_steps: mean(records.iter().map(|r| r.steps as f64).sum()),
            mean_duration_ms: mean(records.iter().map(|r| r.duration_ms as f64).sum()),
            usage,
            mean_tokens: mean(usage.total() as f64),
        }
    }

    /// The report as Markdown: a summary table, then tables per kind, outcome, failure, tool
    /// and tool error.
    ///
    /// ```
    /// let md = orchflow_agent::eval::EvalReport::from_records(&[]).to_markdown();
    /// assert!(md.contains("| accuracy | 0.0% (0/0) |"));
    /// ```
    pub fn to_markdown(&self) -> String {
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let mut md = String::from("# Eval report\n\n| metric | value |\n|---|---|\n");
        let rows = [
            (
                "items",
                if self.resumed > 0 {
                    format!("{} ({} resumed)", self.total, self.resumed)
                } else {
                    self.total.to_string()
                },
            ),
            (
                "accuracy",
                format!("{} ({}/{})", pct(self.accuracy), self.correct, self.total),
            ),
            ("answered", format!("{}/{}", self.answered, self.total)),
            ("mean steps", format!("{:.2}", self.mean_steps)),
            (
                "mean duration",
                format!("{:.2} s", self.mean_duration_ms / 1000.0),
            ),
            (
                "tokens",
                format!(
                    "{} (prompt {}, completion {}; {:.1} per item)",
                    self.usage.total(),
                    self.usage.prompt_tokens,
                    self.usage.completion_tokens,
                    self.mean_tokens
                ),
            ),
            (
                "malformed decisions",
                format!(
                    "{} (in {} items)",
                    self.malformed_decisions, self.items_with_malformed
                ),
            ),
        ];
        for (k, v) in rows {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        if !self.by_kind.is_empty() {
            md.push_str(
                "\n## By kind\n\n| kind | items | correct | accuracy |\n|---|---:|---:|---:|\n",
            );
            for (kind, k) in &self.by_kind {
                md.push_str(&format!(
                    "| {kind} | {} | {} | {} |\n",
                    k.total,
                    k.correct,
                    pct(k.accuracy)
                ));
            }
        }
        let mut table = |title: &str, head: &str, map: &BTreeMap<String, usize>| {
            if map.is_empty() {
                return;
            }
            md.push_str(&format!("\n## {title}\n\n| {head} | count |\n|---|---:|\n"));
            for (k, v) in map {
                md.push_str(&format!("| {k} | {v} |\n"));
            }
        };
        table("Outcomes", "outcome", &self.outcomes);
        table("Failures", "failure", &self.failures);
        table("Tool errors", "error kind", &self.tool_errors);
        if !self.tool_calls.is_empty() {
            md.push_str("\n## Tool calls\n\n| tool | calls | items using it |\n|---|---:|---:|\n");
            for (tool, n) in &self.tool_calls {
                let items = self.items_using_tool.get(tool).copied().unwrap_or(0);
                md.push_str(&format!("| {tool} | {n} | {items} |\n"));
            }
        }
        md
    }

    /// Writes `report.json` and `report.md` into `dir` (created if needed); returns their
    /// paths.
    ///
    /// Fails with [`EvalError::Io`] when the directory or a file cannot be written.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf), EvalError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let json_path = dir.join("report.json");
        let md_path = dir.join("report.md");
        let json = serde_json::to_string_pretty(self).map_err(|e| EvalError::Io {
            path: json_path.clone(),
            source: e.into(),
        })?;
        std::fs::write(&json_path, json + "\n").map_err(io_error(&json_path))?;
        std::fs::write(&md_path, self.to_markdown()).map_err(io_error(&md_path))?;
        Ok((json_path, md_path))
    }
}
