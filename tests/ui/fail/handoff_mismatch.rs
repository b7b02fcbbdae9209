use orchflow::{flow, step};

struct Plan;

#[step]
async fn plan(topic: String) -> String {
    topic
}

#[step]
async fn docs(plan: &Plan) -> String {
    let _ = plan;
    String::new()
}

fn main() {
    let _f = flow! { plan => docs };
}
