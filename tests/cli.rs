//! The `pastry` binary: `pastry ring --json`, and `pastry node` processes driven through their
//! stdin/stdout line protocol (loopback only). Every wait is bounded.

// Tests of real processes read the wall clock (give-up deadlines) and use reader threads.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use pastry::Id;

const BIN: &str = env!("CARGO_BIN_EXE_pastry");

/// A `pastry node` process; killed on drop if still running.
struct NodeProc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    id: Id,
    addr: String,
}

impl NodeProc {
    fn spawn(extra: &[&str]) -> NodeProc {
        let mut child = Command::new(BIN)
            .args(["node", "--listen", "127.0.0.1:0", "--probe-ms", "500"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pastry node");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut p = NodeProc {
            child,
            stdin,
            lines,
            id: Id(0),
            addr: String::new(),
        };
        let ready = p.expect_line("ready ");
        let mut parts = ready.split(' ').skip(1);
        p.id = parts.next().unwrap().parse().unwrap();
        p.addr = parts.next().unwrap().to_string();
        p
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line starting with `prefix` (others are skipped), within 20 s.
    fn expect_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if l.starts_with(prefix) {
                    return l;
                }
            }
        }
        panic!("no `{prefix}` line from node {} within 20 s", self.id);
    }

    fn leaf_set_len(&mut self) -> usize {
        self.send("leafset");
        let l = self.expect_line("leafset");
        l.split(' ').skip(1).filter(|s| !s.is_empty()).count()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oracle_root(ids: &BTreeSet<Id>, key: Id) -> Id {
    ids.iter()
        .copied()
        .reduce(|a, b| if key.closer_to(a, b) { a } else { b })
        .unwrap()
}

#[test]
fn three_node_processes_find_each_other_and_route_to_the_root() {
    let mut a = NodeProc::spawn(&[]);
    a.expect_line("joined");
    let boot = a.addr.clone();
    let mut b = NodeProc::spawn(&["--bootstrap", &boot]);
    let mut c = NodeProc::spawn(&["--bootstrap", &boot]);
    b.expect_line("joined");
    c.expect_line("joined");
    let mut procs = [a, b, c];
    let deadline = Instant::now() + Duration::from_secs(20);
    while procs.iter_mut().any(|p| p.leaf_set_len() < 2) {
        assert!(Instant::now() < deadline, "leaf sets incomplete after 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ids: BTreeSet<Id> = procs.iter().map(|p| p.id).collect();
    let mut rng = pastry::Rng::new(3);
    let mut expected = Vec::new();
    for i in 0..30 {
        let key = Id(rng.next_u128());
        procs[i % 3].send(&format!("route {key} message {i}"));
        expected.push((key, format!("message {i}")));
    }
    // Each delivery line: `delivered <key> <text> at <id> hops <n>`.
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < expected.len() {
        assert!(
            Instant::now() < deadline,
            "{got} of {} delivered",
            expected.len()
        );
        for p in procs.iter_mut() {
            while let Ok(l) = p.lines.try_recv() {
                let Some(rest) = l.strip_prefix("delivered ") else {
                    continue;
                };
                let (key, rest) = rest.split_once(' ').unwrap();
                let (text, at) = rest.rsplit_once(" at ").unwrap();
                let at: Id = at.split(' ').next().unwrap().parse().unwrap();
                let key: Id = key.parse().unwrap();
                assert!(expected.contains(&(key, text.to_string())), "{l}");
                assert_eq!(at, oracle_root(&ids, key), "{l}");
                assert_eq!(at, p.id, "{l}");
                got += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM: a graceful leave that the others hear about.
    let leaver = procs[2].id;
    // The shell's built-in `kill` (no procps needed).
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", procs[2].child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    procs[2].expect_line("left");
    let exit = procs[2].child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let gone = format!("update - {leaver}");
    procs[0].expect_line(&gone);
    procs[1].expect_line(&gone);
}

#[test]
fn node_errors_are_clear() {
    let a = NodeProc::spawn(&[]);
    // A busy port.
    let out = Command::new(BIN)
        .args(["node", "--listen", &a.addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(&a.addr),
        "{err}"
    );
    // A bootstrap nobody answers (a bound socket that never reads).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
            &silent_addr,
        ])
        .args(["--join-timeout-ms", "100", "--join-attempts", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no bootstrap node answered") && err.contains(&silent_addr),
        "{err}"
    );
}

#[test]
fn ring_json_reports_every_message_at_the_root() {
    let out = Command::new(BIN)
        .args(["ring", "--nodes", "24", "--messages", "500", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout.lines().last().unwrap();
    let field = |name: &str| -> f64 {
        let at = json
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("{name} in {json}"));
        let v = &json[at + name.len() + 3..];
        let end = v.find([',', '}']).unwrap();
        v[..end].parse().unwrap()
    };
    assert_eq!(field("nodes"), 24.0);
    assert_eq!(field("messages"), 500.0);
    assert_eq!(field("delivered"), 500.0);
    assert_eq!(field("correct"), 500.0);
    for f in [
        "mean_hops",
        "p50_us",
        "p99_us",
        "msgs_per_s",
        "join_s",
        "rss_bytes_per_node",
    ] {
        assert!(field(f) >= 0.0);
    }
}
