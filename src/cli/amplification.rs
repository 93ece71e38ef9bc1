//! `pastry amplification`: the amplification table. For every hostile datagram of
//! [`pastry::sim::hostile::attacks`] (forged, reflected, from a hostile member), sent once and as
//! a flood to a settled 8-node cluster in the simulator, what left the cluster: bytes out per
//! byte in and datagrams out per datagram in, the largest datagram out against the largest in,
//! datagrams to the victim, node 0's heap growth, and the legitimate traffic delivered meanwhile.

use clap::builder::RangedU64ValueParser;
use clap::Args;
use pastry::sim::hostile::{attacks, measure, Source};
use pastry::Duration;
use serde::Serialize;

use super::{args, out, Failure};

/// Options of `pastry amplification`.
#[derive(Debug, Args)]
pub(crate) struct AmplificationArgs {
    /// Datagrams of each attack in the flood run.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = RangedU64ValueParser::<u64>::new().range(1..=10_000))]
    flood: u64,
    /// Time between two datagrams of the flood, 1us..=1s (a bare number is milliseconds).
    #[arg(long, value_name = "TIME", default_value = "1ms", value_parser = gap)]
    gap: std::time::Duration,
    /// One JSON object per attack, one per line.
    #[arg(long)]
    json: bool,
}

/// `--gap`: a duration of 1 µs to 1 s (the simulated flood stays short).
fn gap(s: &str) -> Result<std::time::Duration, String> {
    let d = args::millis(s)?;
    if d < std::time::Duration::from_micros(1) || d > std::time::Duration::from_secs(1) {
        return Err(format!("{s}: the gap must be 1us..=1s"));
    }
    Ok(d)
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    attack: &'static str,
    source: &'static str,
    single_bytes_ratio: f64,
    single_dgrams_ratio: f64,
    single_largest_out: u64,
    single_largest_in: u64,
    flood_bytes_ratio: f64,
    flood_dgrams_ratio: f64,
    flood_to_victim: u64,
    flood_heap_growth_bytes: u64,
    flood_heap_after_bytes: i64,
    legit_sent: u64,
    legit_delivered: u64,
}

pub(crate) fn main(a: &AmplificationArgs) -> Result<(), Failure> {
    let gap = Duration(a.gap.as_micros() as u64);
    if !a.json {
        out(&format!(
            "{:<40} {:<8} {:>9} {:>7} {:>11} | flood of {}: {:>7} {:>7} {:>6} {:>9} {:>8}\n",
            "attack (to node 0 of 8)",
            "from",
            "B out/in",
            "dg o/i",
            "max out/in",
            a.flood,
            "B o/i",
            "dg o/i",
            "victim",
            "heap max",
            "legit"
        ));
    }
    for attack in attacks() {
        let one = measure(&attack, 1, Duration::from_millis(1));
        let flood = measure(&attack, a.flood, gap);
        let row = Row {
            attack: attack.name,
            source: match attack.source {
                Source::Attacker => "attacker",
                Source::Spoofed => "spoofed",
                Source::Member => "member",
            },
            single_bytes_ratio: one.byte_ratio(),
            single_dgrams_ratio: one.dgram_ratio(),
            single_largest_out: one.largest_out,
            single_largest_in: one.largest_in,
            flood_bytes_ratio: flood.byte_ratio(),
            flood_dgrams_ratio: flood.dgram_ratio(),
            flood_to_victim: flood.dgrams_to_victim,
            flood_heap_growth_bytes: flood.heap_growth,
            flood_heap_after_bytes: flood.heap_after,
            legit_sent: flood.legit_sent,
            legit_delivered: flood.legit_delivered,
        };
        if a.json {
            let line = serde_json::to_string(&row).map_err(|e| e.to_string())?;
            out(&format!("{line}\n"));
        } else {
            out(&format!(
                "{:<40} {:<8} {:>9.3} {:>7.3} {:>5}/{:<5} | {:>17.3} {:>7.3} {:>6} {:>8}K {:>4}/{:<4}\n",
                row.attack,
                row.source,
                row.single_bytes_ratio,
                row.single_dgrams_ratio,
                row.single_largest_out,
                row.single_largest_in,
                row.flood_bytes_ratio,
                row.flood_dgrams_ratio,
                row.flood_to_victim,
                row.flood_heap_growth_bytes / 1024,
                row.legit_delivered,
                row.legit_sent,
            ));
        }
    }
    Ok(())
}
