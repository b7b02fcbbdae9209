//! [`run_eval`]: solving the items a bounded number at a time, with a progress bar, appending
//! each result as it is known.

use super::*;

/// How [`run_eval`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOptions {
    /// The most items solved at once (0 counts as 1). Default 4.
    pub concurrency: usize,
    /// The results file (JSONL, one [`EvalRecord`] per line). Each finished item is appended
    /// and flushed at once; when the file exists, the items whose ids it holds are not asked
    /// again and their records are reused. `None`: no file, no resume. Default `None`.
    pub results_path: Option<PathBuf>,
    /// Show a progress bar on stderr (it stays hidden anyway when stderr is not a terminal).
    /// Default `true`.
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            concurrency: 4,
            results_path: None,
            progress: true,
        }
    }
}

/// Runs an eval: for each item not already in the results file, awaits `solve(item)`, scores
/// the trajectory's answer, and appends the [`EvalRecord`] to the results file as soon as it is
/// known; at most `options.concurrency` solves are in flight at once (they run concurrently on
/// the calling task). Returns the report over all items (records resumed from the file
/// included, in item order; records in the file for ids not among `items` are ignored).
///
/// `solve` decides how trajectories are made (the `solver` module's `Solver`, a script…); it
/// cannot fail: a failed run is a trajectory with [`Outcome::Failed`].
///
/// Fails with [`EvalError::DuplicateId`] or [`EvalError::InvalidItem`] before asking anything,
/// and with [`EvalError::Io`] when the results file cannot be read or written (then the
/// in-flight solves are dropped; what was written stays and is resumed next time).
///
/// ```
/// use orchflow_agent::eval::{parse_items, run_eval, EvalOptions};
/// use orchflow_agent::trajectory::{Outcome, Trajectory};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let items = parse_items(r#"{"id": "a", "question": "2+2?", "answer": "4", "kind": "integer"}"#)
///     .unwrap();
/// let solve = |item: orchflow_agent::eval::EvalItem| async move {
///     let mut t = Trajectory::new(item.question);
///     t.answer = Some(r"\boxed{4}".into());
///     t.outcome = Outcome::Answered;
///     t
/// };
/// let options = EvalOptions { progress: false, ..EvalOptions::default() };
/// let report = run_eval(items, solve, &options).await.unwrap();
/// assert_eq!((report.total, report.correct), (1, 1));
/// # });
/// ```
pub async fn run_eval<F, Fut>(
    items: Vec<EvalItem>,
    solve: F,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError>
where
    F: Fn(EvalItem) -> Fut,
    Fut: Future<Output = Trajectory>,
{
    check_items(&items)?;
    let (mut file, previous) = match &options.results_path {
        Some(path) => {
            let (file, records) = open_results(path)?;
            (Some((file, path.clone())), records)
        }
        None => (None, Vec::new()),
    };
    let wanted: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut records: HashMap<String, EvalRecord> = previous
        .into_iter()
        .filter(|r| wanted.contains(r.id.as_str()))
        .map(|r| (r.id.clone(), r))
        .collect();
    let resumed = records.len();
    let pending: Vec<EvalItem> = items
        .iter()
        .filter(|i| !records.contains_key(&i.id))
        .cloned()
        .collect();
    if resumed > 0 {
        tracing::info!(
            resumed,
            pending = pending.len(),
            "resuming: {resumed} item(s) already in the results file"
        );
    }

    let bar = progress_bar(items.len(), options.progress);
    bar.set_position(resumed as u64);
    let mut correct_so_far = records.values().filter(|r| r.correct).count();
    let mut done_so_far = resumed;
    bar.set_message(accuracy_message(correct_so_far, done_so_far));

    let solve = &solve;
    let mut finished = futures_util::stream::iter(pending)
        .map(|item| async move {
            let started = Instant::now();
            let trajectory = solve(item.clone()).await;
            EvalRecord::new(&item, trajectory, started.elapsed())
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some(record) = finished.next().await {
        if let Some((file, path)) = &mut file {
            let mut line = serde_json::to_string(&record).map_err(|e| EvalError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .map_err(io_error(path))?;
        }
        tracing::info!(
            id = %record.id,
            correct = record.correct,
            predicted = ?record.predicted,
            expected = %record.expected,
            steps = record.steps,
            outcome = %record.outcome,
            "eval item finished"
        );
        done_so_far += 1;
        correct_so_far += usize::from(record.correct);
        bar.inc(1);
        bar.set_message(accuracy_message(correct_so_far, done_so_far));
        records.insert(record.id.clone(), record);
    }
    drop(finished);
    bar.finish_and_clear();

    let ordered: Vec<EvalRecord> = items.iter().filter_map(|i| records.remove(&i.id)).collect();
    let mut report = EvalReport::from_records(&ordered);
    report.resumed = resumed;
    Ok(report)
}

pub(super) fn progress_bar(len: usize, wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub(super) fn accuracy_message(correct: usize, done: usize) -> String {
    if done == 0 {
        String::new()
    } else {
        format!(
            "correct {correct}/{done} ({:.1}%)",
            100.0 * correct as f64 / done as f64
        )
    }
}
