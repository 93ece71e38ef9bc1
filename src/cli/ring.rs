//! `pastry ring`: a local overlay on loopback (arrives with the runtime).

pub(crate) fn main(_args: &[String]) -> Result<(), String> {
    Err("`pastry ring` needs the runtime, which is not built yet".into())
}
