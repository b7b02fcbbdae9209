//! The retry loop: a step's attempts under its policy (step > flow > none), the backoff between
//! them, and the halt for a step that will not be tried again.

use super::Halt;
use super::attempt::{Failure, panic_message};
use super::core::Rt;
use super::replayed::{self, Early, Replayed};
use crate::error::FlowError;
use crate::event::RunEvent;
use crate::policy::RetryPolicy;
use crate::step::bounds::StepFailure;
use crate::step::{Feed, StepCall, StepDef};
use std::borrow::Cow;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

impl Rt {
    /// Runs a step with its retry policy (step > flow > none), recording a trace per attempt.
    ///
    /// A run that replays or forks a recording has the call decided by its replayer when the
    /// future is made (`iterations`: the loop iterations and map items around the call, for
    /// it): answered from the recording, parked, stopped, run with an edited input, or run and
    /// compared with the recording (see [`crate::replay`]).
    ///
    /// A plain function returning an `async` block (not an `async fn`): the future then holds
    /// its arguments once, and nothing of the retry policy until an attempt fails, which keeps
    /// every run's future small. Every call of a step type makes this one future type, with or
    /// without a replayer: an enum of two future types per call makes LLVM's SLP vectorizer
    /// superlinear in the length of a flow (release builds of minutes; BENCHMARKS.md, session
    /// 9). Inlined: out of line, the future is returned through a copy.
    #[allow(clippy::manual_async_fn)]
    #[inline(always)]
    pub(crate) fn step<'a, St: StepCall>(
        &'a self,
        step: &'a St,
        node: &'static crate::graph::StaticNode,
        input: Feed<'a, St::Input>,
        iterations: &[u32],
    ) -> impl Future<Output = Result<St::Output, Halt>> + 'a {
        let (input, mut replay) = match self.replayer() {
            None => (input, None),
            Some(replayer) => replayed::decide(self, replayer, step, node, input, iterations),
        };
        let (retry, timeout) = self.policy_of(step);
        let max = retry.max_attempts();
        let core = &*self.core;
        // Nothing to time, record, retry or watch: one contained call.
        let quiet = max <= 1
            && timeout.is_none()
            && !core.traces_on
            && !core.capture
            && core.events.is_none();
        async move {
            match Replayed::early(&mut replay) {
                Some(Early::Done(out)) => return out,
                Some(Early::Park) => return std::future::pending().await,
                None => {}
            }
            let out = 'run: {
                // Boxed, and only when a subscriber wants it: a disabled span is 40 bytes of
                // nothing.
                let span = Some(tracing::info_span!(
                    "step",
                    step = step.name(),
                    group = self.group
                ))
                .filter(|s| !s.is_disabled())
                .map(Box::new);
                if quiet && span.is_none() {
                    break 'run match self.quiet_attempt(step, input).await {
                        Ok(v) => Ok(v),
                        Err(f) => Err(self.given_up(step, 1, f)),
                    };
                }
                let span = span.as_deref();
                let mut n = 1u32;
                loop {
                    if n >= max {
                        break 'run match self
                            .attempt(step, node, input, n, max, timeout, span)
                            .await
                        {
                            Ok(v) => Ok(v),
                            Err(f) => Err(self.given_up(step, n, f)),
                        };
                    }
                    let f = match self
                        .attempt(step, node, input.reborrow(), n, max, timeout, span)
                        .await
                    {
                        Ok(v) => break 'run Ok(v),
                        Err(f) => f,
                    };
                    if !worth_retrying(step, &f) {
                        break 'run Err(self.given_up(step, n, f));
                    }
                    log_failure(step.name(), n, &f, true);
                    // Boxed: the retry path is rare; the common path keeps a small future.
                    // The error that caused the retry, for its event (only when somebody listens).
                    let cause = self.core.events.is_some().then(|| f.message());
                    drop(f);
                    Box::pin(self.before_retry(step, node, n, cause)).await;
                    n += 1;
                }
            };
            match replay {
                None => out,
                Some(r) => r.compared(self, step, node, out),
            }
        }
    }

    /// The halt for a step that will not be tried again: a suspension, or its error.
    fn given_up<St: StepDef>(&self, step: &St, n: u32, f: Failure<St::Error>) -> Halt {
        let name = step.name();
        if let Some(halt) = suspension(step, &f) {
            return halt;
        }
        log_failure(name, n, &f, false);
        Halt::new(FlowError::Step {
            step: Cow::Borrowed(name),
            attempts: n,
            source: f.into_step_error(),
        })
    }

    /// The retry policy and timeout in force for `step`: its own, else (if it inherits) the
    /// flow's defaults.
    fn policy_of<St: StepDef>(&self, step: &St) -> (RetryPolicy, Option<Duration>) {
        let policy = step.policy();
        let inherit = step.inherits_defaults();
        let retry = match (policy.retry, inherit) {
            (Some(r), _) => r,
            (None, true) => self.defaults.retry.unwrap_or(RetryPolicy::NONE),
            (None, false) => RetryPolicy::NONE,
        };
        let timeout = policy
            .timeout
            .or(if inherit { self.defaults.timeout } else { None });
        (retry, timeout)
    }

    /// Announces and waits out the delay before attempt `n + 1`.
    async fn before_retry<St: StepDef>(
        &self,
        step: &St,
        node: &'static crate::graph::StaticNode,
        n: u32,
        cause: Option<String>,
    ) {
        let name = step.name();
        let (retry, _) = self.policy_of(step);
        let delay = retry.jittered_delay_before(n);
        tracing::debug!(step = name, attempt = n, ?delay, "retry scheduled");
        self.core.emit(|| {
            RunEvent::RetryScheduled(
                self.step_event(name, node, n + 1, self.core.now_ns(), None)
                    .with_detail(cause, false, Some(delay)),
            )
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            self.core.interrupted();
        }
    }
}

/// Whether a failed attempt is worth another (when one is left): not a suspension, and an error
/// the step's `retry_if` accepts.
pub(crate) fn worth_retrying<St: StepDef>(step: &St, f: &Failure<St::Error>) -> bool {
    let accepted = match (f, step.policy().retry_if) {
        // A panicking predicate accepts nothing: the attempt's failure stands, unretried.
        (Failure::Error(e), Some(pred)) => match catch_unwind(AssertUnwindSafe(|| pred(e))) {
            Ok(accepted) => accepted,
            Err(payload) => {
                let message = panic_message(payload);
                tracing::warn!(step = step.name(), %message, "retry_if panicked: not retrying");
                false
            }
        },
        _ => true,
    };
    accepted && suspension(step, f).is_none()
}

fn log_failure<E: StepFailure>(name: &'static str, n: u32, f: &Failure<E>, will_retry: bool) {
    tracing::warn!(step = name, attempt = n, will_retry, error = %f.message(), "attempt failed");
}

/// The halt for a step error that is a request to suspend the run.
pub(crate) fn suspension<St: StepDef>(step: &St, f: &Failure<St::Error>) -> Option<Halt> {
    let Failure::Error(e) = f else { return None };
    let questions = step.suspension(e)?;
    Some(Halt::new(FlowError::Suspended { questions }))
}
