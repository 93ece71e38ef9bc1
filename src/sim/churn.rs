//! Churn: Poisson arrivals and departures after exponential sessions.

use super::{Churn, Ev, Sim};
use crate::time::{Duration, Instant};

impl Sim {
    /// Starts churn until `until`: departures at about `live / mean_session` (a fraction
    /// `graceful` of them leave gracefully, the rest crash) and arrivals at the same rate, each
    /// event a departure with probability `live / (live + target)`, so the live population
    /// stays at its current size (the target) in expectation.
    pub fn start_churn(&mut self, mean_session: Duration, graceful: f64, until: Instant) {
        self.churn = Some(Churn {
            mean_session,
            graceful,
            until,
            target: self.oracle.len().max(2),
        });
        self.schedule_churn();
    }

    fn schedule_churn(&mut self) {
        let Some(c) = self.churn else {
            return;
        };
        // Departures and arrivals each at rate target / mean_session.
        let rate = 2.0 * c.target as f64 / c.mean_session.as_secs_f64().max(1e-6);
        let gap = Duration((self.rng.exp(1.0 / rate) * 1e6) as u64 + 1);
        let at = self.now + gap;
        if at <= c.until {
            self.push(at, Ev::Churn);
        } else {
            self.churn = None;
        }
    }

    pub(super) fn churn_step(&mut self) {
        let Some(c) = self.churn else {
            return;
        };
        let live = self.live_count;
        // Departures and arrivals are equally likely at the target size; below it arrivals win,
        // above it departures, so the population stays at the target in expectation (failed
        // joins would otherwise let it drift down).
        let p_depart = live as f64 / (live + c.target) as f64;
        let depart = self.rng.chance(p_depart) && live > 2;
        if depart || live > c.target * 2 {
            // Any live node may end its session, joining or not.
            if let Some(v) = self.random_live() {
                if self.rng.chance(c.graceful) {
                    self.leave(v);
                    self.report.left += 1;
                } else {
                    self.crash(v);
                }
            }
        } else {
            let i = self.add_node(None);
            let boot = self.bootstrap_for(i);
            self.start(i, boot);
        }
        self.schedule_churn();
    }
}
