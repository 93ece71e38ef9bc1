//! The `pastry` binary: its command line, `pastry ring` and `pastry sim` reports (JSON checked
//! by `python3 -m json.tool`, SVG figures), and `pastry node` processes driven through their
//! stdin/stdout line protocol (loopback only): escaping, JSON lines, a stdout nobody reads,
//! Prometheus metrics, warm restarts from a state file. Every wait is bounded.

// Tests of real processes read the wall clock (give-up deadlines) and use reader threads.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, Command, Stdio};
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
    /// Held unread (see [`NodeProc::spawn_stalled`]).
    _stderr: Option<ChildStderr>,
    /// Dropping it lets a stalled reader go.
    _release: Option<mpsc::Sender<()>>,
}

impl NodeProc {
    fn spawn(extra: &[&str]) -> NodeProc {
        NodeProc::start(extra, None)
    }

    /// A node whose stdout is read only up to its first line starting with `stop_after`, and
    /// whose stderr is never read: both pipes stay open and fill up.
    fn spawn_stalled(extra: &[&str], stop_after: &'static str) -> NodeProc {
        NodeProc::start(extra, Some(stop_after))
    }

    fn start(extra: &[&str], stall_after: Option<&'static str>) -> NodeProc {
        let mut child = Command::new(BIN)
            .args(["node", "--listen", "127.0.0.1:0", "--probe-ms", "500"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if stall_after.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn pastry node");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                let l = line.trim_end_matches('\n').to_string();
                line.clear();
                let stop = stall_after.is_some_and(|p| l.starts_with(p));
                if tx.send(l).is_err() {
                    return;
                }
                if stop {
                    // Keep the pipe open, unread, until the test ends (bounded).
                    let _ = released.recv_timeout(Duration::from_secs(120));
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let mut p = NodeProc {
            child,
            stdin,
            lines,
            id: Id(0),
            addr: String::new(),
            _stderr: stderr,
            _release: Some(release),
        };
        if extra.contains(&"--json") {
            let ready = p.expect_line(r#"{"event":"ready""#);
            let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
            p.id = v["id"].as_str().unwrap().parse().unwrap();
            p.addr = v["addr"].as_str().unwrap().to_string();
        } else {
            let ready = p.expect_line("ready ");
            let mut parts = ready.split(' ').skip(1);
            p.id = parts.next().unwrap().parse().unwrap();
            p.addr = parts.next().unwrap().to_string();
        }
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
        .args(["--join-timeout-ms", "100ms", "--join-attempts", "2"])
        .args(["--join-retries", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no bootstrap node answered") && err.contains(&silent_addr),
        "{err}"
    );
    // One round of retries after a backoff, then the failure.
    assert_eq!(err.matches("trying again in").count(), 1, "{err}");
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
    json_tool(json, false);
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

/// Runs `python3 -m json.tool` (with `--json-lines` for several lines) on `text`: fails the
/// test when Python's strict parser rejects it.
fn json_tool(text: &str, json_lines: bool) {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "json.tool"]);
    if json_lines {
        cmd.arg("--json-lines");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 -m json.tool rejects:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pastry-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_and_version_exit_0_and_usage_errors_exit_2() {
    for args in [
        &["--help"][..],
        &["help"],
        &["help", "sim"],
        &["sim", "--help"],
        &["node", "-h"],
        &["--version"],
    ] {
        let out = run_ok(args);
        assert!(!out.is_empty(), "{args:?}");
    }
    assert!(run_ok(&["help", "node"]).contains("--state-file"));
    assert!(run_ok(&["--version"]).starts_with("pastry "));
    for args in [
        &["--bogus"][..],
        &["sim", "--nodes"],
        &["sim", "--b", "3"],
        &["sim", "--churn-session", "5x"],
        &["ring", "--nodes", "0"],
        &["node"],
        &["frobnicate"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn sim_json_and_svg_with_duration_units() {
    let dir = temp_dir("sim");
    let svg = dir.join("sim.svg");
    let out = run_ok(&[
        "sim",
        "--nodes",
        "60",
        "--lookups",
        "300",
        "--churn-session",
        "1.4m",
        "--jitter-ms",
        "2ms",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let json = out.lines().last().unwrap();
    json_tool(json, false);
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["nodes"], 60);
    assert_eq!(v["lookups"], 300);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("log16 N") && svg.contains("latency"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn churn_sweep_prints_json_lines_and_draws_its_plot() {
    let dir = temp_dir("sweep");
    let svg = dir.join("sweep.svg");
    let out = run_ok(&[
        "sweep",
        "--nodes",
        "40",
        "--lookups",
        "200",
        "--sessions",
        "1.4m,15m",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let rows = json_lines(&out);
    // No churn, then two sessions crash-only and two half graceful.
    assert_eq!(rows.len(), 5, "{out}");
    assert!(rows[0]["median_session_s"].is_null());
    assert_eq!(rows[1]["median_session_s"], 84.0);
    for r in &rows {
        assert_eq!(r["wrong_root"], 0, "{r}");
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("median session") && svg.contains("half graceful")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn proximity_prints_json_lines_and_draws_its_plot() {
    let dir = temp_dir("proximity");
    let svg = dir.join("proximity.svg");
    let out = run_ok(&[
        "proximity",
        "--nodes",
        "30,60",
        "--lookups-per-node",
        "5",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let rows = json_lines(&out);
    // Two sizes on the plane, then on the sphere.
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(
        (&rows[0]["topology"], &rows[3]["nodes"]),
        (&"plane".into(), &60.into())
    );
    for r in &rows {
        assert!(r["stretch_of_sums"].as_f64().unwrap() >= 1.0, "{r}");
        assert!(r["rt_non_best_per_row"].as_f64().is_some(), "{r}");
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("stretch") && svg.contains("sphere"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_json_with_nan_and_infinity_is_valid() {
    use pastry::sim::{Report, Summary};
    let r = Report {
        stretch_sum: f64::NAN,
        stretch_n: 1,
        path_us_sum: f64::INFINITY,
        direct_us_sum: 1.0,
        node_seconds: f64::NAN,
        ..Report::default()
    };
    let s = Summary {
        rt_fill: f64::NAN,
        rt_entries_mean: f64::INFINITY,
        wall_s: f64::NEG_INFINITY,
        ..Summary::default()
    };
    let json = r.json(&s);
    json_tool(&json, false);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for f in [
        "stretch_mean",
        "stretch_of_sums",
        "rt_fill",
        "rt_entries_mean",
        "wall_s",
    ] {
        assert!(v[f].is_null(), "{f}: {json}");
    }
}

/// Sends `text` to the root of `key` from an in-process node joined through `boot`.
fn route_from_library(boot: &str, key: Id, payload: &[u8]) -> pastry::runtime::Runtime {
    use pastry::runtime::{NodeConfig, Runtime};
    let rt = Runtime::new().unwrap();
    let h = rt
        .add_node(NodeConfig::new("127.0.0.1:0".parse().unwrap()), ())
        .unwrap();
    h.join(&[boot.parse().unwrap()], Duration::from_secs(20))
        .unwrap();
    h.route(key, payload.to_vec()).unwrap();
    rt
}

#[test]
fn payloads_cannot_forge_lines_and_json_lines_are_valid() {
    let mut text = NodeProc::spawn(&[]);
    text.expect_line("joined");
    let mut json = NodeProc::spawn(&["--json", "--bootstrap", &text.addr.clone()]);
    json.expect_line(r#"{"event":"joined""#);
    let forged = format!(
        "x\ndelivered {} forged at {} hops 0\r\x1b[2J",
        Id(1),
        text.id
    );
    let _rt1 = route_from_library(&text.addr, text.id, forged.as_bytes());
    let line = text.expect_line("delivered ");
    assert!(
        line.contains(r"x\ndelivered ") && line.contains(r"hops 0\r\u{1b}[2J at "),
        "{line}"
    );
    let _rt2 = route_from_library(&text.addr, json.id, forged.as_bytes());
    let delivered = json.expect_line(r#"{"event":"delivered""#);
    let v: serde_json::Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(v["payload"], forged.as_str());
    assert_eq!(v["at"], json.id.to_string());
    // Every kind of answer, as JSON lines.
    let mut seen = vec![delivered];
    for (cmd, event) in [
        (format!("route {} hello", json.id), "routed"),
        ("leafset".into(), "leafset"),
        ("table".into(), "table"),
        ("stats".into(), "stats"),
        ("bogus".into(), "error"),
    ] {
        json.send(&cmd);
        seen.push(json.expect_line(&format!(r#"{{"event":"{event}""#)));
    }
    json_tool(&seen.join("\n"), true);
    let stats: serde_json::Value = serde_json::from_str(&seen[4]).unwrap();
    assert!(
        stats["stats"]["delivered"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(no_forged_line(&text));
}

/// Whether no line waiting from `p` is a forged `delivered` line.
fn no_forged_line(p: &NodeProc) -> bool {
    p.lines.try_iter().all(|l| !l.contains("forged at"))
}

/// An HTTP GET of `path` on loopback: (head, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Checks `text` against the rules of the Prometheus text format (0.0.4) and returns the
/// samples by name.
fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    use std::collections::{BTreeMap, BTreeSet};
    let valid_name = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut p = rest.splitn(3, ' ');
            let (kw, name, tail) = (p.next().unwrap(), p.next().unwrap(), p.next());
            assert!(valid_name(name), "{line}");
            assert!(
                !samples.contains_key(name),
                "metadata after samples: {line}"
            );
            match kw {
                "HELP" => assert!(helped.insert(name.to_string()), "second HELP: {line}"),
                "TYPE" => {
                    let t = tail.unwrap();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "{line}"
                    );
                    assert!(typed.insert(name.into(), t.into()).is_none(), "{line}");
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let (name, value) = line.split_once(' ').unwrap();
        assert!(valid_name(name) && !name.contains('{'), "{line}");
        let v: f64 = value.split(' ').next().unwrap().parse().unwrap();
        assert!(typed.contains_key(name), "sample before its TYPE: {line}");
        if typed[name] == "counter" {
            assert!(name.ends_with("_total") && v >= 0.0, "{line}");
        }
        assert!(samples.insert(name.to_string(), v).is_none(), "{line}");
    }
    samples
}

#[test]
fn a_node_whose_stdout_is_not_read_still_answers_pings_and_routes() {
    let mut a = NodeProc::spawn(&[]);
    a.expect_line("joined");
    let boot = a.addr.clone();
    let extra = ["--bootstrap", &boot, "--metrics", "127.0.0.1:0"];
    let mut b =
        NodeProc::spawn_stalled(&[&extra[..], &["--output-queue", "32"]].concat(), "joined");
    let metrics = b.expect_line("metrics ")[8..].to_string();
    b.expect_line("joined");
    // B's stdout is read no more. Deliveries at B (about 1.1 KB each) fill its pipe.
    let big = "z".repeat(1000);
    let total = 600;
    for i in 0..total {
        a.send(&format!("route {} {i} {big}", b.id));
    }
    let (head, body) = http_get(&metrics, "/metrics");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_prometheus(&body);
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let s = parse_prometheus(&http_get(&metrics, "/metrics").1);
        if s["pastry_delivered_total"] >= f64::from(total) || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(samples["pastry_delivered_total"], f64::from(total));
    assert!(samples["pastry_output_dropped_total"] > 0.0, "{samples:?}");
    // B still routes (A is the root of its own id) and answers pings: after many probe
    // periods (500 ms) A still has B in its leaf set.
    b.send(&format!("route {} from-the-stalled-node", a.id));
    a.expect_line(&format!(
        "delivered {} from-the-stalled-node at {}",
        a.id, a.id
    ));
    std::thread::sleep(Duration::from_secs(3));
    a.send("leafset");
    let ls = a.expect_line("leafset");
    assert!(ls.contains(&b.id.to_string()), "{ls}");
    assert_eq!(samples["pastry_active"], 1.0);
}

#[test]
fn a_restarted_node_rejoins_through_its_saved_peers_when_its_bootstrap_is_down() {
    let dir = temp_dir("state");
    let state = dir.join("node.json");
    let state_arg = state.to_str().unwrap();
    let mut a = NodeProc::spawn(&[]);
    a.expect_line("joined");
    let boot = a.addr.clone();
    let mut b = NodeProc::spawn(&["--bootstrap", &boot]);
    b.expect_line("joined");
    let mut c = NodeProc::spawn(&["--bootstrap", &boot, "--state-file", state_arg]);
    c.expect_line("joined");
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.leaf_set_len() < 2 {
        assert!(
            Instant::now() < deadline,
            "C's leaf set incomplete after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.send("quit");
    c.expect_line("left");
    assert!(c.child.wait().unwrap().success());
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains(&b.addr), "{saved}");
    drop(a); // the bootstrap is down
    let mut c2 = NodeProc::spawn(&[
        "--bootstrap",
        &boot,
        "--state-file",
        state_arg,
        "--join-timeout-ms",
        "300ms",
    ]);
    c2.expect_line("joined");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c2.send("leafset");
        if c2.expect_line("leafset").contains(&b.id.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B not in the leaf set after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A corrupt file: a clean start, said on stderr.
    std::fs::write(&state, "{ not json").unwrap();
    let mut alone = Command::new(BIN)
        .args(["node", "--listen", "127.0.0.1:0", "--state-file", state_arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    alone.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    let out = alone.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is corrupt") && err.contains("clean start"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn amplification_table_prints_one_json_line_per_attack() {
    let out = run_ok(&["amplification", "--flood", "20", "--json"]);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), pastry::sim::hostile::attacks().len(), "{out}");
    for r in &rows {
        assert!(r["single_bytes_ratio"].as_f64().unwrap() <= 3.0, "{r}");
        assert_eq!(r["legit_delivered"], r["legit_sent"], "{r}");
    }
    let text = run_ok(&["amplification", "--flood", "5"]);
    assert!(text.starts_with("attack"), "{text}");
}

/// `out` as JSON lines (checked by Python's json.tool too), one value per line.
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    json_tool(out, true);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
