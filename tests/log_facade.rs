//! A Rust embedder sees the runtime's events through the `log` facade (here a capturing
//! logger; `env_logger` works the same way). Its own test binary: the `log` logger is global.

use std::sync::Mutex;
use std::time::Duration;

use pastry::runtime::{NodeConfig, Runtime};

/// Every record of a `pastry…` target: (level, target, message).
static SEEN: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("pastry")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let rec = (r.level(), r.target().to_string(), r.args().to_string());
            SEEN.lock().unwrap().push(rec);
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

#[test]
fn joins_and_departures_reach_the_rust_logger() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let rt = Runtime::new().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let a = rt.add_node(NodeConfig::new(any), ()).unwrap();
    a.start_alone().unwrap();
    a.wait_joined(Duration::from_secs(10)).unwrap();
    let b = rt.add_node(NodeConfig::new(any), ()).unwrap();
    b.join(&[a.addr()], Duration::from_secs(10)).unwrap();
    b.leave(Duration::from_secs(5)).unwrap();
    rt.shutdown();
    let seen = SEEN.lock().unwrap();
    let has = |level: log::Level, text: &str| {
        seen.iter()
            .any(|(l, t, m)| *l == level && t.starts_with("pastry::runtime") && m.contains(text))
    };
    assert!(
        has(
            log::Level::Info,
            &format!("node {}: joined (active)", b.id())
        ),
        "{seen:?}"
    );
    assert!(
        has(
            log::Level::Info,
            &format!("node {}: leaf set + {}", a.id(), b.node_handle())
        ),
        "{seen:?}"
    );
    assert!(
        has(log::Level::Info, &format!("node {}: leaving", b.id())),
        "{seen:?}"
    );
}
