use orchflow::step;

#[step]
async fn plan<T: Clone>(x: T) -> T {
    x
}

fn main() {}
