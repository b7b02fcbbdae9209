//! How times and durations look in orchflow's JSON (results, traces, events, checkpoints).
//!
//! * An instant is an RFC 3339 string in UTC with nanoseconds: `"2026-12-03T05:20:01.123456789Z"`.
//! * A duration is a number of seconds: `0.000125`.
//!
//! Both read back what they write; readers also accept the shape serde gives `SystemTime` and
//! `Duration` by default (`{"secs_since_epoch", "nanos_since_epoch"}`, `{"secs", "nanos"}`),
//! which checkpoints of format version 1 hold.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serializer};
use std::time::{Duration, SystemTime};

/// An instant as RFC 3339 text.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// `SystemTime` fields as RFC 3339 strings (`#[serde(with = "crate::json::instant")]`).
pub(crate) mod instant {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_nanos(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Legacy {
                secs_since_epoch: u64,
                nanos_since_epoch: u32,
            },
        }
        match Either::deserialize(d)? {
            Either::Text(text) => humantime::parse_rfc3339_weak(&text)
                .map_err(|e| de::Error::custom(format!("invalid RFC 3339 time {text:?}: {e}"))),
            Either::Legacy {
                secs_since_epoch,
                nanos_since_epoch,
            } => SystemTime::UNIX_EPOCH
                .checked_add(Duration::new(secs_since_epoch, nanos_since_epoch))
                .ok_or_else(|| de::Error::custom("a time out of range")),
        }
    }
}

/// `Duration` fields as a number of seconds (`#[serde(with = "crate::json::seconds")]`).
pub(crate) mod seconds {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Seconds(f64),
            Legacy { secs: u64, nanos: u32 },
        }
        match Either::deserialize(d)? {
            Either::Seconds(s) => Duration::try_from_secs_f64(s)
                .map_err(|e| de::Error::custom(format!("invalid duration {s}: {e}"))),
            Either::Legacy { secs, nanos } => Ok(Duration::new(secs, nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "instant")]
        at: SystemTime,
        #[serde(with = "seconds")]
        took: Duration,
    }

    #[test]
    fn instants_are_rfc3339_and_durations_seconds_both_ways() {
        let t = Times {
            at: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            took: Duration::from_micros(1500),
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "at": "2023-11-14T22:13:20.123456789Z", "took": 0.0015 })
        );
        let back: Times = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn the_default_serde_shapes_are_read_too() {
        let legacy = serde_json::json!({
            "at": { "secs_since_epoch": 1_700_000_000u64, "nanos_since_epoch": 5 },
            "took": { "secs": 2, "nanos": 7 },
        });
        let t: Times = serde_json::from_value(legacy).unwrap();
        assert_eq!(
            t.at,
            SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5)
        );
        assert_eq!(t.took, Duration::new(2, 7));
    }

    #[test]
    fn bad_times_are_errors_not_panics() {
        for bad in [
            serde_json::json!({ "at": "yesterday", "took": 1.0 }),
            serde_json::json!({ "at": "2023-11-14T22:13:20Z", "took": -1.0 }),
            serde_json::json!({ "at": { "secs_since_epoch": u64::MAX, "nanos_since_epoch": 0 }, "took": 1.0 }),
        ] {
            assert!(serde_json::from_value::<Times>(bad).is_err());
        }
    }
}
