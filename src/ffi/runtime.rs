//! The runtime: one event-loop thread serving any number of nodes (`pastry_runtime_new`,
//! `pastry_runtime_free`).

use super::callbacks::in_callback;
use super::error::pastry_result::{self, *};
use super::log::{log, pastry_log_level::*};
use crate::runtime::Runtime;

/// One event-loop thread that owns the UDP sockets and timers of its nodes and calls their
/// upcalls (opaque). One per process is usual; a test may run many nodes on one. Thread-safe:
/// nodes may be added from any thread.
#[derive(Debug)]
pub struct pastry_runtime {
    _private: [u8; 0],
}

/// The runtime behind a `pastry_runtime *`.
pub(crate) fn runtime_ref<'a>(p: *const pastry_runtime) -> Result<&'a Runtime, pastry_result> {
    // SAFETY: a non-NULL `pastry_runtime *` is a leaked `Box<Runtime>` from
    // `pastry_runtime_new`, not freed during the call (the header's contract).
    unsafe { p.cast::<Runtime>().as_ref() }.ok_or(PASTRY_ERR_NULL_ARGUMENT)
}

/// Starts a runtime (spawns its event-loop thread) and stores it in `*out`. Release it with
/// `pastry_runtime_free`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_IO` (the OS refused the poll instance or the
/// thread).
#[no_mangle]
pub unsafe extern "C" fn pastry_runtime_new(out: *mut *mut pastry_runtime) -> pastry_result {
    ffi_boundary!("pastry_runtime_new", {
        let out = try_out!(out);
        let rt = Runtime::new().map_err(|e| {
            log(PASTRY_LOG_ERROR, || format!("cannot start a runtime: {e}"));
            PASTRY_ERR_IO
        })?;
        out.write(Box::into_raw(Box::new(rt)).cast());
        Ok(())
    })
}

/// Stops a runtime: every node still on it leaves gracefully (best effort: one flush), every
/// node's `drop(userdata)` runs, and the loop thread is joined before this returns. NULL is
/// fine (`PASTRY_OK`, nothing happens).
///
/// The `pastry_node *` handles of its nodes stay valid until freed with `pastry_node_free`;
/// calls on them then fail with `PASTRY_ERR_STOPPED`. Nodes and runtime may be freed in either
/// order.
///
/// # Errors
/// `PASTRY_ERR_IN_CALLBACK` from inside a callback (it would wait for its own thread): nothing
/// is freed.
#[no_mangle]
pub unsafe extern "C" fn pastry_runtime_free(runtime: *mut pastry_runtime) -> pastry_result {
    ffi_boundary!("pastry_runtime_free", {
        if runtime.is_null() {
            return Ok(());
        }
        if in_callback() {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        // SAFETY: a non-NULL `pastry_runtime *` is a leaked `Box<Runtime>` from
        // `pastry_runtime_new`, freed once (the caller's contract).
        let rt = unsafe { Box::from_raw(runtime.cast::<Runtime>()) };
        rt.shutdown();
        Ok(())
    })
}
