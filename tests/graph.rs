//! The flow's graph as data (`Flow::graph`, `FlowInfo::graph`): its JSON form for the launch
//! brief, a loop with `until`, a nested flow and step options; its JSON round trip; and every
//! trace and event of a run placed on a node of it.

use orchflow::graph::{FlowGraph, NodeKind};
use orchflow::testing::collect_events;
use orchflow::{Event, flow, step};

#[step]
async fn plan(topic: String) -> String {
    format!("plan for {topic}")
}
#[step]
async fn docs(plan: &String) -> String {
    format!("docs of {plan}")
}
#[step]
async fn market(plan: &String) -> String {
    format!("market of {plan}")
}
#[step]
fn publish(parts: (String, String)) -> String {
    parts.0 + &parts.1
}
#[step(name = "rewrite")]
fn revise(parts: (String, String)) -> String {
    parts.1 + &parts.0
}
fn short(parts: &(String, String)) -> bool {
    parts.0.len() < 1000
}

#[step]
async fn double(x: u32) -> u32 {
    x * 2
}
#[step(retry = 3, timeout = "250ms")]
async fn careful(x: u32) -> u32 {
    x + 1
}
#[step]
fn sum(p: (u32, u32)) -> u32 {
    p.0 + p.1
}
fn big(x: &u32) -> bool {
    *x > 100
}
fn even(x: &u32) -> bool {
    x.is_multiple_of(2)
}

fn json(g: &FlowGraph) -> String {
    serde_json::to_string_pretty(g).unwrap_or_default()
}

#[test]
fn launch_brief_graph() {
    let f = flow! { #[flow(name = "launch")] plan => [docs, market] => if short { publish } else { revise } };
    insta::assert_snapshot!(json(&f.graph()));
    // The static graph has what the compiler knows; `revise` is named by its `#[step]` here.
    let info = f.info().graph;
    let revise = info.node("2/else/0").map(|n| &n.kind);
    assert!(matches!(revise, Some(NodeKind::Step { name, .. }) if name == "rewrite"));
}

#[test]
fn loop_with_until_graph() {
    let f =
        flow! { #[flow(name = "grow")] double => loop(max = 5) { double => careful } until big };
    insta::assert_snapshot!(json(&f.graph()));
}

#[test]
fn nested_flow_and_options_graph() {
    let inner = flow! { #[flow(name = "inner")] careful => double };
    let fingerprint = inner.info().fingerprint;
    let f = flow! { #[flow(name = "outer")] careful => (inner.clone()) => (inner) };
    let g = f.graph();
    insta::assert_snapshot!(json(&g));
    assert_eq!(g.flows.len(), 1);
    assert_eq!(g.flows[0].fingerprint, fingerprint);
}

#[test]
fn graph_round_trips_through_json() {
    let inner = flow! { #[flow(name = "inner")] careful => double };
    let f = flow! { careful => [double, (inner)] => sum => if even { double } => loop(max = 2) { careful } until big };
    let g = f.graph();
    let back: FlowGraph = serde_json::from_str(&json(&g)).expect("the graph reads back");
    assert_eq!(back, g);
    let static_back: FlowGraph =
        serde_json::from_value(serde_json::to_value(f.info().graph).unwrap_or_default())
            .expect("the static graph reads back");
    assert_eq!(&static_back, f.info().graph);
}

#[test]
fn node_ids_are_stable_and_local() {
    let a = flow! { double => if even { double => careful } => careful };
    let b = flow! { double => if even { double => careful } => careful };
    assert_eq!(a.graph(), b.graph());
    // Inserting a step into the arm changes only the ids after it in that arm.
    let c = flow! { double => if even { careful => double => careful } => careful };
    let ids = |f: &FlowGraph| f.nodes.iter().map(|n| n.id.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ids(&a.graph()),
        ["0", "1", "1/then", "1/then/0", "1/then/1", "2"]
    );
    assert_eq!(
        ids(&c.graph()),
        ["0", "1", "1/then", "1/then/0", "1/then/1", "1/then/2", "2"]
    );
}

/// The step node `id` of `g` (or of a nested graph), and its name.
fn step_name<'g>(g: &'g FlowGraph, id: &str, nested: Option<&str>) -> Option<&'g str> {
    let g = match nested {
        None => g,
        Some(parent) => {
            let fp = g.nodes.iter().find_map(|n| match &n.kind {
                NodeKind::Step {
                    name,
                    flow: Some(r),
                    ..
                } if name == parent => Some(r.fingerprint),
                _ => None,
            })?;
            g.flows.iter().find(|f| f.fingerprint == fp)?
        }
    };
    match &g.node(id)?.kind {
        NodeKind::Step { name, .. } => Some(name),
        _ => None,
    }
}

#[tokio::test]
async fn every_trace_and_event_is_on_the_graph() {
    let inner = flow! { #[flow(name = "inner")] double => careful };
    let f = flow! {
        double => [double, careful] => sum => if even { double } else { careful }
            => loop(max = 3) { double => (inner) } until big
    };
    let g = f.graph();
    let r = f.run(3).await;
    assert!(r.success);
    assert!(r.traces.len() >= 8, "{} traces", r.traces.len());
    for t in &r.traces {
        let name = step_name(&g, &t.node, t.parent.as_deref());
        assert_eq!(
            name,
            Some(t.step.as_ref()),
            "trace {} at {}",
            t.step,
            t.node
        );
    }
    let (_, _) = collect_events(f.stream(3)).await;
    let mut seen = 0;
    let mut stream = std::pin::pin!(f.stream(3));
    while let Some(e) = futures::StreamExt::next(&mut stream).await {
        if let Some(s) = e.step_event() {
            seen += 1;
            let name = step_name(&g, s.node(), s.parent());
            assert_eq!(name, Some(s.step()), "event {} at {}", s.step(), s.node());
            let json = serde_json::to_value(&e).unwrap_or_default();
            assert_eq!(json["node"], s.node());
        }
        if let Event::FlowCompleted(_) = e {
            break;
        }
    }
    assert!(seen >= 16);
}

/// A durable run, and a submitted one, give the store the flow's graph with its nested flows,
/// so that a tool with only the store can draw the run.
#[tokio::test]
async fn durable_runs_keep_their_flow_graph_in_the_store() {
    use orchflow::MemoryStore;
    use orchflow::store::CheckpointStore;
    let inner = flow! { #[flow(name = "inner")] careful => double };
    let f = flow! { #[flow(name = "outer")] careful => (inner) };
    let store = MemoryStore::default();
    assert_eq!(store.graph(&f.fingerprint()).await.unwrap(), None);
    let run = f.durable(store.clone()).run(1).await;
    assert!(run.success);
    let kept = store.graph(&f.fingerprint()).await.unwrap().expect("kept");
    assert_eq!(kept, f.graph());
    assert_eq!(kept.flows.len(), 1, "with the nested flow");

    let g = flow! { #[flow(name = "queued")] double };
    let fresh = MemoryStore::default();
    g.durable(fresh.clone()).submit(2).await.unwrap();
    assert_eq!(
        fresh.graph(&g.fingerprint()).await.unwrap(),
        Some(g.graph())
    );
}
