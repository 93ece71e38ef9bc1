//! `pastry put FILE` / `pastry get KEY`: a short-lived node joins the overlay through a
//! `pastry node --store` node, stores or fetches one object through the replicated store, and
//! leaves gracefully. The node is a full member while it runs (it may hold copies for a moment;
//! the digest exchange moves them on when it leaves).

// The CLI drives real sockets: it reads the wall clock.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use clap::Args;
use pastry::store::{StoreApp, StoreConfig, StoreHandle};
use pastry::{Handle, Id, NodeConfig, Runtime};

use super::{args, Failure};

/// Where the client node joins.
#[derive(Debug, Args)]
pub(crate) struct Join {
    /// A node of the overlay to join through (repeatable).
    #[arg(long, value_name = "ADDR", required = true)]
    bootstrap: Vec<SocketAddr>,
    /// UDP address of the client's own node.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Overlay network id.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    network: u32,
    /// How long to wait for the join and for the operation (a bare number is milliseconds).
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = args::millis)]
    timeout: StdDuration,
}

/// Options of `pastry put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The file to store (at most 64 MiB).
    file: PathBuf,
    #[command(flatten)]
    join: Join,
}

/// Options of `pastry get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The object's key, 32 hex digits.
    #[arg(value_parser = args::id)]
    key: Id,
    /// Write the object here instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    join: Join,
}

fn client(j: &Join) -> Result<(Runtime, Handle, StoreHandle), Failure> {
    let rt = Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (app, store) = StoreApp::new(StoreConfig::default());
    let cfg = NodeConfig::new(j.listen).with_network(j.network);
    let h = rt.add_node(cfg, app).map_err(|e| e.to_string())?;
    store.bind(h.clone());
    h.join(&j.bootstrap, j.timeout)
        .map_err(|e| format!("cannot join: {e}"))?;
    Ok((rt, h, store))
}

fn done(rt: Runtime, h: &Handle) {
    let _ = h.leave(StdDuration::from_secs(5));
    rt.shutdown();
}

/// Runs `pastry put`.
pub(crate) fn put(a: &PutArgs) -> Result<(), Failure> {
    let value =
        std::fs::read(&a.file).map_err(|e| format!("cannot read {}: {e}", a.file.display()))?;
    let (rt, h, store) = client(&a.join)?;
    let r = store.put(value, a.join.timeout);
    done(rt, &h);
    let key = r.map_err(|e| format!("put failed: {e}"))?;
    super::out(&format!("{key}\n"));
    Ok(())
}

/// Runs `pastry get`.
pub(crate) fn get(a: &GetArgs) -> Result<(), Failure> {
    let (rt, h, store) = client(&a.join)?;
    let r = store.get(a.key, a.join.timeout);
    done(rt, &h);
    let value = r.map_err(|e| format!("get failed: {e}"))?;
    match &a.out {
        Some(p) => std::fs::write(p, &value).map_err(|e| format!("cannot write: {e}")),
        None => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&value).and_then(|()| o.flush());
            Ok(())
        }
    }
}
