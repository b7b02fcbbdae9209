//! A run's lineage: the run it was forked from and where ([`ForkOrigin`], [`ForkAt`]), and the
//! runs forked from it ([`Lineage`]). Kept in the run's document; see [`crate::replay`].

use crate::context::RunId;
use serde::{Deserialize, Serialize};

/// A run's forks: the run it was forked from ([`Durable::fork`](crate::Durable::fork)), and
/// the runs forked from it.
///
/// ```
/// use orchflow::store::Lineage;
/// let l = Lineage::default();
/// assert!(l.is_empty());
/// assert_eq!(serde_json::to_value(&l).unwrap(), serde_json::json!({}));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The recorded run this one was forked from, and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkOrigin>,
    /// The runs forked from this one, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forks: Vec<RunId>,
}

impl Lineage {
    /// Whether the run is no fork and has none.
    pub fn is_empty(&self) -> bool {
        self.forked_from.is_none() && self.forks.is_empty()
    }
}

/// The call a fork starts from: the `occurrence`-th call (from 1) of step `step` in the
/// recording. A call that failed or suspended counts as one call, however many attempts it
/// took.
///
/// Written `step` or `step@n` ([`ForkAt::parse`]); `step` alone is its first call.
///
/// ```
/// use orchflow::replay::ForkAt;
/// let at = ForkAt::parse("executor@3").unwrap();
/// assert_eq!((at.step.as_str(), at.occurrence), ("executor", 3));
/// assert_eq!(ForkAt::parse("plan").unwrap().occurrence, 1);
/// assert!(ForkAt::parse("plan@0").is_err());
/// assert_eq!(at.to_string(), "executor@3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkAt {
    /// The step's name, as traces show it.
    pub step: String,
    /// Which of its calls, from 1, in the order the recording made them.
    pub occurrence: u32,
}

impl ForkAt {
    /// Reads `step` or `step@n` (n ≥ 1).
    ///
    /// Fails with a message when the text is empty or `n` is not a positive number.
    pub fn parse(text: &str) -> Result<ForkAt, String> {
        let (step, n) = match text.rsplit_once('@') {
            Some((step, n)) => {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("`{n}` in `{text}` is not a call number"))?;
                (step, n)
            }
            None => (text, 1),
        };
        if step.is_empty() {
            return Err(format!("`{text}` names no step"));
        }
        if n == 0 {
            return Err(format!(
                "calls are numbered from 1 (`{step}@1`), not `{text}`"
            ));
        }
        Ok(ForkAt {
            step: step.to_string(),
            occurrence: n,
        })
    }
}

impl std::fmt::Display for ForkAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.step, self.occurrence)
    }
}

/// Where a forked run came from, kept in its document
/// ([`Lineage::forked_from`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkOrigin {
    /// The recorded run.
    pub run_id: RunId,
    /// The call the fork ran again from.
    pub at: ForkAt,
    /// Where that call is in the flow (`loop plan[3] > step market`).
    #[serde(default)]
    pub path: String,
    /// The edited input the call was given, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// The recorded run's fingerprint.
    #[serde(default)]
    pub fingerprint: String,
}
