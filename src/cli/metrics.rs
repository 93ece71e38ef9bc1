//! `pastry node --metrics ADDR`: the node's counters over HTTP in the Prometheus text format
//! (version 0.0.4), at `/metrics`.
//!
//! A small handler on `std::net::TcpListener` rather than a crate: the endpoint serves one
//! page of a few dozen lines to a scraper, and the Prometheus client crates bring an HTTP
//! server stack (hyper, an async runtime) or protobuf with them, more code than this file.
//! Connections are served one at a time, each bounded in time (2 s timeouts) and size (8 KiB
//! of request head), on a thread of its own, so a slow scraper never touches the event loop.

// A server thread: real sockets and their timeouts.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Read and write timeout of one connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a metric only grows (`counter`) or goes up and down (`gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only grows (the name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One figure of a node.
#[derive(Clone, Debug)]
pub(crate) struct Metric {
    /// Name without the `pastry_` prefix (and, for counters, without `_total`).
    pub(crate) name: &'static str,
    /// One line of help.
    pub(crate) help: &'static str,
    /// Counter or gauge.
    pub(crate) kind: Kind,
    /// The value.
    pub(crate) value: u64,
}

/// The metrics as Prometheus text: `# HELP`, `# TYPE` and one sample per metric.
pub(crate) fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for m in metrics {
        let (name, kind) = match m.kind {
            Kind::Counter => (format!("pastry_{}_total", m.name), "counter"),
            Kind::Gauge => (format!("pastry_{}", m.name), "gauge"),
        };
        let _ = writeln!(out, "# HELP {name} {}", m.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", m.value);
    }
    out
}

/// Binds `addr` and serves `/metrics` from `collect` on a new thread; returns the bound address.
pub(crate) fn serve<F>(addr: SocketAddr, collect: F) -> Result<SocketAddr, String>
where
    F: Fn() -> Result<Vec<Metric>, String> + Send + 'static,
{
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: cannot listen: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("pastry-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        if let Err(e) = answer(s, &collect) {
                            log::debug!("metrics: {e}");
                        }
                    }
                    Err(e) => log::debug!("metrics: accept: {e}"),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(bound)
}

/// Reads one request head and answers it.
fn answer<F>(mut s: TcpStream, collect: &F) -> std::io::Result<()>
where
    F: Fn() -> Result<Vec<Metric>, String>,
{
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics" | "/") => match collect() {
            Ok(m) => ("200 OK", render(&m)),
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        },
        ("GET" | "HEAD", _) => ("404 Not Found", "try /metrics\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        reply.push_str(&body);
    }
    s.write_all(reply.as_bytes())?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_help_type_and_sample() {
        let text = render(&[
            Metric {
                name: "delivered",
                help: "Messages delivered here.",
                kind: Kind::Counter,
                value: 7,
            },
            Metric {
                name: "heap_bytes",
                help: "Approximate heap bytes.",
                kind: Kind::Gauge,
                value: 1024,
            },
        ]);
        assert_eq!(
            text,
            "# HELP pastry_delivered_total Messages delivered here.\n\
             # TYPE pastry_delivered_total counter\n\
             pastry_delivered_total 7\n\
             # HELP pastry_heap_bytes Approximate heap bytes.\n\
             # TYPE pastry_heap_bytes gauge\n\
             pastry_heap_bytes 1024\n"
        );
    }

    #[test]
    fn serves_metrics_and_refuses_other_paths() {
        let addr = serve(([127, 0, 0, 1], 0).into(), || {
            Ok(vec![Metric {
                name: "up",
                help: "Always 1.",
                kind: Kind::Gauge,
                value: 1,
            }])
        })
        .unwrap();
        let get = |req: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.ends_with(
                "\r\n\r\n# HELP pastry_up Always 1.\n# TYPE pastry_up gauge\npastry_up 1\n"
            ),
            "{ok}"
        );
        assert!(get("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
