//! Runs show up in any `tracing` subscriber: a span per run, per step and per attempt, nested.

use orchflow::testing::{Flaky, FlakyError};
use orchflow::{flow, step};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span as recorded: its name, its `step` field if any, and its parent's index.
#[derive(Debug, Clone)]
struct Seen {
    name: &'static str,
    step: Option<String>,
    parent: Option<usize>,
}

#[derive(Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<Seen>>>,
    stack: Mutex<Vec<u64>>,
    next: AtomicU64,
}

struct StepField(Option<String>);
impl Visit for StepField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "step" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut step = StepField(None);
        attrs.record(&mut step);
        let parent = if attrs.is_contextual() {
            self.stack
                .lock()
                .unwrap()
                .last()
                .map(|id| (*id - 1) as usize)
        } else {
            attrs.parent().map(|p| (p.into_u64() - 1) as usize)
        };
        let mut spans = self.spans.lock().unwrap();
        spans.push(Seen {
            name: attrs.metadata().name(),
            step: step.0,
            parent,
        });
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(id as usize, spans.len());
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(pos) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(pos);
        }
    }
}

static ONCE: Flaky = Flaky::failing(1);

#[step(retry = 1)]
async fn shaky(x: u32) -> Result<u32, FlakyError> {
    ONCE.attempt()?;
    Ok(x)
}

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

#[test]
fn flow_step_and_attempt_spans_nest() {
    let recorder = Recorder::default();
    let spans = Arc::clone(&recorder.spans);
    let _guard = tracing::subscriber::set_default(recorder);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(flow! { #[flow(name = "traced")] shaky => inc }.run(1));
    assert_eq!(result.output, Some(2));

    let spans = spans.lock().unwrap().clone();
    let names: Vec<_> = spans.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["flow", "step", "attempt", "attempt", "step", "attempt"],
        "{spans:#?}"
    );
    let flow = 0;
    for (i, s) in spans.iter().enumerate() {
        match s.name {
            "step" => assert_eq!(s.parent, Some(flow), "step {i} under the flow"),
            "attempt" => {
                let parent = s.parent.expect("an attempt has a parent");
                assert_eq!(spans[parent].name, "step", "attempt {i} under a step");
            }
            _ => assert_eq!(s.parent, None),
        }
    }
    let steps: Vec<_> = spans.iter().filter_map(|s| s.step.clone()).collect();
    assert_eq!(steps, ["shaky", "inc"]);
}
