//! The committed C header `include/pastry.h` must equal the one `build.rs` generates from
//! `src/ffi/` with the pinned cbindgen: the committed file is the contract C, C++ and Python
//! code is built against.

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/pastry.h"));
const COMMITTED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/pastry.h");

#[test]
fn committed_header_matches_the_generated_one() {
    let committed = std::fs::read_to_string(COMMITTED_PATH)
        .unwrap_or_else(|e| panic!("cannot read {COMMITTED_PATH}: {e}"));
    if committed == GENERATED {
        return;
    }
    let (line, want, have) = committed
        .lines()
        .zip(GENERATED.lines())
        .enumerate()
        .find(|(_, (c, g))| c != g)
        .map(|(i, (c, g))| (i + 1, g.to_string(), c.to_string()))
        .unwrap_or_else(|| {
            let n = committed.lines().count().min(GENERATED.lines().count());
            (n + 1, "(different length)".into(), String::new())
        });
    panic!(
        "include/pastry.h is out of date with src/ffi/ (first difference at line {line}:\n  \
         committed: {have}\n  generated: {want}).\n\
         Regenerate it with:\n\n    PASTRY_UPDATE_HEADER=1 cargo build\n\n\
         then review the diff (and `cargo test --test abi`) and commit include/pastry.h."
    );
}

#[test]
fn header_declares_the_documented_api() {
    for name in [
        "pastry_result_str",
        "pastry_version",
        "pastry_abi_version",
        "pastry_id_from_hex",
        "pastry_id_to_hex",
        "pastry_config_new",
        "pastry_config_free",
        "pastry_runtime_new",
        "pastry_runtime_free",
        "pastry_node_new",
        "pastry_node_new_driven",
        "pastry_node_join",
        "pastry_node_shutdown",
        "pastry_node_free",
        "pastry_route",
        "pastry_node_local_lookup",
        "pastry_node_neighbor_set",
        "pastry_node_replica_set",
        "pastry_node_range",
        "pastry_node_stats",
        "pastry_set_logger",
        "pastry_node_handle_datagram",
        "pastry_node_handle_timeout",
        "pastry_node_poll_transmit",
        "pastry_node_poll_timeout",
        "pastry_node_poll_event",
    ] {
        assert!(
            GENERATED.contains(&format!("{name}(")),
            "{name} is missing from the header"
        );
    }
    assert!(GENERATED.contains("typedef struct pastry_id {\n    /**"));
    assert!(GENERATED.contains("extern \"C\" {"), "cpp_compat is off");
    assert!(
        !GENERATED.contains("__int128"),
        "no 128-bit integers in the C ABI"
    );
}
