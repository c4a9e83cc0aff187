//! The watch daemon's HTTP endpoint: Prometheus `/metrics`, `/healthz` and `/readyz`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StackLabel {
    pub stack: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    pub service: String,
    pub operation: String,
}

/// A stack's lease holder as this replica last saw it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabel {
    pub stack: String,
    /// `host:pid` of the holding watch replica, or what else holds it.
    pub holder: String,
    /// `host:pid` of the replica exporting this.
    pub replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub stack: String,
    pub action: String,
}

/// Everything `/metrics` exposes, plus what `/readyz` decides on.
pub struct Metrics {
    registry: Registry,
    pub drifted: Family<StackLabel, Gauge>,
    pub unmanaged: Family<StackLabel, Gauge>,
    pub cycles: Counter,
    pub cycles_failed: Counter,
    pub last_success: Gauge<f64, AtomicU64>,
    pub duration: Histogram,
    pub aws_calls: Family<CallLabel, Counter>,
    pub remediations: Family<ActionLabel, Counter>,
    /// 1 for the holder each stack's lease has now, as last seen.
    pub lease_holder: Family<LeaseLabel, Gauge>,
    /// The call counts already added to `aws_calls`: the counter keeps totals,
    /// the exporter adds what is new since the last cycle.
    seen_calls: Mutex<BTreeMap<(String, String), u64>>,
    ready: Mutex<Readiness>,
}

struct Readiness {
    last_ok: Option<Instant>,
    last_failed: bool,
    /// How old the last successful cycle may be before the daemon is not ready.
    stale_after: Duration,
}

impl Metrics {
    pub fn new(interval: Duration) -> Metrics {
        let mut registry = Registry::with_prefix("reconcile");
        let drifted = Family::<StackLabel, Gauge>::default();
        let unmanaged = Family::<StackLabel, Gauge>::default();
        let cycles = Counter::default();
        let cycles_failed = Counter::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        // Cycles take from well under a second (no-op, few kinds) to the length
        // of an RDS modification when remediating.
        let duration = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]);
        let aws_calls = Family::<CallLabel, Counter>::default();
        let remediations = Family::<ActionLabel, Counter>::default();
        let lease_holder = Family::<LeaseLabel, Gauge>::default();
        registry.register(
            "stack_lease_holder",
            "1 for the process holding each stack's lease (the replica that remediates it), as this replica last saw it",
            lease_holder.clone(),
        );
        registry.register(
            "drifted_resources",
            "Resources whose live configuration differs from the desired state, by stack",
            drifted.clone(),
        );
        registry.register(
            "unmanaged_resources",
            "Resources tagged with a watched stack but absent from its state, by stack",
            unmanaged.clone(),
        );
        registry.register("cycles", "Watch cycles run", cycles.clone());
        registry.register(
            "cycles_failed",
            "Watch cycles in which a stack could not be observed or repaired",
            cycles_failed.clone(),
        );
        registry.register(
            "last_successful_cycle_timestamp_seconds",
            "Unix time at which the last successful cycle ended",
            last_success.clone(),
        );
        registry.register(
            "cycle_duration_seconds",
            "Duration of watch cycles",
            duration.clone(),
        );
        registry.register(
            "aws_calls",
            "AWS API requests, retries included, by service and operation",
            aws_calls.clone(),
        );
        registry.register(
            "remediation_actions",
            "Resources created, updated or deleted by --remediate, by stack and action",
            remediations.clone(),
        );
        Metrics {
            registry,
            drifted,
            unmanaged,
            cycles,
            cycles_failed,
            last_success,
            duration,
            aws_calls,
            remediations,
            lease_holder,
            seen_calls: Mutex::new(BTreeMap::new()),
            ready: Mutex::new(Readiness {
                last_ok: None,
                last_failed: false,
                stale_after: interval * 3 + Duration::from_secs(30),
            }),
        }
    }

    /// Adds the calls made since the last time to the per-operation counters.
    pub fn record_calls(&self, now: &BTreeMap<(String, String), u64>) {
        let mut seen = self.seen_calls.lock().unwrap();
        for ((service, operation), n) in now {
            let before = seen.get(&(service.clone(), operation.clone())).copied();
            let delta = n - before.unwrap_or(0).min(*n);
            if delta > 0 {
                self.aws_calls
                    .get_or_create(&CallLabel {
                        service: service.clone(),
                        operation: operation.clone(),
                    })
                    .inc_by(delta);
            }
            seen.insert((service.clone(), operation.clone()), *n);
        }
    }

    pub fn cycle_done(&self, ok: bool, took: Duration) {
        self.cycles.inc();
        self.duration.observe(took.as_secs_f64());
        let mut r = self.ready.lock().unwrap();
        r.last_failed = !ok;
        if ok {
            r.last_ok = Some(Instant::now());
            self.last_success.set(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default(),
            );
        } else {
            self.cycles_failed.inc();
        }
    }

    /// Ready when the last cycle succeeded and is recent; the reason when not.
    pub fn readiness(&self) -> Result<(), String> {
        let r = self.ready.lock().unwrap();
        match r.last_ok {
            None => Err("no cycle has succeeded yet".into()),
            Some(_) if r.last_failed => Err("the last cycle failed".into()),
            Some(t) if t.elapsed() > r.stale_after => Err(format!(
                "the last successful cycle was {} s ago",
                t.elapsed().as_secs()
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

async fn metrics_page(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    match m.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_added_as_deltas_and_exported_with_labels() {
        let m = Metrics::new(Duration::from_secs(60));
        let mut calls = BTreeMap::new();
        calls.insert(("EC2".to_string(), "DescribeVpcs".to_string()), 2);
        m.record_calls(&calls);
        calls.insert(("EC2".to_string(), "DescribeVpcs".to_string()), 5);
        m.record_calls(&calls);
        let text = m.encode();
        assert!(
            text.contains(
                "reconcile_aws_calls_total{service=\"EC2\",operation=\"DescribeVpcs\"} 5"
            ),
            "{text}"
        );
    }

    #[test]
    fn ready_only_after_a_recent_successful_cycle() {
        let m = Metrics::new(Duration::from_secs(60));
        assert!(m.readiness().is_err());
        m.cycle_done(true, Duration::from_millis(10));
        assert!(m.readiness().is_ok());
        m.cycle_done(false, Duration::from_millis(10));
        assert_eq!(m.readiness().unwrap_err(), "the last cycle failed");
        let text = m.encode();
        assert!(text.contains("reconcile_cycles_total 2"), "{text}");
        assert!(text.contains("reconcile_cycles_failed_total 1"), "{text}");
    }
}
