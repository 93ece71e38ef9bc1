//! The log callback: `pastry_logger`, `pastry_set_logger`.
//!
//! The library logs what an embedding application may want to see: nodes created, joined,
//! left; leaf-set changes and failures; messages that could not be delivered or datagrams that
//! were dropped; callbacks and internal errors that were caught. Without a logger nothing is
//! logged (and nothing is formatted).
//!
//! The Rust layers log through the `log` facade (targets `pastry::…`), so a Rust embedder sees
//! the same events with `env_logger` or any `log` logger. This file bridges the two ways:
//! - C logger installed: the first `pastry_set_logger` makes a bridge the process's `log`
//!   logger, which passes the library's records to the C logger (a C host has no other `log`
//!   logger). If a Rust host installed its own first, that one keeps the runtime's records and
//!   the C logger still gets the FFI layer's own messages directly.
//! - The FFI layer's own messages ([`log`]) go to the `log` facade too, so a Rust program using
//!   the C ABI sees them in its logger.

use core::ffi::{c_char, c_void};
use std::any::Any;
use std::cell::Cell;
use std::ffi::CString;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{OnceLock, RwLock};

use super::callbacks::CallbackScope;
use super::error::pastry_result::{self, *};

/// Severity of a log message (`pastry_logger.max_level` and the `level` argument of `log`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum pastry_log_level {
    /// Something failed: an internal error was caught, a callback misbehaved.
    PASTRY_LOG_ERROR = 1,
    /// Something unexpected that the library worked around (a leave that timed out).
    PASTRY_LOG_WARN = 2,
    /// Life-cycle events: a node was created, joined, left.
    PASTRY_LOG_INFO = 3,
    /// Details: leaf-set changes, undeliverable messages.
    PASTRY_LOG_DEBUG = 4,
}

/// The application's log sink, installed with `pastry_set_logger` (one for the whole process).
///
/// - `log(userdata, level, message)` gets a `pastry_log_level` and a NUL-terminated UTF-8
///   message, valid only during the call. It may run on any thread (an event-loop thread, or a
///   thread calling into the library), possibly on several at once: it must be thread-safe and
///   must not block for long. It may call any `pastry_` function except `pastry_set_logger`
///   (refused with `PASTRY_ERR_IN_CALLBACK`); messages logged from inside `log` are dropped.
/// - `max_level`: messages above this level are not formatted or passed (e.g.
///   `PASTRY_LOG_INFO` passes errors, warnings and info).
/// - Messages come from the C ABI layer and from the library's event loops (nodes joining,
///   leaf-set members joining, leaving or failing, undeliverable messages, dropped datagrams).
/// - `drop(userdata)` (may be NULL) runs exactly once, after the last `log` call has returned:
///   when the logger is replaced or removed by `pastry_set_logger`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pastry_logger {
    /// Passed as the first argument of `log` and `drop`.
    pub userdata: *mut c_void,
    /// Receives each message (NULL: log nothing).
    pub log:
        Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char)>,
    /// Releases `userdata` once the logger is no longer used (may be NULL).
    pub drop: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
    /// The most detailed level passed to `log` (a `pastry_log_level`).
    pub max_level: u32,
}

/// The installed logger (moved to the heap; its `userdata` is the application's business).
struct Installed(pastry_logger);

// SAFETY: the logger contract says `log` is thread-safe and `userdata` may be used from any
// thread; the library only passes the pointer back to the application's functions.
unsafe impl Send for Installed {}
// SAFETY: as above: concurrent `log` calls are allowed by the contract.
unsafe impl Sync for Installed {}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(d) = self.0.drop {
            let _scope = CallbackScope::enter_other();
            // SAFETY: `drop` is the application's finaliser for `userdata`; it runs once, here,
            // after the write lock guaranteed no `log` call is still running.
            unsafe { d(self.0.userdata) }
        }
    }
}

static LOGGER: RwLock<Option<Installed>> = RwLock::new(None);
/// The installed `max_level` (0: no logger), read without the lock.
static MAX_LEVEL: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// Set while this thread runs the application's `log`.
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

/// Installs `*logger` as the process-wide log sink, replacing (and dropping) the previous one;
/// NULL removes it. The struct is copied: it may be released after the call. Waits for `log`
/// calls in progress on other threads to return before dropping the old logger.
///
/// # Errors
/// `PASTRY_ERR_IN_CALLBACK` from inside a `log` call (nothing changes).
#[no_mangle]
pub unsafe extern "C" fn pastry_set_logger(logger: *const pastry_logger) -> pastry_result {
    ffi_boundary!("pastry_set_logger", {
        if IN_LOG.with(Cell::get) {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        // SAFETY: the header's contract: NULL or a readable `pastry_logger` for the call.
        let new = unsafe { logger.as_ref() }.copied().map(Installed);
        let max = new
            .as_ref()
            .map_or(0, |l| if l.0.log.is_some() { l.0.max_level } else { 0 });
        let old = {
            let mut slot = LOGGER.write().unwrap_or_else(|e| e.into_inner());
            MAX_LEVEL.store(max, Ordering::Release);
            core::mem::replace(&mut *slot, new)
        };
        // The old logger's `drop` runs outside the lock: it may log nothing more, and nothing
        // can call it any more.
        drop(old);
        if bridged() {
            log::set_max_level(level_filter(max));
        }
        Ok(())
    })
}

/// Whether a message at `level` would be passed to the logger.
pub(crate) fn enabled(level: pastry_log_level) -> bool {
    level as u32 <= MAX_LEVEL.load(Ordering::Acquire)
}

/// Logs the message built by `msg` at `level`: to the `log` facade (target `pastry::ffi`), and
/// directly to the C logger when the facade does not lead there (see the module docs).
pub(crate) fn log(level: pastry_log_level, msg: impl FnOnce() -> String) {
    let lvl = log_level(level);
    let facade = lvl <= log::max_level();
    let direct = !bridged() && enabled(level);
    if !facade && !direct {
        return;
    }
    let text = msg();
    if facade {
        log::log!(target: "pastry::ffi", lvl, "{text}");
    }
    if direct {
        to_c_logger(level, text);
    }
}

/// Passes `text` to the installed C logger, if it wants `level` (and this thread is not inside
/// its `log` already).
fn to_c_logger(level: pastry_log_level, text: String) {
    if !enabled(level) || IN_LOG.with(Cell::get) {
        return;
    }
    // Interior NULs cannot be passed through a C string: replace them.
    let c = CString::new(text.replace('\0', "\u{fffd}")).unwrap_or_default();
    let guard = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    let Some(Installed(l)) = guard.as_ref() else {
        return;
    };
    let (Some(f), true) = (l.log, level as u32 <= l.max_level) else {
        return;
    };
    IN_LOG.with(|g| g.set(true));
    let _reset = ResetInLog;
    let _scope = CallbackScope::enter_other();
    // SAFETY: `log` is the application's function for this `userdata`; the message is a valid
    // NUL-terminated string that outlives the call.
    unsafe { f(l.userdata, level as u32, c.as_ptr()) }
}

/// The `log` level of a C level.
fn log_level(level: pastry_log_level) -> log::Level {
    match level {
        pastry_log_level::PASTRY_LOG_ERROR => log::Level::Error,
        pastry_log_level::PASTRY_LOG_WARN => log::Level::Warn,
        pastry_log_level::PASTRY_LOG_INFO => log::Level::Info,
        pastry_log_level::PASTRY_LOG_DEBUG => log::Level::Debug,
    }
}

/// The C level of a `log` level (trace is passed as debug).
fn c_level(level: log::Level) -> pastry_log_level {
    match level {
        log::Level::Error => pastry_log_level::PASTRY_LOG_ERROR,
        log::Level::Warn => pastry_log_level::PASTRY_LOG_WARN,
        log::Level::Info => pastry_log_level::PASTRY_LOG_INFO,
        log::Level::Debug | log::Level::Trace => pastry_log_level::PASTRY_LOG_DEBUG,
    }
}

/// The `log` filter for a C logger's `max_level` (0: off).
fn level_filter(max: u32) -> log::LevelFilter {
    match max {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    }
}

/// The `log` logger that passes the library's records (targets `pastry…`) to the C logger.
#[derive(Debug)]
struct Bridge;

static BRIDGE: Bridge = Bridge;
/// Whether [`Bridge`] is the process's `log` logger; decided by the first `pastry_set_logger`.
static BRIDGED: OnceLock<bool> = OnceLock::new();

/// Whether the `log` facade leads to the C logger (installs [`Bridge`] on the first call
/// after a C logger was set, if no other `log` logger is there).
fn bridged() -> bool {
    if let Some(&b) = BRIDGED.get() {
        return b;
    }
    if MAX_LEVEL.load(Ordering::Acquire) == 0 {
        return false; // no C logger yet: leave the `log` facade to a Rust host
    }
    *BRIDGED.get_or_init(|| {
        let ok = log::set_logger(&BRIDGE).is_ok();
        if ok {
            log::set_max_level(level_filter(MAX_LEVEL.load(Ordering::Acquire)));
        }
        ok
    })
}

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("pastry") && enabled(c_level(m.level()))
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            to_c_logger(c_level(r.level()), r.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Clears `IN_LOG` on scope exit (also when unwinding).
struct ResetInLog;

impl Drop for ResetInLog {
    fn drop(&mut self) {
        IN_LOG.with(|g| g.set(false));
    }
}

/// Logs a panic caught at the boundary of `name`.
pub(crate) fn panic_caught(name: &str, payload: &(dyn Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    log(pastry_log_level::PASTRY_LOG_ERROR, || {
        format!("internal error caught in {name}: {what}")
    });
}
