use orchflow::{flow, step};

struct Token;

#[step]
async fn make(_x: u32) -> Token { Token }
#[step]
async fn take(_t: Token) -> u32 { 1 }

fn main() {
    let _f = flow! { make => take };
}
