//! The panic boundary around every `extern "C"` body, and the NULL-checking pointer macros.
//!
//! Every entry point is written as
//!
//! ```ignore
//! pub unsafe extern "C" fn pastry_x(a: *const T, out: *mut U) -> pastry_result {
//!     ffi_boundary!("pastry_x", {
//!         let a = try_ref!(a);
//!         let out = try_out!(out);
//!         out.write(compute(a)?);
//!         Ok(())
//!     })
//! }
//! ```
//!
//! The body is a closure returning `Result<(), pastry_result>`, so `?` and the macros'
//! early returns give the code to return; a panic inside it is caught, logged, and becomes
//! `PASTRY_ERR_PANIC`.

use core::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::pastry_result;

/// What an entry point returns when its body panicked.
pub(crate) trait PanicDefault {
    /// The value returned after a caught panic.
    fn on_panic() -> Self;
}

impl PanicDefault for pastry_result {
    fn on_panic() -> Self {
        pastry_result::PASTRY_ERR_PANIC
    }
}

impl PanicDefault for () {
    fn on_panic() -> Self {}
}

impl PanicDefault for u32 {
    fn on_panic() -> Self {
        0
    }
}

impl PanicDefault for *const c_char {
    fn on_panic() -> Self {
        c"internal error".as_ptr()
    }
}

/// Runs `f`, turning a panic into `R::on_panic()` (after logging it).
pub(crate) fn run<R: PanicDefault>(name: &'static str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            super::log::panic_caught(name, payload.as_ref());
            R::on_panic()
        }
    }
}

/// Runs a fallible body: `Ok(())` becomes `PASTRY_OK`, `Err(code)` the code, a panic
/// `PASTRY_ERR_PANIC`.
pub(crate) fn result(
    name: &'static str,
    f: impl FnOnce() -> Result<(), pastry_result>,
) -> pastry_result {
    run(name, || match f() {
        Ok(()) => pastry_result::PASTRY_OK,
        Err(e) => e,
    })
}

/// The panic boundary of a fallible entry point (see the module docs).
macro_rules! ffi_boundary {
    ($name:literal, $body:block) => {
        $crate::ffi::guard::result($name, move || $body)
    };
}

/// The panic boundary of an entry point that returns a value, with `PanicDefault` on panic.
macro_rules! ffi_boundary_value {
    ($name:literal, $body:block) => {
        $crate::ffi::guard::run($name, move || $body)
    };
}

/// `&T` from a pointer argument, or an early `Err(PASTRY_ERR_NULL_ARGUMENT)`.
macro_rules! try_ref {
    ($p:expr) => {{
        let p = $p;
        // SAFETY: the header's contract: a pointer argument is NULL or valid for reads (and
        // not written by anyone else) for the duration of the call.
        match unsafe { p.as_ref() } {
            Some(r) => r,
            None => return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT),
        }
    }};
}

/// `&mut T` from a pointer argument, or an early `Err(PASTRY_ERR_NULL_ARGUMENT)`.
macro_rules! try_mut {
    ($p:expr) => {{
        let p = $p;
        // SAFETY: the header's contract: an in/out pointer argument is NULL or valid for reads
        // and writes, and not used by anyone else, for the duration of the call.
        match unsafe { p.as_mut() } {
            Some(r) => r,
            None => return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT),
        }
    }};
}

/// An [`Out`](crate::ffi::guard::Out) from an out-pointer argument, or an early
/// `Err(PASTRY_ERR_NULL_ARGUMENT)`. Nothing is written until `Out::write`.
macro_rules! try_out {
    ($p:expr) => {{
        match $crate::ffi::guard::Out::new($p) {
            Some(o) => o,
            None => return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT),
        }
    }};
}

/// `&[T]` from a pointer and a length (NULL is fine when the length is 0), or an early
/// `Err(PASTRY_ERR_NULL_ARGUMENT)`.
macro_rules! try_slice {
    ($p:expr, $len:expr) => {{
        let (p, len) = ($p, $len);
        if len == 0 {
            &[][..]
        } else if p.is_null() {
            return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT);
        } else {
            // SAFETY: the header's contract: `p` points to `len` readable elements for the
            // duration of the call; it is not NULL (checked) and `len > 0`.
            unsafe { core::slice::from_raw_parts(p, len) }
        }
    }};
}

/// `&mut [T]` from a pointer and a capacity (NULL is fine when the capacity is 0), or an early
/// `Err(PASTRY_ERR_NULL_ARGUMENT)`.
macro_rules! try_slice_mut {
    ($p:expr, $len:expr) => {{
        let (p, len) = ($p, $len);
        if len == 0 {
            &mut [][..]
        } else if p.is_null() {
            return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT);
        } else {
            // SAFETY: the header's contract: `p` points to `len` writable elements, used by
            // no one else, for the duration of the call; it is not NULL (checked), `len > 0`.
            unsafe { core::slice::from_raw_parts_mut(p, len) }
        }
    }};
}

/// `&str` from a NUL-terminated C string argument: `Err(PASTRY_ERR_NULL_ARGUMENT)` for NULL,
/// `Err($bad)` when it is not UTF-8.
macro_rules! try_str {
    ($p:expr, $bad:expr) => {{
        let p: *const core::ffi::c_char = $p;
        if p.is_null() {
            return Err($crate::ffi::error::pastry_result::PASTRY_ERR_NULL_ARGUMENT);
        }
        // SAFETY: the header's contract: a string argument is NUL-terminated and readable for
        // the duration of the call; it is not NULL (checked).
        match unsafe { core::ffi::CStr::from_ptr(p) }.to_str() {
            Ok(s) => s,
            Err(_) => return Err($bad),
        }
    }};
}

/// An out-parameter: a non-NULL pointer that is written once, on success.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// `None` for NULL.
    pub(crate) fn new(p: *mut T) -> Option<Out<T>> {
        (!p.is_null()).then_some(Out(p))
    }

    /// Writes the value (without reading or dropping what was there).
    pub(crate) fn write(self, v: T) {
        // SAFETY: the pointer is not NULL (checked in `new`) and, by the header's contract,
        // valid for writes and suitably aligned for the duration of the call; `write` does not
        // read the old (possibly uninitialised) contents.
        unsafe { self.0.write(v) }
    }
}

/// Copies `s` and a NUL into `buf` (capacity `cap`), or `Err(PASTRY_ERR_BUFFER_TOO_SMALL)`
/// without writing anything.
pub(crate) fn write_c_str(s: &str, buf: &mut [c_char]) -> Result<(), pastry_result> {
    if buf.len() < s.len() + 1 {
        return Err(pastry_result::PASTRY_ERR_BUFFER_TOO_SMALL);
    }
    for (dst, &b) in buf.iter_mut().zip(s.as_bytes()) {
        *dst = b as c_char;
    }
    buf[s.len()] = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_codes() {
        let r = result("test", || panic!("boom"));
        assert_eq!(r, pastry_result::PASTRY_ERR_PANIC);
        assert_eq!(result("test", || Ok(())), pastry_result::PASTRY_OK);
        assert_eq!(
            result("test", || Err(pastry_result::PASTRY_ERR_TIMEOUT)),
            pastry_result::PASTRY_ERR_TIMEOUT
        );
        let v: u32 = run("test", || panic!("boom"));
        assert_eq!(v, 0);
    }

    #[test]
    fn c_strings_fit_or_nothing_is_written() {
        let mut buf = [7 as c_char; 4];
        assert_eq!(
            write_c_str("abcd", &mut buf),
            Err(pastry_result::PASTRY_ERR_BUFFER_TOO_SMALL)
        );
        assert_eq!(buf, [7; 4]);
        write_c_str("abc", &mut buf).unwrap();
        assert_eq!(buf, [97, 98, 99, 0]);
    }
}
