//! The executor on fake kinds: a panicking step fails alone, errors keep their
//! class, and a cancellation lets what is in flight finish and starts nothing new.

use super::events::{Discard, ErrorClass};
use super::*;
use crate::state::LocalStore;
use async_trait::async_trait;
use reconcile_aws::{AwsOptions, CallCounter, Provider, ProviderError};
use reconcile_core::model::schema::{Field, Ty};
use reconcile_core::model::Schema;
use reconcile_core::plan::{FieldChange, Observed};
use std::time::Duration;
use tokio::sync::Notify;

static SCHEMA: Schema = Schema {
    kind: "fake",
    doc: "",
    fields: &[Field::new("size", Ty::Int, "").range(1, 10)],
    attributes: &[("id", "")],
    taggable: false,
};

/// Creates succeed at once, except: `fake.boom` panics, `fake.slow` waits for
/// `release`, and `fake.throttled` is refused the way AWS throttles.
struct Fake {
    release: Arc<Notify>,
    slow_started: Arc<Notify>,
}

#[async_trait]
impl Provider for Fake {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }
    async fn observe(
        &self,
        _: &Cx,
        _: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        Ok(HashMap::new())
    }
    async fn find_tagged(
        &self,
        _: &Cx,
        _: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }
    async fn create(&self, _: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        match want.address {
            "fake.boom" => panic!("a bug in a kind"),
            "fake.throttled" => return Err(ProviderError::Throttled("Rate exceeded".into())),
            "fake.big" => panic!("an out-of-range value reached the kind"),
            "fake.slow" => {
                self.slow_started.notify_one();
                self.release.notified().await;
            }
            _ => {}
        }
        let id = format!("id-{}", want.address);
        let mut attributes = Fields::new();
        attributes.insert("id".into(), Value::str(id.clone()));
        Ok(Observed {
            id,
            fields: Fields::new(),
            attributes,
            tags: IndexMap::new(),
        })
    }
    async fn update(
        &self,
        _: &Cx,
        live: &Observed,
        _: &Desired<'_>,
        _: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        Ok(live.clone())
    }
    async fn delete(&self, _: &Cx, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn create(addr: &str, deps: &[&str]) -> Step {
    let mut s = tests::step(addr, Action::Create, deps, true);
    s.id = None;
    s
}

struct Run {
    dir: tempfile::TempDir,
    release: Arc<Notify>,
    slow_started: Arc<Notify>,
    cancel: CancellationToken,
}

impl Run {
    fn new() -> Run {
        Run {
            dir: tempfile::tempdir().unwrap(),
            release: Arc::new(Notify::new()),
            slow_started: Arc::new(Notify::new()),
            cancel: CancellationToken::new(),
        }
    }

    fn store(&self) -> LocalStore {
        LocalStore::new(self.dir.path(), "t")
    }

    async fn execute(&self, steps: Vec<Step>) -> ApplyReport {
        let fake: Arc<dyn Provider> = Arc::new(Fake {
            release: self.release.clone(),
            slow_started: self.slow_started.clone(),
        });
        // Nothing here reaches AWS: the fake kind never uses its client.
        let opts = AwsOptions {
            region: "us-east-1".into(),
            endpoint_url: Some("http://127.0.0.1:9".into()),
        };
        let cx = Cx::connect(&opts, "t", CallCounter::default()).await;
        let options = ApplyOptions {
            parallelism: Some(4),
            cancel: self.cancel.clone(),
            events: Arc::new(Discard),
        };
        execute(
            tests::plan(steps),
            State::empty("t", "us-east-1"),
            cx,
            Arc::new(Registry::of(vec![("fake", fake)])),
            Arc::new(self.store()),
            options,
        )
        .await
        .expect("the run itself does not fail")
    }
}

#[tokio::test]
async fn a_panicking_step_fails_alone_and_keeps_its_journal_entry() {
    let run = Run::new();
    let rep = run
        .execute(vec![
            create("fake.boom", &[]),
            create("fake.after_boom", &["fake.boom"]),
            create("fake.ok", &[]),
        ])
        .await;
    assert_eq!(rep.created, 1, "{rep:?}");
    assert_eq!(rep.failed.len(), 1, "{rep:?}");
    let (addr, err) = &rep.failed[0];
    assert_eq!(addr, "fake.boom");
    assert_eq!(err.class, ErrorClass::Other);
    assert!(err.message.contains("panicked"), "{}", err.message);
    assert_eq!(rep.skipped, ["fake.after_boom"]);

    let st = run.store().load("us-east-1").unwrap();
    assert!(st.resources.contains_key("fake.ok"));
    assert!(!st.resources.contains_key("fake.boom"));
    // The next run learns that a create was in flight and retries it with its token.
    assert!(
        st.journal
            .iter()
            .any(|j| j.address == "fake.boom" && j.op == JournalOp::Create),
        "{:?}",
        st.journal
    );
}

#[tokio::test]
async fn a_failed_step_keeps_the_class_of_its_aws_error() {
    let run = Run::new();
    let rep = run.execute(vec![create("fake.throttled", &[])]).await;
    let (addr, err) = &rep.failed[0];
    assert_eq!(addr, "fake.throttled");
    assert_eq!(err.class, ErrorClass::Throttled);
    assert!(err.message.contains("Rate exceeded"), "{}", err.message);
}

#[tokio::test]
async fn a_resolved_value_outside_its_range_is_refused_before_the_kind_is_called() {
    let run = Run::new();
    let mut step = create("fake.big", &[]);
    step.desired = Some([("size".to_string(), Value::Int(20))].into_iter().collect());
    let rep = run.execute(vec![step]).await;
    let (addr, err) = &rep.failed[0];
    assert_eq!(addr, "fake.big");
    assert_eq!(err.class, ErrorClass::InvalidInput);
    assert_eq!(err.message, "fake.big: size is 20; AWS takes 1 to 10");
}

#[tokio::test]
async fn cancelling_finishes_what_is_in_flight_and_starts_nothing_new() {
    let run = Run::new();
    let (cancel, release, started) = (
        run.cancel.clone(),
        run.release.clone(),
        run.slow_started.clone(),
    );
    tokio::spawn(async move {
        started.notified().await;
        cancel.cancel();
        // Give the executor a moment to see the cancellation before the
        // in-flight create returns.
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.notify_one();
    });
    let rep = tokio::time::timeout(
        Duration::from_secs(10),
        run.execute(vec![
            create("fake.slow", &[]),
            create("fake.next", &["fake.slow"]),
        ]),
    )
    .await
    .expect("a cancelled run ends");
    assert!(rep.interrupted);
    assert_eq!(rep.created, 1, "the create in flight finished: {rep:?}");
    assert_eq!(rep.not_started, ["fake.next"]);
    let st = run.store().load("us-east-1").unwrap();
    assert!(st.resources.contains_key("fake.slow"));
    assert!(st.journal.is_empty(), "{:?}", st.journal);
}
