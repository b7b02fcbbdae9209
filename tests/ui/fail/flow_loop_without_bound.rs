use orchflow::{flow, step};

#[step]
async fn again(x: u32) -> u32 { x + 1 }

fn done(x: &u32) -> bool { *x > 3 }

fn main() {
    let _f = flow! { loop { again } until done };
}
