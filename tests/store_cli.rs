//! `pastry put FILE` / `pastry get KEY` against running `pastry node --store` processes on
//! loopback. Bounded: every wait has a timeout and the nodes are killed at the end.
#![allow(clippy::disallowed_methods)] // processes, pipes and a reader thread

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pastry");

/// A `pastry node --store`; killed on drop.
struct NodeProc {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl NodeProc {
    fn spawn(bootstrap: Option<&str>) -> NodeProc {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "node",
            "--store",
            "--listen",
            "127.0.0.1:0",
            "--probe-ms",
            "500",
        ]);
        if let Some(b) = bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut p = NodeProc {
            child,
            addr: String::new(),
            lines,
        };
        let ready = p.expect("ready ");
        p.addr = ready.split(' ').nth(2).unwrap().to_string();
        p.expect("joined ");
        p
    }

    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no `{prefix}` line"));
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn put_a_file_and_get_it_back_through_running_nodes() {
    let first = NodeProc::spawn(None);
    let others: Vec<NodeProc> = (0..4).map(|_| NodeProc::spawn(Some(&first.addr))).collect();
    let dir = std::env::temp_dir().join(format!("pastry-store-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("in.bin");
    // Larger than one payload: stored as chunks under a manifest.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let put = Command::new(BIN)
        .args([
            "put",
            file.to_str().unwrap(),
            "--bootstrap",
            &others[1].addr,
        ])
        .args(["--timeout", "20s"])
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let key = String::from_utf8(put.stdout).unwrap().trim().to_string();
    assert_eq!(key.len(), 32, "{key}");
    let get = Command::new(BIN)
        .args([
            "get",
            &key,
            "--bootstrap",
            &others[3].addr,
            "--timeout",
            "20s",
        ])
        .output()
        .unwrap();
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(get.stdout == data, "the file comes back byte for byte");
    let missing = Command::new(BIN)
        .args(["get", &"0".repeat(32), "--bootstrap", &first.addr])
        .args(["--timeout", "20s"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no replica holds the key"));
    let _ = std::fs::remove_dir_all(&dir);
}
