//! The S3 state backend. Under `s3://bucket/prefix`, a stack keeps
//! `<prefix>/<stack>.json` (the snapshot; the bucket's versions are its
//! history), one object per journal step under
//! `<prefix>/journal/<stack>/<snapshot serial>/<serial>`, and its lease at
//! `<prefix>/leases/<stack>.lease`. Every write is conditional: the snapshot
//! on the ETag this store read (or on there being none), a journal step on
//! its key being new, so a writer whose lease lapsed never overwrites newer
//! state. Steps written against an older snapshot are ignored by readers and
//! removed at the next fold.
//!
//! `StateStore` is synchronous, and is called from inside the executor's
//! runtime; S3 calls therefore run on a small runtime of their own.

use super::Reach;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use reconcile_core::state::lease::{LeaseCell, Seen};
use reconcile_core::state::{
    parse_any_state, parse_state, Delta, JournalStep, State, StateError, StateStore, Version,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Journal steps between two folds, at the least (as the local backend).
const FOLD_AFTER: usize = 256;

/// Journal steps read at once when loading.
const READ_AT_ONCE: usize = 16;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("state-s3")
            .enable_all()
            .build()
            .expect("the state runtime starts")
    })
}

/// Runs `f` on the state runtime and waits for it, from any thread.
fn block<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the state runtime answers")
}

/// Clients by endpoint and region.
type Clients = Mutex<HashMap<(Option<String>, String), aws_sdk_s3::Client>>;

/// One client per endpoint and region, for the life of the process.
fn client(reach: &Reach) -> aws_sdk_s3::Client {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let key = (reach.endpoint_url.clone(), reach.region.clone());
    let clients = CLIENTS.get_or_init(Mutex::default);
    if let Some(c) = clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return c.clone();
    }
    let (endpoint, region) = key.clone();
    let made = block(async move {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .retry_config(reconcile_aws::kit::retry_config());
        if let Some(url) = &endpoint {
            loader = loader.endpoint_url(url.clone());
        }
        let shared = loader.load().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(endpoint.is_some())
                .build(),
        )
    });
    clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, made.clone());
    made
}

/// How an S3 call went, beyond success.
enum Failed {
    /// 404: no such key (or version).
    Missing,
    /// 412 (or 409, a concurrent conditional write): the condition did not hold.
    Precondition,
    Other(String),
}

impl Failed {
    fn message(self) -> String {
        match self {
            Failed::Other(m) => m,
            Failed::Missing => "not found".into(),
            Failed::Precondition => "a condition failed".into(),
        }
    }
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(e: SdkError<E>) -> Failed {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (status, e.code()) {
        (Some(404), _) | (_, Some("NoSuchKey" | "NoSuchVersion")) => Failed::Missing,
        (Some(412 | 409), _) | (_, Some("PreconditionFailed")) => Failed::Precondition,
        _ => Failed::Other(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()),
    }
}

#[derive(Clone)]
struct Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Objects {
    /// The object's text and ETag, or None if there is none.
    async fn get(
        &self,
        key: String,
        version: Option<String>,
    ) -> Result<Option<(String, String)>, Failed> {
        let got = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_version_id(version)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return match failed(e) {
                    Failed::Missing => Ok(None),
                    f => Err(f),
                }
            }
        };
        let tag = got.e_tag().unwrap_or_default().to_string();
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| Failed::Other(e.to_string()))?
            .into_bytes();
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| Failed::Other(e.to_string()))?;
        Ok(Some((text, tag)))
    }

    /// Writes `body` if the condition holds: `Some(tag)` = still at that
    /// ETag, `None` = no object yet. Answers the new ETag, or None if the
    /// condition failed.
    async fn put(
        &self,
        key: String,
        body: Vec<u8>,
        at: Option<String>,
    ) -> Result<Option<String>, Failed> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        put = match at {
            Some(tag) => put.if_match(tag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
            Err(e) => match failed(e) {
                Failed::Precondition | Failed::Missing => Ok(None),
                f => Err(f),
            },
        }
    }

    /// Whether the object is still at `etag` (HEAD with If-Match).
    async fn unchanged(&self, key: String, etag: Option<String>) -> Result<bool, Failed> {
        let Some(etag) = etag else {
            return Ok(true);
        };
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match failed(e) {
                Failed::Precondition | Failed::Missing => Ok(false),
                f => Err(f),
            },
        }
    }

    async fn list(&self, prefix: String) -> Result<Vec<String>, Failed> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    /// Deletes these keys (garbage: a failure is only worth a warning).
    async fn delete_all(&self, keys: Vec<String>) {
        for chunk in keys.chunks(1000) {
            let objects: Vec<_> = chunk
                .iter()
                .filter_map(|k| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(k)
                        .build()
                        .ok()
                })
                .collect();
            let Ok(delete) = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
            else {
                continue;
            };
            if let Err(e) = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
            {
                tracing::warn!(
                    "cannot remove folded journal steps: {}; they are ignored and go at the next fold",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                );
            }
        }
    }
}

/// What this store last read or wrote of the stack's state.
#[derive(Default)]
struct Head {
    loaded: bool,
    /// The snapshot's ETag, None when there was none.
    etag: Option<String>,
    /// The snapshot's serial, which names the journal its steps go to.
    base: u64,
    /// Steps recorded since the snapshot.
    steps: usize,
    /// Journal keys the next fold removes.
    garbage: Vec<String>,
}

/// S3 backend for one stack's state.
#[derive(Clone)]
pub struct S3Store {
    objects: Objects,
    prefix: String,
    stack: String,
    head: Arc<Mutex<Head>>,
}

impl S3Store {
    pub fn new(bucket: &str, prefix: &str, stack: &str, reach: &Reach) -> S3Store {
        S3Store {
            objects: Objects {
                client: client(reach),
                bucket: bucket.to_string(),
            },
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", prefix.trim_matches('/'))
            },
            stack: stack.to_string(),
            head: Arc::default(),
        }
    }

    pub fn snapshot_key(&self) -> String {
        format!("{}{}.json", self.prefix, self.stack)
    }

    pub fn journal_prefix(&self) -> String {
        format!("{}journal/{}/", self.prefix, self.stack)
    }

    fn step_key(&self, base: u64, serial: u64) -> String {
        format!("{}{base:020}/{serial:020}", self.journal_prefix())
    }

    pub fn lease_key(&self) -> String {
        format!("{}leases/{}.lease", self.prefix, self.stack)
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.objects.bucket)
    }

    fn read_err(&self, key: &str, f: Failed) -> StateError {
        StateError::Read {
            location: self.url(key),
            message: f.message(),
        }
    }

    fn write_err(&self, key: &str, f: Failed) -> StateError {
        StateError::Write {
            location: self.url(key),
            message: f.message(),
        }
    }

    fn conflict(&self, key: &str) -> StateError {
        StateError::Conflict {
            location: self.url(key),
            message: "another writer wrote this stack's state since this run read it".into(),
        }
    }
}

impl StateStore for S3Store {
    fn location(&self) -> String {
        self.url(&self.snapshot_key())
    }

    /// The snapshot, then the journal steps written against it, in order.
    fn load(&self, region: &str) -> Result<State, StateError> {
        let key = self.snapshot_key();
        let objects = self.objects.clone();
        let got = block({
            let (objects, key) = (objects.clone(), key.clone());
            async move { objects.get(key, None).await }
        })
        .map_err(|f| self.read_err(&key, f))?;
        let (mut state, etag) = match got {
            Some((text, tag)) => (parse_state(&self.location(), &text)?, Some(tag)),
            None => (State::empty(&self.stack, region), None),
        };
        let base = state.serial;
        let listed = block({
            let (objects, prefix) = (objects.clone(), self.journal_prefix());
            async move { objects.list(prefix).await }
        })
        .map_err(|f| self.read_err(&self.journal_prefix(), f))?;
        let ours = format!("{}{base:020}/", self.journal_prefix());
        let mut steps: Vec<String> = listed
            .iter()
            .filter(|k| k.starts_with(&ours))
            .cloned()
            .collect();
        steps.sort();
        let bodies = block({
            let steps = steps.clone();
            async move {
                futures::stream::iter(steps)
                    .map(|k| {
                        let objects = objects.clone();
                        async move { objects.get(k, None).await }
                    })
                    .buffered(READ_AT_ONCE)
                    .try_collect::<Vec<_>>()
                    .await
            }
        })
        .map_err(|f| self.read_err(&ours, f))?;
        // A step's object is whole or absent: each line is complete.
        let mut journal = String::new();
        for (text, _) in bodies.into_iter().flatten() {
            journal.push_str(text.trim_end());
            journal.push('\n');
        }
        let applied = state.replay(&self.url(&ours), &journal)?;
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = Head {
            loaded: true,
            etag,
            base,
            steps: applied,
            garbage: listed,
        };
        Ok(state)
    }

    /// One new object per step, written only if its key is new.
    fn record(&self, state: &mut State, deltas: Vec<Delta>) -> Result<(), StateError> {
        for d in &deltas {
            state.apply(d);
        }
        let mut head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        if state.lineage.is_none()
            || !head.loaded
            || head.steps >= FOLD_AFTER.max(state.resources.len())
        {
            drop(head);
            return self.save(state);
        }
        let step = JournalStep {
            serial: state.serial + 1,
            deltas,
        };
        let key = self.step_key(head.base, step.serial);
        let body = serde_json::to_vec(&step).expect("journal step serialises");
        // A step written after another writer folded would be ignored by
        // readers: look first, so that this run learns of it at once.
        let snapshot = self.snapshot_key();
        let unchanged = block({
            let (objects, snapshot, etag) =
                (self.objects.clone(), snapshot.clone(), head.etag.clone());
            async move { objects.unchanged(snapshot, etag).await }
        })
        .map_err(|f| self.read_err(&snapshot, f))?;
        if !unchanged {
            return Err(self.conflict(&snapshot));
        }
        let written = block({
            let (objects, key) = (self.objects.clone(), key.clone());
            async move { objects.put(key, body, None).await }
        })
        .map_err(|f| self.write_err(&key, f))?;
        if written.is_none() {
            return Err(self.conflict(&key));
        }
        head.steps += 1;
        head.garbage.push(key);
        state.serial = step.serial;
        Ok(())
    }

    /// Writes the snapshot if it is still the one this store read, then
    /// removes the journal it folds.
    fn save(&self, state: &mut State) -> Result<(), StateError> {
        let mut head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        if state.lineage.is_none() {
            state.lineage = Some(uuid::Uuid::new_v4().to_string());
        }
        state.serial += 1;
        let mut body = serde_json::to_vec_pretty(state).expect("state serialises");
        body.push(b'\n');
        let key = self.snapshot_key();
        // A store that never loaded writes only where no state is yet.
        let at = if head.loaded { head.etag.clone() } else { None };
        let written = block({
            let (objects, key) = (self.objects.clone(), key.clone());
            async move { objects.put(key, body, at).await }
        })
        .map_err(|f| self.write_err(&key, f))?;
        let Some(etag) = written else {
            state.serial -= 1;
            return Err(self.conflict(&key));
        };
        let garbage = std::mem::take(&mut head.garbage);
        *head = Head {
            loaded: true,
            etag: Some(etag),
            base: state.serial,
            steps: 0,
            garbage: vec![],
        };
        if !garbage.is_empty() {
            let objects = self.objects.clone();
            block(async move { objects.delete_all(garbage).await });
        }
        Ok(())
    }

    fn folded(&self) -> bool {
        let head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        head.loaded && head.steps == 0 && head.garbage.is_empty()
    }

    fn lease(&self) -> Arc<dyn LeaseCell> {
        Arc::new(S3Lease {
            objects: self.objects.clone(),
            key: self.lease_key(),
        })
    }

    /// The snapshot's versions in the bucket, newest first.
    fn history(&self) -> Result<Vec<Version>, StateError> {
        let key = self.snapshot_key();
        let (objects, k) = (self.objects.clone(), key.clone());
        let versions = block(async move {
            let mut out = vec![];
            let (mut key_marker, mut version_marker) = (None, None);
            loop {
                let page = objects
                    .client
                    .list_object_versions()
                    .bucket(&objects.bucket)
                    .prefix(&k)
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .map_err(failed)?;
                out.extend(
                    page.versions()
                        .iter()
                        .filter(|v| v.key() == Some(k.as_str()))
                        .map(|v| Version {
                            id: v.version_id().unwrap_or("null").to_string(),
                            written: v.last_modified().and_then(|t| {
                                DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                            }),
                            bytes: v.size().unwrap_or(0).max(0) as u64,
                            current: v.is_latest().unwrap_or(false),
                        }),
                );
                if page.is_truncated() != Some(true) {
                    return Ok(out);
                }
                key_marker = page.next_key_marker().map(str::to_string);
                version_marker = page.next_version_id_marker().map(str::to_string);
                if key_marker.is_none() && version_marker.is_none() {
                    return Ok(out);
                }
            }
        })
        .map_err(|f| self.read_err(&key, f))?;
        let mut versions = versions;
        versions.sort_by(|a, b| b.written.cmp(&a.written).then(b.current.cmp(&a.current)));
        Ok(versions)
    }

    fn load_version(&self, id: &str) -> Result<State, StateError> {
        let key = self.snapshot_key();
        let (objects, k, v) = (self.objects.clone(), key.clone(), id.to_string());
        match block(async move { objects.get(k, Some(v)).await }) {
            Ok(Some((text, _))) => parse_any_state(&self.url(&key), &text),
            Ok(None) => Err(StateError::Read {
                location: self.url(&key),
                message: format!("no version `{id}` (see `reconcile state history`)"),
            }),
            Err(f) => Err(self.read_err(&key, f)),
        }
    }
}

/// A stack's lease object; its tag is the ETag.
struct S3Lease {
    objects: Objects,
    key: String,
}

impl S3Lease {
    fn err(&self, f: Failed) -> StateError {
        StateError::Write {
            location: self.location(),
            message: f.message(),
        }
    }
}

impl LeaseCell for S3Lease {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.objects.bucket, self.key)
    }

    fn read(&self) -> Result<Option<Seen>, StateError> {
        let (objects, key) = (self.objects.clone(), self.key.clone());
        block(async move { objects.get(key, None).await })
            .map(|got| got.map(|(body, tag)| Seen { body, tag }))
            .map_err(|f| self.err(f))
    }

    fn create(&self, body: &str) -> Result<Option<String>, StateError> {
        let (objects, key, body) = (
            self.objects.clone(),
            self.key.clone(),
            body.as_bytes().to_vec(),
        );
        block(async move { objects.put(key, body, None).await }).map_err(|f| self.err(f))
    }

    fn replace(&self, tag: &str, body: &str) -> Result<Option<String>, StateError> {
        let (objects, key, body, tag) = (
            self.objects.clone(),
            self.key.clone(),
            body.as_bytes().to_vec(),
            tag.to_string(),
        );
        block(async move { objects.put(key, body, Some(tag)).await }).map_err(|f| self.err(f))
    }

    fn remove(&self, tag: &str) -> Result<bool, StateError> {
        let (objects, key, tag) = (self.objects.clone(), self.key.clone(), tag.to_string());
        let gone = block(async move {
            objects
                .client
                .delete_object()
                .bucket(&objects.bucket)
                .key(key)
                .if_match(tag)
                .send()
                .await
        });
        match gone {
            Ok(_) => Ok(true),
            Err(e) => match failed(e) {
                Failed::Missing | Failed::Precondition => Ok(false),
                f => Err(self.err(f)),
            },
        }
    }
}
