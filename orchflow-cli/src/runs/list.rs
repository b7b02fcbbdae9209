//! `runs list`, and the listing's JSON shape that `GET /api/runs` shares.
//!
//! Invariants: a cursor is opaque text that [`decode_cursor`] reads back exactly as
//! [`encode_cursor`] wrote it; the listing's order and paging are the store's (newest first,
//! keyset paging), never re-sorted here.

use crate::CliError;
use orchflow::store::{RunCursor, RunDocument, RunListing, RunQuery, RunStatus, StatusCounts};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// The listing as JSON: `{"runs": [...], "next": cursor|null, "unreadable": ["message"...]}`,
/// with `counts` when the server adds them.
#[derive(Debug, Serialize)]
pub struct ListingJson<'a> {
    /// The page's run documents, newest first.
    pub runs: &'a [RunDocument],
    /// The cursor of the next page ([`encode_cursor`]), when there is one.
    pub next: Option<String>,
    /// Why some runs could not be read.
    pub unreadable: Vec<String>,
    /// Runs per status under the filters, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<StatusCounts>,
}

impl<'a> ListingJson<'a> {
    /// The JSON form of `listing`.
    pub fn of(listing: &'a RunListing) -> Self {
        ListingJson {
            runs: &listing.runs,
            next: listing.next.as_ref().map(encode_cursor),
            unreadable: listing.unreadable.iter().map(|e| e.to_string()).collect(),
            counts: None,
        }
    }
}

/// A cursor as opaque text: `<seconds>.<nanoseconds>_<run id>` of the last run of a page.
///
/// ```
/// use orchflow_cli::runs::list::{decode_cursor, encode_cursor};
/// use orchflow::store::RunCursor;
/// let c = RunCursor { created_at: std::time::SystemTime::now(), run_id: uuid::Uuid::new_v4() };
/// assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
/// assert!(decode_cursor("nonsense").is_err());
/// ```
pub fn encode_cursor(cursor: &RunCursor) -> String {
    let since_epoch = cursor
        .created_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:09}_{}",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
        cursor.run_id
    )
}

/// Reads a cursor [`encode_cursor`] wrote. Fails with [`CliError::Usage`] for other text.
pub fn decode_cursor(text: &str) -> Result<RunCursor, CliError> {
    let bad = || CliError::Usage(format!("{text:?} is not a listing cursor"));
    let (time, id) = text.split_once('_').ok_or_else(bad)?;
    let (secs, nanos) = time.split_once('.').ok_or_else(bad)?;
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = nanos.parse().map_err(|_| bad())?;
    if nanos >= 1_000_000_000 {
        return Err(bad());
    }
    let created_at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::new(secs, nanos))
        .ok_or_else(bad)?;
    let run_id = id.parse().map_err(|_| bad())?;
    Ok(RunCursor { created_at, run_id })
}

/// Reads a time filter: RFC 3339 (`2026-12-03T10:00:00Z`) or a duration before `now`
/// (`90s`, `15m`, `2h`, `3days`). Fails with [`CliError::Usage`] naming the text.
///
/// ```
/// use orchflow_cli::runs::list::parse_time;
/// use std::time::{Duration, SystemTime};
/// let now = SystemTime::now();
/// assert_eq!(parse_time("2h", now).unwrap(), now - Duration::from_secs(7200));
/// assert!(parse_time("2026-12-03T10:00:00Z", now).is_ok());
/// assert!(parse_time("yesterday-ish", now).is_err());
/// ```
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, CliError> {
    let text = text.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => now
            .checked_sub(ago)
            .ok_or_else(|| CliError::Usage(format!("{text:?} reaches before the start of time"))),
        Err(_) => Err(CliError::Usage(format!(
            "{text:?} is not a time: use RFC 3339 (2026-12-03T10:00:00Z) or a duration ago (15m, 2h, 3days)"
        ))),
    }
}

/// Reads a status filter. Fails with [`CliError::Usage`] listing the statuses.
pub fn parse_status(text: &str) -> Result<RunStatus, CliError> {
    text.trim().parse().map_err(CliError::Usage)
}

/// The default page size of `runs list`.
pub const DEFAULT_LIMIT: usize = 50;

/// Builds the query of `runs list`'s arguments.
pub fn query_of(args: &crate::ListArgs, now: SystemTime) -> Result<RunQuery, CliError> {
    let mut query = RunQuery::new().limit(args.limit.unwrap_or(DEFAULT_LIMIT).max(1));
    if let Some(flow) = &args.flow {
        query = query.flow(flow.clone());
    }
    if let Some(status) = &args.status {
        query = query.status(parse_status(status)?);
    }
    if let Some(since) = &args.since {
        query = query.since(parse_time(since, now)?);
    }
    if let Some(after) = &args.after {
        query = query.after(decode_cursor(after)?);
    }
    Ok(query)
}

/// Prints `listing` as a table: id, flow, status, created, updated; then the unreadable runs,
/// the runs per status under the filters (`counts`), and the cursor of the next page.
pub fn print_table(
    listing: &RunListing,
    counts: &StatusCounts,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if listing.runs.is_empty() {
        writeln!(out, "no runs")?;
    } else {
        let flow_width = listing
            .runs
            .iter()
            .map(|d| d.flow.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            out,
            "{:<36}  {:<flow_width$}  {:<9}  {:<24}  UPDATED",
            "RUN", "FLOW", "STATUS", "CREATED"
        )?;
        for d in &listing.runs {
            writeln!(
                out,
                "{:<36}  {:<flow_width$}  {:<9}  {:<24}  {}",
                d.run_id,
                d.flow,
                d.status.as_str(),
                short_time(d.created_at),
                short_time(d.updated_at)
            )?;
        }
    }
    for e in &listing.unreadable {
        writeln!(out, "unreadable: {e}")?;
    }
    let statuses = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Suspended,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];
    let parts: Vec<String> = statuses
        .iter()
        .filter(|s| counts.get(s) > 0)
        .map(|s| format!("{} {s}", counts.get(s)))
        .collect();
    if !parts.is_empty() {
        writeln!(out, "total: {} ({})", counts.total(), parts.join(", "))?;
    }
    if let Some(next) = &listing.next {
        writeln!(out, "more: --after {}", encode_cursor(next))?;
    }
    Ok(())
}

/// A time to the millisecond, for tables.
pub(crate) fn short_time(t: SystemTime) -> String {
    crate::bundle::format_time_millis(t)
}

/// Prints `listing` with `counts` as [`ListingJson`] (what `GET /api/runs` answers).
pub fn print_json(
    listing: &RunListing,
    counts: &StatusCounts,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut json = ListingJson::of(listing);
    json.counts = Some(*counts);
    let text = serde_json::to_string_pretty(&json)
        .map_err(|e| CliError::Failed(format!("cannot write the listing as JSON: {e}")))?;
    writeln!(out, "{text}").map_err(super::stdout_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_usage_error() {
        let c = RunCursor {
            created_at: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            run_id: uuid::Uuid::new_v4(),
        };
        let text = encode_cursor(&c);
        assert!(text.starts_with("1700000000.000000005_"), "{text}");
        assert_eq!(decode_cursor(&text).ok(), Some(c));
        for bad in [
            "",
            "1.2",
            "1.2_x",
            "a.1_",
            "1.1000000000_00000000-0000-0000-0000-000000000000",
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_and_times_are_checked() {
        assert!(matches!(parse_status("done"), Err(CliError::Usage(m)) if m.contains("queued")));
        assert_eq!(parse_status(" failed ").ok(), Some(RunStatus::Failed));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            parse_time("1m", now).ok(),
            Some(now - Duration::from_secs(60))
        );
        assert!(matches!(parse_time("soon", now), Err(CliError::Usage(_))));
        assert_eq!(
            parse_time("1970-01-01T00:00:10Z", now).ok(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
    }
}
