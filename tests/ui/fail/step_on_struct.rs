use orchflow::step;

#[step]
struct Plan;

fn main() {}
