//! Build script: generates the C header from `src/ffi/` with cbindgen (version pinned in
//! Cargo.toml, options in `cbindgen.toml`).
//!
//! The header is written to `$OUT_DIR/pastry.h`. The committed `include/pastry.h` is the ABI
//! contract: `tests/header.rs` fails when it differs from the generated one. To update it, run
//! `PASTRY_UPDATE_HEADER=1 cargo build`, which also writes the generated header there.
// A build script reads cargo's environment by design (clippy.toml forbids it to the core).
#![allow(clippy::disallowed_methods)]

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-env-changed=PASTRY_UPDATE_HEADER");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header from src/ffi/");
    let generated = out_dir.join("pastry.h");
    bindings.write_to_file(&generated);
    if env::var_os("PASTRY_UPDATE_HEADER").is_some_and(|v| v == "1") {
        let committed = crate_dir.join("include/pastry.h");
        std::fs::create_dir_all(crate_dir.join("include")).expect("include/ can be created");
        std::fs::copy(&generated, &committed).expect("include/pastry.h can be written");
        println!("cargo:warning=updated {}", committed.display());
    }
}
