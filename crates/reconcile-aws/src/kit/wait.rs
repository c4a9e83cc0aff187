//! The one waiter every kind uses: poll with exponential backoff until AWS
//! reports the goal, report each new status once, stop at once on a status AWS
//! will not leave by itself, and time out with the kind's `timeouts` and what
//! to do next. Tested with staged SDK responses in the kinds that use it.

use super::duration::{fmt_duration, parse_duration};
use super::{ProviderError, StatusSink};
use reconcile_core::model::{Fields, Value};
use std::future::Future;
use std::time::Duration;

/// How often to poll: `first`, doubling up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

/// How long each phase may wait, from a kind's `timeouts` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl Timeouts {
    /// Reads `timeouts` from fields (declared, or the last applied inputs) over
    /// the kind's defaults; a bad value names the address.
    pub fn of(
        address: &str,
        fields: Option<&Fields>,
        defaults: Timeouts,
    ) -> Result<Timeouts, ProviderError> {
        let mut t = defaults;
        let Some(m) = fields
            .and_then(|f| f.get("timeouts"))
            .and_then(Value::as_map)
        else {
            return Ok(t);
        };
        for (k, slot) in [
            ("create", &mut t.create),
            ("update", &mut t.update),
            ("delete", &mut t.delete),
        ] {
            if let Some(v) = m.get(k) {
                let bad = |e: String| ProviderError::InvalidInput(format!("{address}: {e}"));
                let s = v
                    .as_str()
                    .ok_or_else(|| bad(format!("timeouts.{k} must be a duration like \"40m\"")))?;
                *slot = parse_duration(s).map_err(|e| bad(format!("timeouts.{k}: {e}")))?;
            }
        }
        Ok(t)
    }
}

/// One look at something being waited on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The goal is reached; the text is the last status to report.
    Done(String),
    /// Not yet: what AWS says meanwhile.
    Pending(String),
    /// AWS will not get there by itself: why.
    Failed(String),
}

/// One wait: whose, which `timeouts` key bounds it, how long, how often, where
/// to report, and what the reader can do when it fails or times out.
pub struct Wait<'a> {
    pub address: &'a str,
    /// The `timeouts` key: "create", "update" or "delete".
    pub phase: &'static str,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub status: &'a StatusSink,
    /// Said after a status AWS will not leave ("look at its events in the console...").
    pub when_failed: &'a str,
    /// Said after a timeout: what becomes of the resource.
    pub when_timed_out: &'a str,
}

/// Polls `look` until it reports `Done`, with exponential backoff, reporting
/// every new status once. Fails at once on `Failed`, and after the timeout
/// saying what is left and what to do. Errors of `look` end the wait as they are.
pub async fn wait<F, Fut>(w: &Wait<'_>, mut look: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Progress, ProviderError>>,
{
    let deadline = tokio::time::Instant::now() + w.timeout;
    let mut delay = w.backoff.first;
    let mut last: Option<String> = None;
    loop {
        let p = look().await?;
        let status = match &p {
            Progress::Done(s) | Progress::Pending(s) | Progress::Failed(s) => s.clone(),
        };
        if last.as_deref() != Some(status.as_str()) {
            w.status.report(w.address, &status);
        }
        match p {
            Progress::Done(_) => return Ok(()),
            Progress::Failed(why) => {
                return Err(ProviderError::Other(format!(
                    "{}: {why}; {}",
                    w.address, w.when_failed
                )))
            }
            Progress::Pending(_) => last = Some(status),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(ProviderError::Other(format!(
                "{}: timed out after {} (timeouts.{}) with status `{}`; {}: raise `timeouts.{}` \
                 if it needs longer and apply again",
                w.address,
                fmt_duration(w.timeout),
                w.phase,
                last.unwrap_or_default(),
                w.when_timed_out,
                w.phase,
            )));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(w.backoff.max);
    }
}

/// How often and how long to poll for a condition that has no status to show.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    pub backoff: Backoff,
    pub timeout: Duration,
}

/// Calls `check` until it answers true, backing off as `p` says. `Ok(false)`
/// when the timeout passed first: the caller decides whether that is an error.
pub async fn poll_until<F, Fut>(p: &Poll, mut check: F) -> Result<bool, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ProviderError>>,
{
    let deadline = tokio::time::Instant::now() + p.timeout;
    let mut delay = p.backoff.first;
    loop {
        if check().await? {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(p.backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn fast(status: &StatusSink, timeout: Duration) -> Wait<'_> {
        Wait {
            address: "kind.x",
            phase: "update",
            timeout,
            backoff: Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
            status,
            when_failed: "fix the cause",
            when_timed_out: "AWS carries on with it",
        }
    }

    fn recorder() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (
            StatusSink::new(move |_, st| s.lock().unwrap().push(st.to_string())),
            seen,
        )
    }

    #[tokio::test]
    async fn reports_each_new_status_once_until_done() {
        let (sink, seen) = recorder();
        let mut answers = vec![
            Progress::Pending("modifying".into()),
            Progress::Pending("modifying".into()),
            Progress::Pending("backing-up".into()),
            Progress::Done("available".into()),
        ]
        .into_iter();
        wait(&fast(&sink, Duration::from_secs(5)), || {
            let a = answers.next().unwrap();
            async move { Ok(a) }
        })
        .await
        .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["modifying", "backing-up", "available"]
        );
    }

    #[tokio::test]
    async fn a_status_aws_will_not_leave_fails_at_once_and_a_timeout_names_the_setting() {
        let (sink, _) = recorder();
        let e = wait(&fast(&sink, Duration::from_secs(5)), || async {
            Ok(Progress::Failed("status `storage-full`".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("kind.x: status `storage-full`; fix the cause"),
            "{e}"
        );

        let e = wait(&fast(&sink, Duration::from_millis(20)), || async {
            Ok(Progress::Pending("creating".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("timed out after 0s (timeouts.update) with status `creating`"),
            "{e}"
        );
        assert!(e.contains("raise `timeouts.update`"), "{e}");
    }

    #[test]
    fn timeouts_read_declared_values_over_the_kinds_defaults() {
        let d = Timeouts {
            create: Duration::from_secs(60),
            update: Duration::from_secs(120),
            delete: Duration::from_secs(180),
        };
        assert_eq!(Timeouts::of("k.x", None, d).unwrap(), d);
        let mut f = Fields::new();
        let mut m = indexmap::IndexMap::new();
        m.insert("update".to_string(), Value::str("2h"));
        f.insert("timeouts".into(), Value::Map(m));
        let t = Timeouts::of("k.x", Some(&f), d).unwrap();
        assert_eq!(t.update, Duration::from_secs(7200));
        assert_eq!(t.create, d.create);
        let mut m = indexmap::IndexMap::new();
        m.insert("delete".to_string(), Value::Int(5));
        f.insert("timeouts".into(), Value::Map(m));
        let e = Timeouts::of("k.x", Some(&f), d).unwrap_err().to_string();
        assert!(e.contains("k.x: timeouts.delete must be a duration"), "{e}");
    }

    #[tokio::test]
    async fn polling_backs_off_and_gives_up_at_the_deadline() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let p = Poll {
            backoff: Backoff {
                first: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            timeout: Duration::from_secs(5),
        };
        let done = poll_until(&p, || async {
            Ok(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 3)
        })
        .await
        .unwrap();
        assert!(done);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);

        let p = Poll {
            timeout: Duration::from_millis(60),
            ..p
        };
        let started = std::time::Instant::now();
        assert!(!poll_until(&p, || async { Ok(false) }).await.unwrap());
        assert!(started.elapsed() < Duration::from_secs(2));

        let err = poll_until(&p, || async { Err(ProviderError::Other("boom".into())) }).await;
        assert!(err.is_err());
    }
}
