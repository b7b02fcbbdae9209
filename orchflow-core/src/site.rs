//! Where in a flow the code being polled stands: the parallel branches and nested flows around
//! it, so that a human question knows its position (`1/review`, `legal/0/sign`).
//!
//! The path lives in a thread-local stack. A parallel branch pushes its index, and a nested
//! flow its name, around each poll of its future and pops it after, so the stack always
//! describes the future being polled on this thread; nothing is held across an `.await`. A run
//! starts each poll from an empty stack (a flow run inside a step of another flow has positions
//! of its own). Costs a push and a pop per poll of a branch; nothing is allocated once the stack
//! has grown to the flow's depth.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

/// One level of a question's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A branch of a parallel group, by index.
    Branch(u32),
    /// A nested flow, by its name.
    Flow(&'static str),
}

thread_local! {
    static PATH: RefCell<Vec<Seg>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `seg` on top of the path.
#[inline]
pub(crate) fn within<R>(seg: Seg, f: impl FnOnce() -> R) -> R {
    PATH.with(|p| p.borrow_mut().push(seg));
    let _pop = Pop;
    f()
}

/// Pops the path's top when dropped, so a panic in the polled future does not leave it behind.
struct Pop;

impl Drop for Pop {
    #[inline]
    fn drop(&mut self) {
        PATH.with(|p| {
            p.borrow_mut().pop();
        });
    }
}

/// Runs `f` from an empty path (the start of a run), restoring the caller's after.
#[inline]
pub(crate) fn root<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Vec<Seg>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let saved = std::mem::take(&mut self.0);
            PATH.with(|p| *p.borrow_mut() = saved);
        }
    }
    let _restore = Restore(PATH.with(|p| std::mem::take(&mut *p.borrow_mut())));
    f()
}

/// `fut`, with `seg` on the path while it is polled.
pub(crate) async fn scoped<F: Future>(seg: Seg, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| -> Poll<F::Output> { within(seg, || fut.as_mut().poll(cx)) }).await
}

/// The position of a question asked by `step` here: the path's levels, then the step, joined
/// by `/`.
pub(crate) fn question(step: &str) -> String {
    PATH.with(|p| {
        let path = p.borrow();
        let mut out = String::new();
        for seg in path.iter() {
            // Writing to a String cannot fail.
            let _ = match seg {
                Seg::Branch(i) => write!(out, "{i}/"),
                Seg::Flow(name) => write!(out, "{name}/"),
            };
        }
        out.push_str(step);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_nest_and_unwind() {
        assert_eq!(question("ask"), "ask");
        let inner = within(Seg::Flow("legal"), || {
            within(Seg::Branch(1), || question("sign"))
        });
        assert_eq!(inner, "legal/1/sign");
        assert_eq!(question("ask"), "ask");
        let rooted = within(Seg::Branch(3), || root(|| question("q")));
        assert_eq!(rooted, "q");
        assert_eq!(within(Seg::Branch(3), || question("q")), "3/q");
    }

    #[test]
    fn a_panic_unwinds_the_path() {
        let caught = std::panic::catch_unwind(|| within(Seg::Branch(7), || panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(question("q"), "q");
    }

    #[tokio::test]
    async fn scoped_futures_see_their_level_at_every_poll() {
        let seen = scoped(Seg::Branch(2), async {
            let before = question("a");
            tokio::task::yield_now().await;
            (before, question("b"))
        })
        .await;
        assert_eq!(seen, ("2/a".to_string(), "2/b".to_string()));
        assert_eq!(question("c"), "c");
    }
}
