//! The `pastry` command: a local overlay on loopback with a report (the default), one long-lived
//! node, or a simulation.
//!
//! ```text
//! pastry                      same as `pastry ring`
//! pastry ring [options]       a local overlay on loopback; routes messages; checks each delivery
//! pastry node [options]       one node as a long-lived process
//! pastry sim [options]        a discrete-event simulation of a large overlay
//! pastry help                 this text
//! ```

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) if !c.starts_with('-') => (c.as_str(), r.to_vec()),
        _ => ("ring", args.clone()),
    };
    let result = match cmd {
        "ring" => cli::ring::main(&rest),
        "node" => cli::node::main(&rest),
        "sim" => cli::sim::main(&rest),
        "help" | "--help" | "-h" => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{}", cli::USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pastry: {e}");
            ExitCode::from(2)
        }
    }
}
