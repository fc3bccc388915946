//! Placeholder until the app lands in the next commit.
fn main() {}
