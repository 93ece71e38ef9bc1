//! `pastry node`: one node as a long-lived process.
//!
//! It logs joins, leaf-set changes and failures to stderr and stops cleanly on SIGINT or
//! SIGTERM (or the `quit` command) with a graceful leave. Stdin/stdout carry a line protocol,
//! so scripts and tests can drive it:
//!
//! ```text
//! stdout, unprompted                      stdin command        → stdout answer
//! ready <id> <addr>                       route <key> <text>   → routed <key>
//! metrics <addr>      (with --metrics)    leafset              → leafset <id>@<addr> ...
//! joined <id>                             table                → table <row>,<col>,<id>,<addr>,<rtt_us|-> ...
//! delivered <key> <text> at <id> hops <n> stats                → stats <name>=<value> ...
//! update <+|-> <id>@<addr>                quit                 → (leaves; left <id>)
//! left <id>
//! ```
//!
//! Keys and ids are 32 hex digits. In `<text>` control characters are escaped (`\n`, `\\`,
//! `\u{1b}` …), so a payload cannot forge a line. A failed command answers `error <message>`.
//! With `--json` every line is instead one JSON object with an `event` field (`ready`,
//! `metrics`, `joined`, `delivered`, `update`, `left`, `routed`, `leafset`, `table`, `stats`,
//! `error`). The end of stdin does not stop the node; a signal or `quit` does.
//!
//! Output never blocks the node: the event loop (which runs the upcalls) queues lines for a
//! writer thread; when stdout is not read fast enough the queue fills and lines are dropped and
//! counted (`stats`: `output_dropped`).

// The CLI drives real sockets: it reads the wall clock and runs control threads.
#![allow(clippy::disallowed_methods)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use clap::builder::RangedU64ValueParser;
use clap::Args;
use pastry::node::Node;
use pastry::runtime::{Application, Delivery, Handle, JoinError, NodeConfig, Runtime};
use pastry::{DigitBits, Duration, Id, NodeHandle, Rng};
use serde::Serialize;

use super::metrics::{self, Kind, Metric};
use super::output::Lines;
use super::{args, logger, state, text, Failure};

/// First wait before a new round of join attempts; doubles up to [`RETRY_MAX`].
const RETRY_BASE: StdDuration = StdDuration::from_secs(1);
/// Longest wait between rounds of join attempts.
const RETRY_MAX: StdDuration = StdDuration::from_secs(60);

/// Options of `pastry node`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// UDP address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// A node of the overlay to join through (repeatable); none: start a new overlay.
    #[arg(long, value_name = "ADDR")]
    bootstrap: Vec<SocketAddr>,
    /// Node id, 32 hex digits (default: random).
    #[arg(long, value_name = "HEX", value_parser = args::id)]
    id: Option<Id>,
    /// Overlay network id: frames of other networks are dropped.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    network: u32,
    /// Bits per digit of the ids: 1, 2 or 4 (the same on every node).
    #[arg(long = "b", value_name = "B", default_value = "4", value_parser = args::digit_bits)]
    b: DigitBits,
    /// Leaf-set size L (even).
    #[arg(long, value_name = "L", default_value_t = 16)]
    leaf: usize,
    /// Leaf-set probe period (a bare number is milliseconds).
    #[arg(long = "probe-ms", value_name = "TIME", default_value = "5s", value_parser = args::millis)]
    probe: StdDuration,
    /// Routing-table maintenance period (a bare number is milliseconds).
    #[arg(long = "rt-ms", value_name = "TIME", default_value = "30s", value_parser = args::millis)]
    rt: StdDuration,
    /// First join attempt's timeout (a bare number is milliseconds).
    #[arg(long = "join-timeout-ms", value_name = "TIME", default_value = "3s", value_parser = args::millis)]
    join_timeout: StdDuration,
    /// Join attempts per round (round robin over the bootstraps).
    #[arg(long = "join-attempts", value_name = "N", default_value_t = 8)]
    join_attempts: u32,
    /// Rounds of join attempts after the first fails, with exponential backoff (1 s doubling
    /// to 60 s, jittered); default: retry as long as the process runs.
    #[arg(long = "join-retries", value_name = "N")]
    join_retries: Option<u32>,
    /// The node's byte budget for buffered messages and queued datagrams (at least 256KiB;
    /// units B, K/KiB/kB, M/MiB/MB, G/GiB/GB, all binary): beyond it routes are refused and
    /// traffic passing through is dropped, so no flood grows the node's memory past it.
    #[arg(long = "max-buffer", value_name = "BYTES", default_value = "8MiB", value_parser = args::buffer_bytes)]
    max_buffer: usize,
    /// Output JSON lines instead of the text protocol.
    #[arg(long)]
    json: bool,
    /// Output lines that may wait for a slow reader of stdout; beyond, lines are dropped and
    /// counted.
    #[arg(long = "output-queue", value_name = "LINES", default_value_t = 4096, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    output_queue: usize,
    /// Serve the stats at http://ADDR/metrics in the Prometheus text format (a bare port
    /// means 127.0.0.1:PORT).
    #[arg(long, value_name = "ADDR", value_parser = metrics_addr)]
    metrics: Option<SocketAddr>,
    /// Save the leaf set and routing table here (on shutdown and periodically) and use the
    /// saved peers as bootstrap candidates on start.
    #[arg(long = "state-file", value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// How often the state file is saved.
    #[arg(long = "state-every", value_name = "TIME", default_value = "30s", value_parser = args::secs)]
    state_every: StdDuration,
    /// Host a share of the replicated store (in memory), for `pastry put` / `pastry get`.
    #[arg(long)]
    store: bool,
}

/// `--metrics`: an address, or a port on loopback.
fn metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}`: expected ADDR:PORT or a port"))
}

/// A peer as JSON.
#[derive(Debug, Serialize)]
struct PeerJson {
    id: String,
    addr: SocketAddr,
}

impl From<NodeHandle> for PeerJson {
    fn from(h: NodeHandle) -> PeerJson {
        PeerJson {
            id: h.id.to_string(),
            addr: h.addr,
        }
    }
}

/// A routing-table cell as JSON.
#[derive(Debug, Serialize)]
struct CellJson {
    row: usize,
    col: usize,
    id: String,
    addr: SocketAddr,
    /// `null` when not measured yet.
    rtt_us: Option<u32>,
}

/// One line of output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    Ready {
        id: String,
        addr: SocketAddr,
    },
    Metrics {
        addr: SocketAddr,
    },
    Joined {
        id: String,
    },
    Delivered {
        key: String,
        /// The payload as text (invalid UTF-8 replaced by U+FFFD).
        payload: String,
        at: String,
        hops: u8,
        msg_id: u64,
    },
    Update {
        joined: bool,
        id: String,
        addr: SocketAddr,
    },
    Left {
        id: String,
    },
    Routed {
        key: String,
        msg_id: u64,
    },
    Leafset {
        members: Vec<PeerJson>,
    },
    Table {
        cells: Vec<CellJson>,
    },
    Stats {
        stats: serde_json::Map<String, serde_json::Value>,
    },
    Error {
        message: String,
    },
}

impl Line {
    /// The text protocol's form of the line.
    fn human(&self) -> String {
        match self {
            Line::Ready { id, addr } => format!("ready {id} {addr}"),
            Line::Metrics { addr } => format!("metrics {addr}"),
            Line::Joined { id } => format!("joined {id}"),
            Line::Delivered {
                key,
                payload,
                at,
                hops,
                ..
            } => format!(
                "delivered {key} {} at {at} hops {hops}",
                text::escape(payload.as_bytes())
            ),
            Line::Update { joined, id, addr } => {
                format!("update {} {id}@{addr}", if *joined { '+' } else { '-' })
            }
            Line::Left { id } => format!("left {id}"),
            Line::Routed { key, .. } => format!("routed {key}"),
            Line::Leafset { members } => {
                let m: Vec<String> = members
                    .iter()
                    .map(|p| format!("{}@{}", p.id, p.addr))
                    .collect();
                format!("leafset {}", m.join(" "))
            }
            Line::Table { cells } => {
                let c: Vec<String> = cells
                    .iter()
                    .map(|c| {
                        let rtt = c.rtt_us.map_or("-".to_string(), |r| r.to_string());
                        format!("{},{},{},{},{rtt}", c.row, c.col, c.id, c.addr)
                    })
                    .collect();
                format!("table {}", c.join(" "))
            }
            Line::Stats { stats } => {
                let kv: Vec<String> = stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("stats {}", kv.join(" "))
            }
            Line::Error { message } => format!("error {}", text::escape(message.as_bytes())),
        }
    }
}

/// The node's stdout: lines queued for a writer thread, as text or JSON.
#[derive(Debug)]
struct Out {
    lines: Lines,
    json: bool,
}

impl Out {
    /// Queues `line`; never blocks (drops and counts when stdout is not read fast enough).
    fn say(&self, line: &Line) {
        let s = if self.json {
            // A line of strings and integers always serializes.
            serde_json::to_string(line).unwrap_or_default()
        } else {
            line.human()
        };
        self.lines.send(s);
    }
}

/// The application of a stand-alone node: reports deliveries and leaf-set changes, and with
/// `--store` passes the store's messages to its share of the store.
struct NodeApp {
    out: Arc<Out>,
    store: Option<pastry::store::StoreApp>,
}

impl Application for NodeApp {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        if let Some(s) = self.store.as_mut() {
            if pastry::store::is_store_message(&msg.payload) {
                return s.deliver(node, msg);
            }
        }
        self.out.say(&Line::Delivered {
            key: msg.key.to_string(),
            payload: String::from_utf8_lossy(&msg.payload).into_owned(),
            at: node.id().to_string(),
            hops: msg.hops,
            msg_id: msg.msg_id,
        });
    }
    fn forward(&mut self, ctx: &mut pastry::node::ForwardCtx<'_>) -> pastry::node::ForwardAction {
        match self.store.as_mut() {
            Some(s) => s.forward(ctx),
            None => pastry::node::ForwardAction::Forward,
        }
    }
    fn joined(&mut self, node: &Node) {
        if let Some(s) = self.store.as_mut() {
            s.joined(node);
        }
    }
    fn update(&mut self, node: &Node, peer: NodeHandle, joined: bool) {
        if let Some(s) = self.store.as_mut() {
            s.update(node, peer, joined);
        }
        let sign = if joined { '+' } else { '-' };
        log::info!("node {}: leaf set {sign} {peer}", short(node.id()));
        self.out.say(&Line::Update {
            joined,
            id: peer.id.to_string(),
            addr: peer.addr,
        });
    }
}

fn short(id: Id) -> String {
    id.to_hex()[..8].to_string()
}

fn config(a: &NodeArgs) -> NodeConfig {
    let mut cfg = NodeConfig::new(a.listen).with_network(a.network);
    if let Some(id) = a.id {
        cfg = cfg.with_id(id);
    }
    let d = |t: StdDuration| Duration(t.as_micros() as u64);
    cfg.node.b = a.b;
    cfg.node.leaf_set_size = a.leaf;
    cfg.node.leaf_probe_period = d(a.probe);
    cfg.node.rt_maintenance_period = d(a.rt);
    cfg.node.join_timeout = d(a.join_timeout);
    cfg.node.join_attempts = a.join_attempts;
    cfg.node.max_buffer_bytes = a.max_buffer;
    cfg
}

/// Why the main thread wakes.
#[derive(Debug)]
enum Wake {
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// The `quit` command.
    Quit,
    /// The join failed for good.
    JoinFailed(String),
}

/// Runs `pastry node`.
pub(crate) fn main(a: &NodeArgs) -> Result<(), Failure> {
    logger::init(log::LevelFilter::Info);
    let out = Arc::new(Out {
        lines: Lines::spawn("pastry-stdout", a.output_queue, std::io::stdout),
        json: a.json,
    });
    let saved = a.state_file.as_deref().and_then(state::load);
    let rt = Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (store, store_handle) = match a.store {
        true => {
            let (app, h) = pastry::store::StoreApp::new(pastry::store::StoreConfig::default());
            (Some(app), Some(h))
        }
        false => (None, None),
    };
    let app = NodeApp {
        out: out.clone(),
        store,
    };
    let h = rt.add_node(config(a), app).map_err(|e| e.to_string())?;
    if let Some(s) = store_handle {
        s.bind(h.clone());
    }
    out.say(&Line::Ready {
        id: h.id().to_string(),
        addr: h.addr(),
    });
    log::info!("node {}: listening on {}", short(h.id()), h.addr());
    let (wake_tx, wake_rx) = mpsc::channel();
    watch_signals(wake_tx.clone())?;
    if let Some(addr) = a.metrics {
        let (h2, out2) = (h.clone(), out.clone());
        let bound = metrics::serve(addr, move || collect(&h2, &out2))?;
        log::info!("metrics at http://{bound}/metrics");
        out.say(&Line::Metrics { addr: bound });
    }
    let mut bootstraps = a.bootstrap.clone();
    for c in saved.map(|s| s.candidates(h.addr())).unwrap_or_default() {
        if !bootstraps.contains(&c) {
            bootstraps.push(c);
        }
    }
    if bootstraps.is_empty() {
        h.start_alone().map_err(|e| e.to_string())?;
    } else {
        log::info!("joining through {}", list(&bootstraps));
        h.start_join(&bootstraps).map_err(|e| e.to_string())?;
    }
    let ctl = Control {
        h: h.clone(),
        out: out.clone(),
        wake: wake_tx,
        bootstraps,
        retries: a.join_retries,
    };
    spawn("pastry-node-control", move || ctl.run())?;
    let saver = match &a.state_file {
        Some(p) => Some(periodic_save(&h, p.clone(), a.state_every)?),
        None => None,
    };
    let why = wake_rx.recv().map_err(|e| e.to_string())?;
    let reason = match why {
        Wake::JoinFailed(e) => return Err(e),
        Wake::Signal(s) => format!("signal {s}"),
        Wake::Quit => "quit".into(),
    };
    drop(saver); // stops the periodic saves
    if let Some(p) = &a.state_file {
        if let Err(e) = state::save(&h, p) {
            log::warn!("{e}");
        }
    }
    log::info!("node {}: leaving ({reason})", short(h.id()));
    h.leave(StdDuration::from_secs(5))
        .map_err(|e| e.to_string())?;
    rt.shutdown();
    out.say(&Line::Left {
        id: h.id().to_string(),
    });
    if !out.lines.flush(StdDuration::from_secs(2)) {
        log::warn!("stdout is not being read: the last lines are lost");
    }
    Ok(())
}

fn list(addrs: &[SocketAddr]) -> String {
    let v: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    v.join(", ")
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    // Detached: the thread may sit in a blocking read until the process exits.
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("cannot start a thread: {e}"))
}

/// SIGINT and SIGTERM wake the main thread (signal-hook's self-pipe, read by a thread).
fn watch_signals(wake: Sender<Wake>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    spawn("pastry-signals", move || {
        if let Some(sig) = signals.forever().next() {
            let _ = wake.send(Wake::Signal(sig));
        }
    })
}

/// Saves the state file every `every` until the returned sender is dropped.
fn periodic_save(h: &Handle, path: PathBuf, every: StdDuration) -> Result<Sender<()>, String> {
    let (stop, stopped): (Sender<()>, Receiver<()>) = mpsc::channel();
    let h = h.clone();
    spawn("pastry-state", move || loop {
        match stopped.recv_timeout(every.max(StdDuration::from_millis(100))) {
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = state::save(&h, &path) {
                    log::warn!("{e}");
                }
            }
            _ => return,
        }
    })?;
    Ok(stop)
}

/// The control thread: sees the join through (with retries), then serves stdin commands.
struct Control {
    h: Handle,
    out: Arc<Out>,
    wake: Sender<Wake>,
    bootstraps: Vec<SocketAddr>,
    retries: Option<u32>,
}

impl Control {
    fn run(self) {
        if let Err(e) = self.wait_joined() {
            log::error!("node {}: {e}", short(self.h.id()));
            self.out.say(&Line::Error {
                message: e.to_string(),
            });
            let _ = self.wake.send(Wake::JoinFailed(e.to_string()));
            return;
        }
        log::info!("node {}: joined (active)", short(self.h.id()));
        self.out.say(&Line::Joined {
            id: self.h.id().to_string(),
        });
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if line.trim().is_empty() {
                continue;
            }
            match command(&self.h, &self.out, line.trim()) {
                Ok(Some(answer)) => self.out.say(&answer),
                Ok(None) => {
                    let _ = self.wake.send(Wake::Quit);
                    return;
                }
                Err(e) => self.out.say(&Line::Error { message: e }),
            }
        }
    }

    /// Waits for the join; when a round of attempts fails, starts another after a backoff
    /// (exponential, jittered) while retries are left.
    fn wait_joined(&self) -> Result<(), JoinError> {
        let mut rng = Rng::new(seed());
        let mut round = 0u32;
        loop {
            match self.h.wait_joined(StdDuration::from_secs(3600)) {
                Ok(()) => return Ok(()),
                Err(JoinError::Timeout(_)) => {}
                Err(e @ JoinError::NoBootstrapAnswered { .. }) => {
                    if self.retries.is_some_and(|r| round >= r) {
                        return Err(e);
                    }
                    let wait = backoff(round, rng.next_u64());
                    log::warn!(
                        "node {}: {e}; trying again in {:.1} s",
                        short(self.h.id()),
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    round += 1;
                    self.h.start_join(&self.bootstraps)?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A seed for the retry jitter from the OS.
fn seed() -> u64 {
    let mut b = [0u8; 8];
    // Without OS randomness the jitter is merely the same in every process.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// The wait before round `round + 1` of join attempts: `RETRY_BASE · 2^round`, capped at
/// [`RETRY_MAX`], times a factor in [0.5, 1) drawn from `r` (so restarted nodes spread out).
fn backoff(round: u32, r: u64) -> StdDuration {
    let full = RETRY_BASE
        .saturating_mul(1u32 << round.min(16))
        .min(RETRY_MAX);
    let f = 0.5 + (r >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    full.mul_f64(f)
}

/// Runs one stdin command: `Ok(None)` means quit.
fn command(h: &Handle, out: &Out, line: &str) -> Result<Option<Line>, String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let answer = match cmd {
        "route" => {
            let (key, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let key: Id = key.parse().map_err(|e| format!("key {key}: {e}"))?;
            let msg_id = h
                .route(key, text.as_bytes().to_vec())
                .map_err(|e| e.to_string())?;
            Line::Routed {
                key: key.to_string(),
                msg_id,
            }
        }
        "leafset" => {
            let members = h.neighbor_set(64).map_err(|e| e.to_string())?;
            Line::Leafset {
                members: members.into_iter().map(PeerJson::from).collect(),
            }
        }
        "table" => Line::Table { cells: table(h)? },
        "stats" => {
            let stats = collect(h, out)?
                .into_iter()
                .map(|m| (m.name.to_string(), m.value.into()))
                .collect();
            Line::Stats { stats }
        }
        "quit" => return Ok(None),
        other => return Err(format!("unknown command `{other}`")),
    };
    Ok(Some(answer))
}

/// The routing table's cells.
fn table(h: &Handle) -> Result<Vec<CellJson>, String> {
    h.call(|n| {
        let rt = n.routing_table();
        rt.entries()
            .map(|e| {
                let (row, col) = rt.cell_of(e.node.id).unwrap_or((0, 0));
                CellJson {
                    row,
                    col,
                    id: e.node.id.to_string(),
                    addr: e.node.addr,
                    rtt_us: (e.rtt_us != pastry::routing_table::UNMEASURED).then_some(e.rtt_us),
                }
            })
            .collect()
    })
    .map_err(|e| e.to_string())
}

/// The node's figures, for `stats` and `/metrics`.
fn collect(h: &Handle, out: &Out) -> Result<Vec<Metric>, String> {
    use Kind::{Counter, Gauge};
    let s = h.stats().map_err(|e| e.to_string())?;
    let (leaf, entries) = h
        .call(|n| (n.leaf_set().len(), n.routing_table().entries().count()))
        .map_err(|e| e.to_string())?;
    let n = &s.node;
    let m = |name, help, kind, value| Metric {
        name,
        help,
        kind,
        value,
    };
    Ok(vec![
        m(
            "datagrams_in",
            "Datagrams received.",
            Counter,
            n.datagrams_in,
        ),
        m("datagrams_out", "Datagrams sent.", Counter, n.datagrams_out),
        m("bytes_out", "Bytes sent.", Counter, n.bytes_out),
        m(
            "bad_frames",
            "Malformed frames dropped.",
            Counter,
            n.bad_frames,
        ),
        m(
            "foreign_frames",
            "Frames of other networks dropped.",
            Counter,
            n.foreign_frames,
        ),
        m(
            "delivered",
            "Messages delivered at this node.",
            Counter,
            n.delivered,
        ),
        m(
            "forwarded",
            "Messages forwarded by this node.",
            Counter,
            n.forwarded,
        ),
        m(
            "retransmits",
            "Hop retransmissions.",
            Counter,
            n.retransmits,
        ),
        m(
            "reroutes",
            "Messages rerouted around a suspected hop.",
            Counter,
            n.reroutes,
        ),
        m(
            "duplicates",
            "Duplicate messages suppressed.",
            Counter,
            n.duplicates,
        ),
        m(
            "failures_detected",
            "Peers declared failed.",
            Counter,
            n.failures_detected,
        ),
        m(
            "overload_drops",
            "Messages dropped by overload control.",
            Counter,
            n.overload_drops,
        ),
        m(
            "outbox_drops",
            "Datagrams dropped from a full outbox.",
            Counter,
            n.outbox_drops,
        ),
        m(
            "amplification_drops",
            "Replies withheld from unvalidated addresses (3x anti-amplification rule).",
            Counter,
            n.amplification_drops,
        ),
        m(
            "rate_limited",
            "Requests dropped by per-source rate limits.",
            Counter,
            n.rate_limited,
        ),
        m(
            "validations",
            "Address validations started.",
            Counter,
            n.validations,
        ),
        m(
            "validation_drops",
            "Requests dropped waiting for an address validation.",
            Counter,
            n.validation_drops,
        ),
        m(
            "probe_drops",
            "Probes not sent (budget, address busy or silent).",
            Counter,
            n.probe_drops,
        ),
        m(
            "limit_drops",
            "Routed messages dropped for payload or hop limits.",
            Counter,
            n.limit_drops,
        ),
        m(
            "unsolicited",
            "Replies that answered no request of ours.",
            Counter,
            n.unsolicited,
        ),
        m(
            "addr_conflicts",
            "Datagrams claiming a known id from another address.",
            Counter,
            n.addr_conflicts,
        ),
        m(
            "unproven_reports",
            "Reports about a node not from its own address.",
            Counter,
            n.unproven_reports,
        ),
        m(
            "upcall_panics",
            "Application upcalls that panicked.",
            Counter,
            s.upcall_panics,
        ),
        m(
            "send_errors",
            "Datagrams the OS refused to send.",
            Counter,
            s.send_errors,
        ),
        m(
            "send_drops",
            "Datagrams dropped while the socket was full.",
            Counter,
            s.send_drops,
        ),
        m(
            "recv_errors",
            "Socket receive errors.",
            Counter,
            s.recv_errors,
        ),
        m(
            "routes_refused",
            "Routes the node refused.",
            Counter,
            s.routes_refused,
        ),
        m(
            "output_dropped",
            "Output lines dropped because stdout was not read.",
            Counter,
            out.lines.dropped(),
        ),
        m(
            "log_dropped",
            "Log lines dropped because stderr was not read.",
            Counter,
            logger::dropped(),
        ),
        m(
            "heap_bytes",
            "Approximate heap bytes held by the node.",
            Gauge,
            s.heap_bytes as u64,
        ),
        m(
            "leaf_set_size",
            "Members of the leaf set.",
            Gauge,
            leaf as u64,
        ),
        m(
            "routing_table_entries",
            "Filled routing-table cells.",
            Gauge,
            entries as u64,
        ),
        m(
            "active",
            "1 when the node has joined and may deliver.",
            Gauge,
            u64::from(h.is_active()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        let lo = backoff(0, 0);
        let hi = backoff(0, u64::MAX);
        assert!(
            lo >= StdDuration::from_millis(500) && hi <= RETRY_BASE,
            "{lo:?} {hi:?}"
        );
        assert!(backoff(3, 0) == StdDuration::from_secs(4));
        assert!(backoff(30, u64::MAX) <= RETRY_MAX && backoff(30, 0) >= RETRY_MAX / 2);
    }

    #[test]
    fn lines_escape_payloads() {
        let l = Line::Delivered {
            key: "k".into(),
            payload: "a\ndelivered forged".into(),
            at: "me".into(),
            hops: 1,
            msg_id: 2,
        };
        assert_eq!(l.human(), "delivered k a\\ndelivered forged at me hops 1");
        let j = serde_json::to_string(&l).unwrap();
        assert_eq!(
            j,
            r#"{"event":"delivered","key":"k","payload":"a\ndelivered forged","at":"me","hops":1,"msg_id":2}"#
        );
        assert_eq!(metrics_addr("9100").unwrap().to_string(), "127.0.0.1:9100");
        assert!(metrics_addr("[::1]:9").is_ok() && metrics_addr("x").is_err());
    }
}
