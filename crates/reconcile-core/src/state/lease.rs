//! Leases: one writer per stack without a lock server. A lease is one small
//! record beside the state, created only where none exists, renewed by its
//! holder while it works and removed at the end. A taker trusts no clock but
//! its own: a lease is taken over only once it has been seen unchanged for
//! the duration its holder declared.

use super::StateError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a lease lasts unless renewed, unless the run says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Who holds a stack, as written in the lease record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// Unique to this taking of the lease.
    pub id: String,
    /// The command, such as `apply` or `watch`.
    pub operation: String,
    pub host: String,
    pub pid: u32,
    /// The process's pid namespace and the kernel boot it runs under: two
    /// holders with the same value share one pid space, so one can tell
    /// whether the other's process still runs.
    #[serde(default)]
    pub pid_space: Option<String>,
    pub started: DateTime<Utc>,
    /// The holder's own clock at the last renewal: shown to people, never
    /// used to decide a takeover.
    pub renewed: DateTime<Utc>,
    /// The holder renews well within this; a taker waits this long.
    pub duration_secs: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`reconcile {}` (pid {} on {}, since {}, last renewed {})",
            self.operation,
            self.pid,
            self.host,
            self.started.format("%Y-%m-%dT%H:%M:%SZ"),
            self.renewed.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

impl Holder {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs.max(1))
    }

    /// What the holder of a record that cannot be read is called.
    pub fn describe(holder: Option<&Holder>) -> String {
        holder.map_or_else(|| "an unreadable lease record".into(), |h| h.to_string())
    }
}

/// A lease record as read, with the backend's version tag of it (an ETag).
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub body: String,
    pub tag: String,
}

impl Seen {
    pub fn holder(&self) -> Option<Holder> {
        serde_json::from_str(&self.body).ok()
    }
}

/// One stack's lease record in a backend. Every write is conditional, so two
/// takers racing for one record cannot both win.
pub trait LeaseCell: Send + Sync {
    fn location(&self) -> String;
    fn read(&self) -> Result<Option<Seen>, StateError>;
    /// Writes `body` where no lease exists: its tag, or None if one exists.
    fn create(&self, body: &str) -> Result<Option<String>, StateError>;
    /// Replaces the lease if it is still at `tag`: the new tag, or None.
    fn replace(&self, tag: &str, body: &str) -> Result<Option<String>, StateError>;
    /// Removes the lease if it is still at `tag`; false if it is not.
    fn remove(&self, tag: &str) -> Result<bool, StateError>;
}

/// Whether a holder's process runs, as far as the taker can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// Another machine or pid space: only the lease record can tell.
    Unknown,
}

/// What a would-be taker should do about a stack's lease now.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// No lease: create one.
    Free,
    /// Seen unchanged for its holder's whole duration: replace it.
    Lapsed { holder: Option<Holder>, tag: String },
    /// Held. `renewed` says the holder renewed it while this taker watched,
    /// `left` how long until it lapses if nothing changes.
    Held {
        holder: Option<Holder>,
        liveness: Liveness,
        renewed: bool,
        left: Duration,
    },
}

/// What one taker has seen of one lease, on its own clock.
#[derive(Clone, Debug, Default)]
pub struct Watcher {
    first_seen: Option<(String, Instant)>,
}

impl Watcher {
    /// Judges the lease as read at `now`. A record is given its holder's
    /// declared duration (`fallback` if unreadable) counted from when this
    /// watcher first saw that exact version of it.
    pub fn judge(
        &mut self,
        seen: Option<&Seen>,
        now: Instant,
        fallback: Duration,
        liveness: impl Fn(&Holder) -> Liveness,
    ) -> Verdict {
        let Some(seen) = seen else {
            self.first_seen = None;
            return Verdict::Free;
        };
        let renewed = match &self.first_seen {
            Some((tag, _)) if *tag == seen.tag => false,
            before => {
                let renewed = before.is_some();
                self.first_seen = Some((seen.tag.clone(), now));
                renewed
            }
        };
        let since = self.first_seen.as_ref().map_or(now, |(_, at)| *at);
        let holder = seen.holder();
        let duration = holder.as_ref().map_or(fallback, Holder::duration);
        let waited = now.saturating_duration_since(since);
        if waited >= duration {
            return Verdict::Lapsed {
                holder,
                tag: seen.tag.clone(),
            };
        }
        Verdict::Held {
            liveness: holder.as_ref().map_or(Liveness::Unknown, liveness),
            holder,
            renewed,
            left: duration - waited,
        }
    }

    /// Forgets what was seen (after taking or giving up the lease).
    pub fn reset(&mut self) {
        self.first_seen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, secs: u64) -> Seen {
        let h = Holder {
            id: id.into(),
            operation: "apply".into(),
            host: "h".into(),
            pid: 7,
            pid_space: None,
            started: Utc::now(),
            renewed: Utc::now(),
            duration_secs: secs,
        };
        let body = serde_json::to_string(&h).unwrap();
        Seen {
            tag: format!("tag-{id}"),
            body,
        }
    }

    #[test]
    fn a_lease_lapses_only_after_its_duration_unchanged_on_the_takers_clock() {
        let t0 = Instant::now();
        let mut w = Watcher::default();
        let a = record("a", 10);
        let unknown = |_: &Holder| Liveness::Unknown;
        assert!(matches!(
            w.judge(Some(&a), t0, DEFAULT_LEASE, unknown),
            Verdict::Held { renewed: false, left, .. } if left == Duration::from_secs(10)
        ));
        assert!(matches!(
            w.judge(
                Some(&a),
                t0 + Duration::from_secs(9),
                DEFAULT_LEASE,
                unknown
            ),
            Verdict::Held { renewed: false, .. }
        ));
        // A renewal restarts the count, whatever the holder's clock says.
        let renewed = Seen {
            tag: "tag-a2".into(),
            ..a.clone()
        };
        assert!(matches!(
            w.judge(
                Some(&renewed),
                t0 + Duration::from_secs(9),
                DEFAULT_LEASE,
                unknown
            ),
            Verdict::Held { renewed: true, .. }
        ));
        assert!(matches!(
            w.judge(
                Some(&renewed),
                t0 + Duration::from_secs(18),
                DEFAULT_LEASE,
                unknown
            ),
            Verdict::Held { .. }
        ));
        assert!(matches!(
            w.judge(Some(&renewed), t0 + Duration::from_secs(19), DEFAULT_LEASE, unknown),
            Verdict::Lapsed { tag, .. } if tag == "tag-a2"
        ));
        assert_eq!(
            w.judge(None, t0, DEFAULT_LEASE, unknown),
            Verdict::Free,
            "no record is free"
        );
    }

    #[test]
    fn an_unreadable_record_waits_the_fallback_and_names_no_holder() {
        let t0 = Instant::now();
        let mut w = Watcher::default();
        let junk = Seen {
            body: "{not json".into(),
            tag: "x".into(),
        };
        let fallback = Duration::from_secs(5);
        assert!(matches!(
            w.judge(Some(&junk), t0, fallback, |_| Liveness::Alive),
            Verdict::Held {
                holder: None,
                liveness: Liveness::Unknown,
                ..
            }
        ));
        assert!(matches!(
            w.judge(Some(&junk), t0 + fallback, fallback, |_| Liveness::Alive),
            Verdict::Lapsed { holder: None, .. }
        ));
        assert!(Holder::describe(None).contains("unreadable"));
    }
}
