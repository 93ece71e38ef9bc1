//! `pastry node`: one long-lived node (arrives with the runtime).

pub(crate) fn main(_args: &[String]) -> Result<(), String> {
    Err("`pastry node` needs the runtime, which is not built yet".into())
}
