//! Runs both generated libraries and checks they compute the same sum.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = with_orchflow::run_all().await;
    let b = hand_written::run_all().await;
    println!("with_orchflow={a} hand_written={b}");
    if a != b {
        eprintln!("the two crates disagree");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn both_give_the_same_number() {
        let a = with_orchflow::run_all().await;
        let b = hand_written::run_all().await;
        assert_eq!(a, b);
        assert!(a > 0);
    }
}
