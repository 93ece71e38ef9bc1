//! The command's logger: `log` records of the library and the command, written to stderr by a
//! thread of their own (see [`Lines`]), so an event loop that logs never waits for a slow
//! reader of stderr. The level comes from `PASTRY_LOG` or `RUST_LOG` (`error`, `warn`,
//! `info`, `debug`, `trace` or `off`; the default is the subcommand's: `info` for `node`, `warn` for
//! the others, which run many nodes).

// The command reads its environment (the log level), unlike the core.
#![allow(clippy::disallowed_methods)]

use std::sync::OnceLock;
use std::time::Duration;

use log::{LevelFilter, Log, Metadata, Record};

use super::output::Lines;

/// Log lines waiting for stderr before new ones are dropped.
const QUEUE: usize = 1024;

#[derive(Debug)]
struct StderrLogger {
    lines: Lines,
}

static LOGGER: OnceLock<StderrLogger> = OnceLock::new();

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let line = format!("{:<5} {}: {}", r.level(), r.target(), r.args());
            self.lines.send(line);
        }
    }
    fn flush(&self) {
        self.lines.flush(Duration::from_secs(1));
    }
}

/// The level asked for in the environment, else `default`.
fn level_from_env(default: LevelFilter) -> LevelFilter {
    let var = std::env::var("PASTRY_LOG").or_else(|_| std::env::var("RUST_LOG"));
    var.ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Installs the logger (once; later calls do nothing) at the level of the environment, else
/// `default`.
pub(crate) fn init(default: LevelFilter) {
    let logger = LOGGER.get_or_init(|| StderrLogger {
        lines: Lines::spawn("pastry-log", QUEUE, std::io::stderr),
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level_from_env(default));
    }
}

/// Log lines dropped because stderr was not read fast enough.
pub(crate) fn dropped() -> u64 {
    LOGGER.get().map_or(0, |l| l.lines.dropped())
}

/// Writes the queued log lines (waits at most a second).
pub(crate) fn flush() {
    if let Some(l) = LOGGER.get() {
        l.lines.flush(Duration::from_secs(1));
    }
}
