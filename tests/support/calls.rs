//! Counting step executions in tests: how many times each step ran on each input, in this
//! process. Tests that count pick inputs of their own (a fresh range each), so that tests
//! running at the same time do not share counters.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many times each (step, input) ran.
static CALLS: Mutex<Option<HashMap<(&'static str, u32), u32>>> = Mutex::new(None);

/// Records one execution of `step` on `x`.
pub fn called(step: &'static str, x: u32) {
    *CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry((step, x))
        .or_default() += 1;
}

/// How many times `step` ran on `x`.
pub fn calls(step: &'static str, x: u32) -> u32 {
    CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|c| c.get(&(step, x)).copied())
        .unwrap_or(0)
}
