//! Legal: one step used twice (also by another path to it), `loop(max = CONST)`, and one human
//! question used twice.

use orchflow::human::{self, Answer};
use orchflow::{flow, step};

mod steps {
    use orchflow::step;

    #[step(name = "double")]
    pub async fn double(x: u32) -> u32 {
        x * 2
    }
}
use steps::double;

#[step]
async fn ask_again(a: Answer<u32>) -> u32 {
    a.value
}

const MAX_STEPS: u32 = 3;
const LIMITS: Limits = Limits { rounds: 2 };

struct Limits {
    rounds: u32,
}

mod limits {
    pub const ROUNDS: u32 = 2;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let f = flow! { double => double => steps::double };
    assert_eq!(f.run(1).await.output, Some(8));

    let g = flow! { loop(max = MAX_STEPS) { double } => loop(max = limits::ROUNDS) { double } };
    assert_eq!(g.run(1).await.output, Some(32));
    let _ = LIMITS.rounds;

    let review = human::ask("review", |x: &u32| format!("ok {x}?"));
    let h = flow! { (review.clone()) => ask_again => (review) => ask_again }
        .with_input(human::callback(|_| "yes".to_string()));
    assert_eq!(h.run(5).await.output, Some(5));
}
