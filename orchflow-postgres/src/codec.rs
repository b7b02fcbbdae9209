//! Conversions between the store's values and the database's: times as nanoseconds since the
//! Unix epoch, fencing tokens as `bigint`, documents and entries as JSON text, driver errors
//! as [`StoreError::Io`] and unreadable rows as [`StoreError::Corrupt`].
//!
//! Invariants: every error names a `location` that never contains a password (locations are
//! built from the host, port and database name only); a document is accepted only if it is
//! an orchflow checkpoint of a readable version and of the row's run.

use orchflow_core::RunId;
use orchflow_core::StepTrace;
use orchflow_core::store::{
    FORMAT, FORMAT_VERSION, JournalEntry, OLDEST_FORMAT_VERSION, RunDocument, StoreError,
};
#[cfg(test)]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as nanoseconds since the Unix epoch (negative before it), or `None` outside the range
/// of an `i64` (before 1677 or after 2262).
pub(crate) fn nanos(t: SystemTime) -> Option<i64> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).ok(),
        Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
    }
}

/// `t` as nanoseconds since the Unix epoch, clamped to the range of an `i64`: for query bounds,
/// where a bound beyond every storable time means the same as the clamped one.
pub(crate) fn nanos_clamped(t: SystemTime) -> i64 {
    nanos(t).unwrap_or(if t > UNIX_EPOCH { i64::MAX } else { i64::MIN })
}

/// The time `nanos` nanoseconds from the Unix epoch.
#[cfg(test)]
pub(crate) fn time(nanos: i64) -> SystemTime {
    let d = Duration::from_nanos(nanos.unsigned_abs());
    if nanos < 0 {
        UNIX_EPOCH - d
    } else {
        UNIX_EPOCH + d
    }
}

/// `t` as a column value, or an error naming the run when it is outside the storable range.
pub(crate) fn stored_time(t: SystemTime, what: &str, location: &str) -> Result<i64, StoreError> {
    nanos(t).ok_or_else(|| StoreError::Io {
        op: "write",
        location: location.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} {t:?} is outside the times this store keeps (years 1677 to 2262)"),
        ),
    })
}

/// A fencing token as the `bigint` it is stored as; `None` for a token no claim of this store
/// can have (above `i64::MAX`).
pub(crate) fn token_sql(token: u64) -> Option<i64> {
    i64::try_from(token).ok()
}

/// A stored token; tokens are positive (a check constraint), so this never loses anything.
pub(crate) fn token_of(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a driver error says, with the server's code, detail and hint when it has them.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What can be described in an I/O error.
pub(crate) trait Describe {
    fn describe(&self) -> String;
}

impl Describe for tokio_postgres::Error {
    fn describe(&self) -> String {
        describe(self)
    }
}

impl Describe for &str {
    fn describe(&self) -> String {
        (*self).to_string()
    }
}

/// `StoreError::Io` for an operation (`"connect to"`, `"query"`, …) on `location` that failed
/// with `e`.
pub(crate) fn io_error(op: &'static str, location: &str, e: &impl Describe) -> StoreError {
    StoreError::Io {
        op,
        location: location.to_string(),
        source: std::io::Error::other(e.describe()),
    }
}

/// `StoreError::Corrupt` at `location`.
pub(crate) fn corrupt(location: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Parses a stored document of `run_id`: checks the format and version on a loose parse
/// first (so a document of another version reports its version even when its fields
/// differ), then parses the whole document and checks it is the run's.
pub(crate) fn parse_document(
    text: &str,
    run_id: RunId,
    location: &str,
) -> Result<RunDocument, StoreError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(location, e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(corrupt(
            location,
            "not an orchflow checkpoint (not a JSON object)",
        ));
    };
    match object.get("format") {
        Some(serde_json::Value::String(format)) if format == FORMAT => {}
        Some(format) => {
            return Err(corrupt(
                location,
                format!("not an orchflow checkpoint (format {format})"),
            ));
        }
        None => {
            return Err(corrupt(
                location,
                "not an orchflow checkpoint (no \"format\" field)",
            ));
        }
    }
    let Some(version) = object.get("version") else {
        return Err(corrupt(location, "no \"version\" field"));
    };
    let found = version
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| corrupt(location, format!("invalid version {version}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::UnsupportedVersion {
            location: location.to_string(),
            found,
            expected: FORMAT_VERSION,
            oldest: OLDEST_FORMAT_VERSION,
        });
    }
    let document: RunDocument =
        serde_json::from_value(value).map_err(|e| corrupt(location, e.to_string()))?;
    if document.run_id != run_id {
        return Err(corrupt(
            location,
            format!("the document is of run {}", document.run_id),
        ));
    }
    Ok(document)
}

/// Parses a stored journal entry, which must have `seq`.
pub(crate) fn parse_entry(
    text: &str,
    seq: i64,
    location: &str,
) -> Result<JournalEntry, StoreError> {
    let entry: JournalEntry = serde_json::from_str(text)
        .map_err(|e| corrupt(location, format!("journal entry {seq}: {e}")))?;
    if i64::try_from(entry.seq).ok() != Some(seq) {
        return Err(corrupt(
            location,
            format!("journal entry {seq} says it is entry {}", entry.seq),
        ));
    }
    Ok(entry)
}

/// Parses a stored trace of the journal entry `seq`.
pub(crate) fn parse_trace(text: &str, seq: i64, location: &str) -> Result<StepTrace, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(location, format!("a trace of journal entry {seq}: {e}")))
}

/// An entry as stored: its JSON without the traces (which go to the `traces` table), and
/// each trace's JSON.
pub(crate) fn entry_texts(entry: &JournalEntry) -> Result<(String, Vec<String>), StoreError> {
    let mut value = serde_json::to_value(entry).map_err(|source| StoreError::Serialize {
        what: "a journal entry",
        source,
    })?;
    if let Some(object) = value.as_object_mut() {
        object.remove("traces");
    }
    let traces = entry
        .traces
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| StoreError::Serialize {
            what: "a step trace",
            source,
        })?;
    Ok((value.to_string(), traces))
}

/// A document as stored.
pub(crate) fn document_text(document: &RunDocument) -> Result<String, StoreError> {
    serde_json::to_string(document).map_err(|source| StoreError::Serialize {
        what: "a run document",
        source,
    })
}

/// Where a database is, as users know it: `postgres://host:port/database` (several hosts
/// separated by commas; a unix socket directory as `postgres:///database?host=/dir&port=…`).
/// Never the user or password.
pub(crate) fn database_location(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let mut tcp = Vec::new();
    let mut unix = Vec::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => tcp.push(format!("{name}:{}", port(i))),
            #[cfg(unix)]
            Host::Unix(path) => unix.push((path.display().to_string(), port(i))),
        }
    }
    if tcp.is_empty() {
        if let Some((dir, port)) = unix.first() {
            return format!("postgres:///{db}?host={dir}&port={port}");
        }
        return format!("postgres://localhost:{}/{db}", port(0));
    }
    format!("postgres://{}/{db}", tcp.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_exactly_through_nanoseconds() {
        let now = SystemTime::now();
        for t in [
            now,
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(86_400, 1),
        ] {
            let n = nanos(t).expect("in range");
            assert_eq!(time(n), t);
        }
        let far = UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400);
        assert_eq!(nanos(far), None);
        assert_eq!(nanos_clamped(far), i64::MAX);
        assert_eq!(
            nanos_clamped(UNIX_EPOCH - Duration::from_secs(400 * 365 * 86_400)),
            i64::MIN
        );
        assert!(stored_time(far, "created_at", "here").is_err());
    }

    #[test]
    fn nanoseconds_order_as_times_do() {
        let a = UNIX_EPOCH - Duration::from_nanos(5);
        let b = UNIX_EPOCH + Duration::from_nanos(3);
        assert!(nanos(a) < nanos(b));
        assert!(nanos(b) < nanos(b + Duration::from_nanos(1)));
    }

    #[test]
    fn locations_name_hosts_ports_and_databases_but_no_password() {
        let config: tokio_postgres::Config = "postgres://alice:s3cret@db.example:6543/runs"
            .parse()
            .expect("a URL");
        let location = database_location(&config);
        assert_eq!(location, "postgres://db.example:6543/runs");
        let config: tokio_postgres::Config = "host=/run/pg port=5433 user=bob password=s3cret"
            .parse()
            .expect("key=value");
        let location = database_location(&config);
        assert_eq!(location, "postgres:///bob?host=/run/pg&port=5433");
        assert!(!location.contains("s3cret"));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("orchflow"), "\"orchflow\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn documents_of_other_formats_versions_and_runs_are_refused() {
        let run = RunId::new_v4();
        let corrupt_reason = |text: &str| match parse_document(text, run, "db (run x)") {
            Err(StoreError::Corrupt { location, reason }) => {
                assert_eq!(location, "db (run x)");
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert!(corrupt_reason("{").contains("EOF"));
        assert!(corrupt_reason("[1]").contains("not a JSON object"));
        assert!(corrupt_reason(r#"{"format":"other"}"#).contains("format"));
        assert!(corrupt_reason(r#"{"format":"orchflow-checkpoint"}"#).contains("version"));
        assert!(matches!(
            parse_document(r#"{"format":"orchflow-checkpoint","version":9}"#, run, "db"),
            Err(StoreError::UnsupportedVersion { found: 9, .. })
        ));
    }

    #[test]
    fn entries_are_stored_without_their_traces() {
        let mut entry = JournalEntry::new(
            3,
            orchflow_core::store::PointRecord::Point(serde_json::json!({ "A": 1 })),
        );
        let (text, traces) = entry_texts(&entry).expect("serialise");
        assert!(traces.is_empty());
        assert_eq!(parse_entry(&text, 3, "db").expect("parse"), entry);
        entry.seq = 4;
        let (text, _) = entry_texts(&entry).expect("serialise");
        assert!(matches!(
            parse_entry(&text, 3, "db"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
