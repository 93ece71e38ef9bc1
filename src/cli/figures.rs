//! The figures `--svg` draws for `pastry ring` and `pastry sim`: the hop distribution against
//! log16 N, and the latency CDF (built on [`pastry::plot`]).

use std::path::Path;

use pastry::plot::{BarChart, Figure, LineChart, Panel, Series};
use pastry::sim::Histogram;

/// Points of the CDF of `latencies_us`, in milliseconds (at most ~500 points).
pub(crate) fn cdf_ms(latencies_us: impl Iterator<Item = u64>) -> Vec<(f64, f64)> {
    let mut v: Vec<u64> = latencies_us.collect();
    v.sort_unstable();
    let n = v.len();
    let step = (n / 500).max(1);
    let mut points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (v[i] as f64 / 1e3, i as f64 / n as f64))
        .collect();
    if let Some(&last) = v.last() {
        points.push((last as f64 / 1e3, 1.0));
    }
    points
}

/// Points of the CDF of a latency histogram in µs, in milliseconds (its percentiles).
pub(crate) fn histogram_cdf_ms(h: &Histogram) -> Vec<(f64, f64)> {
    if h.count() == 0 {
        return Vec::new();
    }
    (0..=200)
        .map(|i| {
            let q = f64::from(i) / 200.0;
            (h.quantile(q) as f64 / 1e3, q)
        })
        .collect()
}

/// Draws the hop distribution (`hops[h]` lookups took `h` hops) with markers at its mean and at
/// `log16_n`,
/// beside the latency CDF, into the SVG file `path`.
pub(crate) fn routes(
    path: &Path,
    title: &str,
    hops: &[u64],
    log16_n: f64,
    latency_cdf_ms: &[(f64, f64)],
) -> Result<(), String> {
    let total: u64 = hops.iter().sum();
    let weighted: u64 = hops.iter().enumerate().map(|(h, &c)| h as u64 * c).sum();
    let mean = weighted as f64 / total.max(1) as f64;
    let bars = hops
        .iter()
        .enumerate()
        .map(|(h, &c)| (h as f64, c as f64 / total.max(1) as f64))
        .collect();
    let fig = Figure {
        width: 1100,
        height: 420,
        panels: vec![
            Panel::Bars(BarChart {
                title: format!("{title}: hops"),
                x_label: "hops".into(),
                y_label: "fraction of deliveries".into(),
                bars,
                markers: vec![(log16_n, "log16 N".into()), (mean, "mean".into())],
            }),
            Panel::Lines(LineChart {
                title: "latency CDF".into(),
                x_label: "source-to-root latency (ms)".into(),
                y_label: "fraction of deliveries".into(),
                series: vec![Series {
                    label: "latency".into(),
                    points: latency_cdf_ms.to_vec(),
                }],
            }),
        ],
    };
    fig.save_svg(path).map_err(|e| format!("--svg: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdfs_end_at_one() {
        let c = cdf_ms([3000u64, 1000, 2000].into_iter());
        assert_eq!(c.first(), Some(&(1.0, 0.0)));
        assert_eq!(c.last(), Some(&(3.0, 1.0)));
        assert!(cdf_ms(std::iter::empty()).is_empty());
        let mut h = Histogram::with_width(100);
        for v in [100, 200, 300] {
            h.add(v);
        }
        let c = histogram_cdf_ms(&h);
        assert_eq!(c.last().unwrap().1, 1.0);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
