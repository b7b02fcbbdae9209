use orchflow::step;

struct Planner;

impl Planner {
    #[step]
    async fn plan(&self, x: u32) -> u32 {
        x
    }
}

fn main() {}
