//! `pastry node --state-file`: the leaf set and routing table saved as JSON, so a restarted
//! node can rejoin through the peers it knew (a warm restart) when its bootstraps are down.
//!
//! The file is written whole to `PATH.tmp` and renamed over `PATH`, so a crash while saving
//! leaves the previous file. A missing or unreadable file means a clean start, said in a log
//! line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pastry::runtime::Handle;
use pastry::NodeHandle;
use serde::{Deserialize, Serialize};

/// The version of the file's layout.
const VERSION: u32 = 1;
/// Saved peers used as bootstrap candidates at most.
pub(crate) const MAX_CANDIDATES: usize = 32;

/// One peer of the file.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Peer {
    /// Node id, 32 hex digits.
    id: String,
    /// UDP address.
    addr: SocketAddr,
}

impl From<NodeHandle> for Peer {
    fn from(h: NodeHandle) -> Peer {
        Peer {
            id: h.id.to_string(),
            addr: h.addr,
        }
    }
}

/// What the file holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct State {
    /// [`VERSION`].
    version: u32,
    /// The saving node's id.
    id: String,
    /// Its leaf set, closest first on each side (clockwise side first).
    leaf_set: Vec<Peer>,
    /// Its routing table's entries, row by row.
    routing_table: Vec<Peer>,
}

impl State {
    /// The peers to try as bootstraps, leaf set first, without duplicates and without `me`.
    pub(crate) fn candidates(&self, me: SocketAddr) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for p in self.leaf_set.iter().chain(&self.routing_table) {
            if p.addr != me && !out.contains(&p.addr) && out.len() < MAX_CANDIDATES {
                out.push(p.addr);
            }
        }
        out
    }
}

/// Reads the state file; `None` (with a log line saying why) when it is missing or corrupt.
pub(crate) fn load(path: &Path) -> Option<State> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!("no state file at {}: clean start", path.display());
            return None;
        }
        Err(e) => {
            log::warn!(
                "cannot read state file {}: {e}; clean start",
                path.display()
            );
            return None;
        }
    };
    match serde_json::from_str::<State>(&text) {
        Ok(s) if s.version == VERSION => {
            log::info!(
                "state file {}: {} leaf-set and {} routing-table peers saved by node {}",
                path.display(),
                s.leaf_set.len(),
                s.routing_table.len(),
                s.id
            );
            Some(s)
        }
        Ok(s) => {
            log::warn!(
                "state file {} has version {} (expected {VERSION}): ignored, clean start",
                path.display(),
                s.version
            );
            None
        }
        Err(e) => {
            log::warn!(
                "state file {} is corrupt ({e}): ignored, clean start",
                path.display()
            );
            None
        }
    }
}

/// The node's current leaf set and routing table.
fn snapshot(h: &Handle) -> Result<State, String> {
    let (leaf_set, routing_table) = h
        .call(|n| {
            let l = n.leaf_set();
            let leaf: Vec<Peer> = l
                .cw_side()
                .iter()
                .chain(l.ccw_side())
                .map(|&p| p.into())
                .collect();
            let table: Vec<Peer> = n.routing_table().entries().map(|e| e.node.into()).collect();
            (leaf, table)
        })
        .map_err(|e| e.to_string())?;
    Ok(State {
        version: VERSION,
        id: h.id().to_string(),
        leaf_set,
        routing_table,
    })
}

/// Saves the node's tables to `path` (through `PATH.tmp` and a rename).
pub(crate) fn save(h: &Handle, path: &Path) -> Result<(), String> {
    let state = snapshot(h)?;
    if state.leaf_set.is_empty() && state.routing_table.is_empty() {
        // Nothing worth keeping (alone, or not joined yet): keep the previous file.
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot save state to {}: {e}", path.display()))?;
    log::debug!(
        "saved {} leaf-set and {} routing-table peers to {}",
        state.leaf_set.len(),
        state.routing_table.len(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> Peer {
        Peer {
            id: format!("{i:032x}"),
            addr: SocketAddr::from(([127, 0, 0, 1], 4000 + u16::from(i))),
        }
    }

    #[test]
    fn candidates_skip_me_and_duplicates() {
        let s = State {
            version: VERSION,
            id: format!("{:032x}", 9),
            leaf_set: vec![peer(1), peer(2)],
            routing_table: vec![peer(2), peer(3), peer(9)],
        };
        let me = peer(9).addr;
        let c = s.candidates(me);
        assert_eq!(c, vec![peer(1).addr, peer(2).addr, peer(3).addr]);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), s);
    }

    #[test]
    fn missing_or_corrupt_files_mean_a_clean_start() {
        let dir = std::env::temp_dir().join(format!("pastry-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir.join("missing.json")).is_none());
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"version\":1,\"id\":").unwrap();
        assert!(load(&bad).is_none());
        std::fs::write(
            &bad,
            "{\"version\":99,\"id\":\"\",\"leaf_set\":[],\"routing_table\":[]}",
        )
        .unwrap();
        assert!(load(&bad).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
