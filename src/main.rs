//! The `pastry` command: a local overlay on loopback with a report (the default), one long-lived
//! node, or a simulation. `pastry --help` and `pastry help COMMAND` describe every option.
//!
//! ```text
//! pastry                      same as `pastry ring`
//! pastry ring [options]       a local overlay on loopback; routes messages; checks each delivery
//! pastry node [options]       one node as a long-lived process
//! pastry sim [options]        a discrete-event simulation of a large overlay
//! pastry help [COMMAND]       help
//! ```

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
