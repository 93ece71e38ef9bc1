//! The C logger (`pastry_set_logger`) also receives the runtime's events, which the Rust layers
//! log through the `log` facade: the FFI bridges the facade to the C logger. Its own test
//! binary: the `log` logger is global.

// Calls the C ABI's `unsafe extern "C"` functions, as a C host would.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;
use std::time::Duration;

use pastry::ffi::log::{pastry_log_level, pastry_logger, pastry_set_logger};
use pastry::runtime::{NodeConfig, Runtime};

static SEEN: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(_ud: *mut c_void, level: u32, msg: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    SEEN.lock().unwrap().push((level, text));
}

#[test]
fn runtime_events_reach_the_c_logger() {
    let logger = pastry_logger {
        userdata: core::ptr::null_mut(),
        log: Some(on_log),
        drop: None,
        max_level: pastry_log_level::PASTRY_LOG_INFO as u32,
    };
    // SAFETY: a valid logger struct, copied by the call.
    let r = unsafe { pastry_set_logger(&logger) };
    assert_eq!(r as u32, 0);
    let rt = Runtime::new().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let a = rt.add_node(NodeConfig::new(any), ()).unwrap();
    a.start_alone().unwrap();
    let b = rt.add_node(NodeConfig::new(any), ()).unwrap();
    b.join(&[a.addr()], Duration::from_secs(10)).unwrap();
    rt.shutdown();
    // SAFETY: NULL removes the logger.
    unsafe { pastry_set_logger(core::ptr::null()) };
    let seen = SEEN.lock().unwrap();
    let info = pastry_log_level::PASTRY_LOG_INFO as u32;
    let joined = format!("node {}: joined (active)", b.id());
    assert!(
        seen.iter().any(|(l, m)| *l == info && m.contains(&joined)),
        "{seen:?}"
    );
    // Nothing above the logger's max_level was passed.
    assert!(seen.iter().all(|(l, _)| *l <= info), "{seen:?}");
    let n = seen.len();
    drop(seen);
    // Removed: nothing more arrives.
    let rt = Runtime::new().unwrap();
    let c = rt.add_node(NodeConfig::new(any), ()).unwrap();
    c.start_alone().unwrap();
    c.wait_joined(Duration::from_secs(10)).unwrap();
    rt.shutdown();
    assert_eq!(SEEN.lock().unwrap().len(), n);
}
