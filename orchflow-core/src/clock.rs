//! The clock of the hot path.

/// The clock of the hot path: the CPU's time-stamp counter where it is invariant (about 10 ns a
/// read, where `Instant::now` costs 25 ns or more on virtual machines), calibrated once per
/// process against the monotonic clock (under a millisecond); the monotonic clock elsewhere.
pub(crate) fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}
