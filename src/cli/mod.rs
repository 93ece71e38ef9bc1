//! Subcommands of the `pastry` binary and their shared argument parsing.

pub(crate) mod args;
pub(crate) mod node;
pub(crate) mod ring;
pub(crate) mod sim;

pub(crate) const USAGE: &str = "\
usage: pastry [COMMAND] [OPTIONS]

commands:
  ring   (default) a local overlay on loopback: joins N nodes, routes M messages to random keys,
         checks every delivery against the numerically closest live node, prints a report
         options: --nodes N (64) --messages M (10000) --json --window W (messages in flight, 64)
                  --threads T (runtime threads, 1) --seed S
  node   one node as a long-lived process (stops cleanly on SIGINT/SIGTERM with a graceful leave)
         options: --listen ADDR --bootstrap ADDR (repeatable) --id HEX --network ID --b B
                  --leaf L --probe-ms MS --rt-ms MS --join-timeout-ms MS --join-attempts N
         stdin: route <hex key> <text> | leafset | table | stats | quit
  sim    a discrete-event simulation (virtual clock, no sockets)
         options: --nodes N (1000) --lookups M (10000) --b 4 --leaf 16 --loss P --dup P
                  --jitter-ms T --churn-session SECS --fail F --topology sphere|plane
                  --join-rate R (joins per virtual second) --seed S --json
  help   this text
";
