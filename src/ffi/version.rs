//! Version macros and functions: `PASTRY_VERSION_*`, `pastry_version`, `pastry_abi_version`.

use core::ffi::c_char;

/// The library's major version (the crate's semantic version) this header was generated for.
pub const PASTRY_VERSION_MAJOR: u32 = 0;
/// The library's minor version this header was generated for.
pub const PASTRY_VERSION_MINOR: u32 = 1;
/// The library's patch version this header was generated for.
pub const PASTRY_VERSION_PATCH: u32 = 0;
/// The ABI generation this header describes. It changes only if an exported function or type
/// is removed or changed incompatibly (the project's ABI check forbids that within a
/// generation); new functions keep it. Compare with `pastry_abi_version()` at run time to
/// detect a header/library mismatch.
pub const PASTRY_ABI_VERSION: u32 = 1;

/// The library's version as static NUL-terminated text, e.g. `"0.1.0"`. Do not free it.
#[no_mangle]
pub extern "C" fn pastry_version() -> *const c_char {
    ffi_boundary_value!("pastry_version", {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}

/// The ABI generation of the loaded library (`PASTRY_ABI_VERSION` of the header it was built
/// with). An application built against header generation `N` works with a library that reports
/// `N`.
#[no_mangle]
pub extern "C" fn pastry_abi_version() -> u32 {
    ffi_boundary_value!("pastry_abi_version", { PASTRY_ABI_VERSION })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_match_the_crate_version() {
        let v = format!("{PASTRY_VERSION_MAJOR}.{PASTRY_VERSION_MINOR}.{PASTRY_VERSION_PATCH}");
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        // SAFETY: pastry_version returns a static NUL-terminated string.
        let s = unsafe { core::ffi::CStr::from_ptr(pastry_version()) };
        assert_eq!(s.to_str().unwrap(), v);
        assert_eq!(pastry_abi_version(), PASTRY_ABI_VERSION);
    }
}
