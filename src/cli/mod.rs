//! Subcommands of the `pastry` binary and their command line (clap, derive).

pub(crate) mod amplification;
pub(crate) mod args;
pub(crate) mod figures;
pub(crate) mod logger;
pub(crate) mod metrics;
pub(crate) mod node;
pub(crate) mod output;
pub(crate) mod proximity;
pub(crate) mod ring;
pub(crate) mod sim;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod sweep;
pub(crate) mod text;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An embeddable Pastry peer-to-peer overlay: a local overlay on loopback (the default), one
/// long-lived node, or a discrete-event simulation.
#[derive(Debug, Parser)]
#[command(name = "pastry", version, propagate_version = true)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `ring` when no command is given.
    #[command(flatten)]
    ring: ring::RingArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (default) A local overlay on loopback: joins N nodes, routes M messages to random keys,
    /// checks every delivery against the numerically closest live node, prints a report.
    Ring(ring::RingArgs),
    /// One node as a long-lived process, driven by a line protocol on stdin/stdout; stops
    /// cleanly on SIGINT/SIGTERM with a graceful leave.
    Node(node::NodeArgs),
    /// A discrete-event simulation of a large overlay (virtual clock, no sockets).
    Sim(sim::SimArgs),
    /// The churn sweep: simulations at several median session times, crash-only and half
    /// graceful, as a table (or JSON lines) and an SVG plot.
    Sweep(sweep::SweepArgs),
    /// The amplification table: for every kind of forged, reflected or flooding datagram, what
    /// a simulated 8-node cluster sends out of itself per byte and datagram the attacker sent.
    Amplification(amplification::AmplificationArgs),
    /// Proximity against N: delay stretch and routing-table quality, plane and sphere, random
    /// bootstraps; a table (or JSON lines) and an SVG plot.
    Proximity(proximity::ProximityArgs),
    /// Stores a file in the replicated store of an overlay of `pastry node --store` nodes;
    /// prints its key.
    Put(store::PutArgs),
    /// Fetches an object from the replicated store by key, verified; writes it to stdout.
    Get(store::GetArgs),
}

/// A failure of a subcommand after its arguments were accepted (exit code 1).
pub(crate) type Failure = String;

/// Writes `text` to stdout. A reader that went away (`pastry sim | head`) ends the output
/// quietly instead of panicking as `print!` does.
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Parses the command line and runs the subcommand. Exit codes: 0 success, 1 a failure of the
/// run, 2 a usage error (clap's convention).
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Ring(a)) => ring::main(&a),
        Some(Command::Node(a)) => node::main(&a),
        Some(Command::Sim(a)) => sim::main(&a),
        Some(Command::Sweep(a)) => sweep::main(&a),
        Some(Command::Amplification(a)) => amplification::main(&a),
        Some(Command::Proximity(a)) => proximity::main(&a),
        Some(Command::Put(a)) => store::put(&a),
        Some(Command::Get(a)) => store::get(&a),
        None => ring::main(&cli.ring),
    };
    logger::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pastry: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_options_mean_ring() {
        let c = Cli::try_parse_from(["pastry", "--nodes", "8"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.ring.nodes, 8);
        let c = Cli::try_parse_from(["pastry", "sim", "--churn-session", "1.4m"]).unwrap();
        let Some(Command::Sim(s)) = c.command else {
            panic!("sim expected")
        };
        assert_eq!(s.churn_session, Some(std::time::Duration::from_secs(84)));
    }
}
