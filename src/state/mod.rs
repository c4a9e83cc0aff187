//! State: `state/<stack>.json` with atomic writes and a kept previous copy, the
//! journal of in-flight AWS mutations, and the advisory per-stack lock.

use crate::model::{Fields, Value};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const STATE_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub format_version: u32,
    /// Set at the first write; a saved plan is refused against another lineage.
    pub lineage: Option<String>,
    /// Bumped at every write; a saved plan is refused once state moved on.
    pub serial: u64,
    pub stack: String,
    pub region: String,
    pub resources: IndexMap<String, StateResource>,
    #[serde(default)]
    pub outputs: IndexMap<String, Value>,
    /// Replaced resources whose old copy is not deleted yet (create-before-delete
    /// interrupted between the two); the next apply deletes them.
    #[serde(default)]
    pub deposed: Vec<StateResource>,
    /// AWS mutations started and not yet settled.
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StateResource {
    pub address: String,
    pub kind: String,
    pub id: String,
    /// The last applied desired fields, references resolved.
    pub inputs: Fields,
    pub attributes: Fields,
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub protect: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JournalOp {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JournalEntry {
    pub op: JournalOp,
    pub address: String,
    pub kind: String,
    /// The resource's AWS id when known before the call (update, delete).
    pub resource_id: Option<String>,
    /// Idempotency token passed to AWS where the API takes one.
    pub token: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("stack `{stack}` is locked by {holder}; wait for it to finish, or if that process is gone, run again (the lock is released when its holder exits)")]
    Locked { stack: String, holder: String },
    #[error("cannot read state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state {path} is not valid: {message}; restore it from {path}.prev if a write was interrupted")]
    Corrupt { path: PathBuf, message: String },
    #[error("state {path} has format version {found}, this reconcile reads {STATE_FORMAT_VERSION}; upgrade reconcile")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// File backend for one stack's state.
#[derive(Clone, Debug)]
pub struct StateStore {
    pub dir: PathBuf,
    pub stack: String,
}

impl StateStore {
    pub fn new(dir: &Path, stack: &str) -> Self {
        StateStore {
            dir: dir.to_path_buf(),
            stack: stack.to_string(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stack))
    }

    fn prev_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json.prev", self.stack))
    }

    /// The stack's state, or an empty one when none was written yet.
    pub fn load(&self, region: &str) -> Result<State, StateError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    format_version: STATE_FORMAT_VERSION,
                    stack: self.stack.clone(),
                    region: region.to_string(),
                    ..State::default()
                })
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let state: State = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if state.format_version != STATE_FORMAT_VERSION {
            return Err(StateError::Version {
                path,
                found: state.format_version,
            });
        }
        Ok(state)
    }

    /// Writes state atomically: temporary file, fsync, rename; the version it
    /// replaces is kept as `<stack>.json.prev`.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        let path = self.path();
        let werr = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(werr)?;
        if state.lineage.is_none() {
            state.lineage = Some(uuid::Uuid::new_v4().to_string());
        }
        state.serial += 1;
        let body = serde_json::to_vec_pretty(state).expect("state serialises");
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(werr)?;
        tmp.write_all(&body).map_err(werr)?;
        tmp.write_all(b"\n").map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        if path.exists() {
            // A second name for the current file, not a copy: the rename below
            // replaces `path` only, so `.prev` keeps the version it replaces.
            let prev = self.prev_path();
            match std::fs::remove_file(&prev) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(werr(e)),
                _ => {}
            }
            std::fs::hard_link(&path, &prev)
                .or_else(|_| std::fs::copy(&path, &prev).map(|_| ()))
                .map_err(werr)?;
        }
        tmp.persist(&path).map_err(|e| werr(e.error))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Takes the stack's advisory lock or fails at once naming its holder.
    pub fn lock(&self, operation: &str) -> Result<LockGuard, StateError> {
        let path = self.dir.join(format!("{}.lock", self.stack));
        let werr = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(werr)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(werr)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StateError::Locked {
                    stack: self.stack.clone(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(werr(e)),
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "this host".into());
        let holder = format!(
            "`reconcile {operation}` (pid {} on {host}, since {})",
            std::process::id(),
            Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        file.set_len(0).map_err(werr)?;
        file.rewind().map_err(werr)?;
        file.write_all(holder.as_bytes()).map_err(werr)?;
        file.sync_all().map_err(werr)?;
        Ok(LockGuard { _file: file })
    }
}

/// Holds the lock until dropped (or the process exits, however it exits).
pub struct LockGuard {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_atomic_and_keeps_previous() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path(), "s");
        let mut st = store.load("us-east-1").unwrap();
        assert_eq!(st.serial, 0);
        store.save(&mut st).unwrap();
        st.outputs.insert("x".into(), Value::Int(1));
        store.save(&mut st).unwrap();
        let back = store.load("us-east-1").unwrap();
        assert_eq!(back.serial, 2);
        assert_eq!(back.lineage, st.lineage);
        let prev: State =
            serde_json::from_str(&std::fs::read_to_string(store.prev_path()).unwrap()).unwrap();
        assert_eq!(prev.serial, 1);
    }

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path(), "s");
        let _g = store.lock("apply").unwrap();
        match store.lock("apply") {
            Err(StateError::Locked { holder, .. }) => {
                assert!(holder.contains("reconcile apply"), "{holder}");
                assert!(holder.contains(&std::process::id().to_string()));
            }
            other => panic!("expected Locked, got {:?}", other.err()),
        }
    }

    #[test]
    fn corrupt_state_is_an_error_not_an_empty_stack() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), "{not json").unwrap();
        let store = StateStore::new(dir.path(), "s");
        assert!(matches!(
            store.load("us-east-1"),
            Err(StateError::Corrupt { .. })
        ));
    }
}
