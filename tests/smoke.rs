use orchflow::{StepContext, flow, step};

#[derive(Debug, Clone, PartialEq)]
struct Plan {
    topic: String,
}

#[derive(Default)]
struct Brief {
    notes: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("planning failed")]
struct PlanError;

#[step(retry = 2)]
async fn plan(topic: String, ctx: &StepContext<Brief>) -> Result<Plan, PlanError> {
    ctx.state().notes.lock().unwrap().push("planned".into());
    Ok(Plan { topic })
}

#[step]
async fn docs(plan: &Plan) -> String {
    format!("docs about {}", plan.topic)
}

#[step]
async fn market(plan: &Plan) -> String {
    format!("market for {}", plan.topic)
}

#[step]
fn synthesize(parts: (String, String)) -> String {
    format!("{} + {}", parts.0, parts.1)
}

fn short(s: &String) -> bool {
    s.len() < 10
}

#[step]
async fn publish(s: String) -> String {
    format!("published: {s}")
}

#[step]
async fn revise(s: String) -> String {
    format!("revised: {s}")
}

#[tokio::test]
async fn launch() {
    let launch = flow! { plan => [docs, market] => synthesize => if short { publish } else { revise } };
    let r = launch.run("Orchflow".to_string()).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.output.as_deref(), Some("revised: docs about Orchflow + market for Orchflow"));
    assert_eq!(r.traces.len(), 5);
}
