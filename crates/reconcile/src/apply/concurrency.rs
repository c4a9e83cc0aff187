//! How many operations run at once against each AWS service. Each service
//! starts as wide as the cap allows (the graph usually allows less), is halved
//! when AWS throttles it, and grows back by one for about every `limit`
//! operations that finish without throttling: additive increase,
//! multiplicative decrease, per service, so a throttled RDS does not slow EC2.

use std::collections::HashMap;

#[derive(Debug)]
struct Lane {
    limit: f64,
    in_flight: usize,
    /// The service's throttle count when last looked at.
    throttles_seen: u64,
    /// Operations finished since the last cut: one cut per round of them, so
    /// one burst of throttling halves the limit once, not once per operation.
    finished_since_cut: usize,
}

#[derive(Debug)]
pub struct Limits {
    cap: usize,
    lanes: HashMap<String, Lane>,
}

impl Limits {
    pub fn new(cap: usize) -> Self {
        Limits {
            cap: cap.max(1),
            lanes: HashMap::new(),
        }
    }

    fn lane(&mut self, service: &str, throttles: u64) -> &mut Lane {
        let cap = self.cap as f64;
        self.lanes.entry(service.to_string()).or_insert(Lane {
            limit: cap,
            in_flight: 0,
            throttles_seen: throttles,
            finished_since_cut: usize::MAX,
        })
    }

    /// The current limit of a service.
    pub fn limit(&self, service: &str) -> usize {
        self.lanes
            .get(service)
            .map(|l| l.limit as usize)
            .unwrap_or(self.cap)
    }

    /// Whether another operation on `service` may start now. `throttles` is the
    /// service's throttle count so far (seeded the first time a service is seen).
    pub fn has_room(&mut self, service: &str, throttles: u64) -> bool {
        let l = self.lane(service, throttles);
        l.in_flight < (l.limit as usize).max(1)
    }

    pub fn start(&mut self, service: &str, throttles: u64) {
        self.lane(service, throttles).in_flight += 1;
    }

    /// An operation on `service` ended; `throttles` is the service's throttle
    /// count now. Returns the new limit when it changed.
    pub fn finish(&mut self, service: &str, throttles: u64) -> Option<usize> {
        let cap = self.cap as f64;
        let l = self.lane(service, throttles);
        l.in_flight = l.in_flight.saturating_sub(1);
        l.finished_since_cut = l.finished_since_cut.saturating_add(1);
        let before = l.limit as usize;
        if throttles > l.throttles_seen {
            l.throttles_seen = throttles;
            if l.finished_since_cut >= before.max(1) {
                l.limit = (l.limit / 2.0).max(1.0);
                l.finished_since_cut = 0;
            }
        } else {
            l.limit = (l.limit + 1.0 / l.limit).min(cap);
        }
        let after = l.limit as usize;
        (after != before).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_starts_at_the_cap_and_fills_up_to_it() {
        let mut l = Limits::new(3);
        for _ in 0..3 {
            assert!(l.has_room("EC2", 0));
            l.start("EC2", 0);
        }
        assert!(!l.has_room("EC2", 0));
        assert!(l.has_room("RDS", 0), "services are limited apart");
    }

    #[test]
    fn throttling_halves_once_per_burst_and_success_grows_it_back() {
        let mut l = Limits::new(64);
        for _ in 0..64 {
            l.start("EC2", 0);
        }
        // A burst: every operation in flight saw throttling.
        assert_eq!(l.finish("EC2", 5), Some(32));
        for t in 6..20 {
            assert_eq!(l.finish("EC2", t), None, "one cut per round");
        }
        assert_eq!(l.limit("EC2"), 32);
        // Still throttled a round later: halved again, down to 1 at least.
        for t in 20..52 {
            l.finish("EC2", t);
        }
        assert_eq!(l.limit("EC2"), 16);
        for _ in 0..2000 {
            l.start("EC2", 51);
            l.finish("EC2", 51);
        }
        assert_eq!(l.limit("EC2"), 64, "regrown to the cap, never past it");
        assert_eq!(l.limit("RDS"), 64);
    }

    #[test]
    fn the_limit_never_falls_below_one() {
        let mut l = Limits::new(2);
        let mut t = 0;
        for _ in 0..20 {
            t += 1;
            l.start("ECS", t - 1);
            l.finish("ECS", t);
        }
        assert_eq!(l.limit("ECS"), 1);
        assert!(l.has_room("ECS", t));
    }
}
