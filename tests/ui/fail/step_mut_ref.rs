use orchflow::step;

#[step]
async fn plan(x: &mut Vec<u32>) -> usize {
    x.push(1);
    x.len()
}

fn main() {}
