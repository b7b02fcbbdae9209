use orchflow::{flow, step};

struct Big;

#[step]
async fn make(_x: u32) -> Big { Big }
#[step]
fn measure(_b: &Big) -> u32 { 1 }

fn main() {
    let _f = flow! { make => measure };
}
