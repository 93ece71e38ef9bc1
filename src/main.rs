//! The `pastry` command.

fn main() {
    println!("pastry {}", env!("CARGO_PKG_VERSION"));
}
