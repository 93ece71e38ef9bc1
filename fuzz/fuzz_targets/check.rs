//! The check shared by the `decode` fuzz target and the main crate's `tests/fuzz_corpus.rs`
//! (which includes this file with `#[path]`, so stable CI replays the corpus through it).

use pastry::wire::{decode, encode, TRAILER_LEN};

/// Decodes `data` (which must not panic); when that succeeds, re-encodes the result and requires
///
/// - the same bytes back, the crc aside (the encoding is canonical; under `cfg(fuzzing)` the
///   decoder does not check the crc, so the input's may be wrong),
/// - the same header and message from decoding those bytes again.
pub(crate) fn check_decode(data: &[u8]) {
    let Ok((header, msg)) = decode(data) else {
        return;
    };
    assert_eq!(header.msg_type, msg.message_type());
    let mut out = Vec::new();
    encode(header.network, header.sender, &msg, &mut out);
    assert_eq!(out.len(), data.len(), "re-encoded length differs");
    let covered = out.len() - TRAILER_LEN;
    assert_eq!(out[..covered], data[..covered], "re-encoded bytes differ");
    if !cfg!(fuzzing) {
        assert_eq!(out, data, "re-encoded crc differs from the checked one");
    }
    assert_eq!(
        decode(&out),
        Ok((header, msg)),
        "re-encoded frame decodes differently"
    );
}
