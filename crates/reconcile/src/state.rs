//! The local state backend: `<state-dir>/<stack>.json` written atomically with
//! the previous version kept beside it, and an advisory per-stack lock file
//! that names its holder.

use chrono::Utc;
use reconcile_core::state::{parse_state, State, StateError, StateLock, StateStore};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File backend for one stack's state.
#[derive(Clone, Debug)]
pub struct LocalStore {
    pub dir: PathBuf,
    pub stack: String,
}

impl LocalStore {
    pub fn new(dir: &Path, stack: &str) -> Self {
        LocalStore {
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
}

impl StateStore for LocalStore {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn load(&self, region: &str) -> Result<State, StateError> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_state(&self.location(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(State::empty(&self.stack, region))
            }
            Err(e) => Err(StateError::Read {
                location: self.location(),
                message: e.to_string(),
            }),
        }
    }

    /// Writes state atomically: temporary file, fsync, rename; the version it
    /// replaces is kept as `<stack>.json.prev`.
    fn save(&self, state: &mut State) -> Result<(), StateError> {
        let path = self.path();
        let werr = |e: std::io::Error| StateError::Write {
            location: path.display().to_string(),
            message: e.to_string(),
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
    fn lock(&self, operation: &str) -> Result<Box<dyn StateLock>, StateError> {
        let path = self.dir.join(format!("{}.lock", self.stack));
        let werr = |e: std::io::Error| StateError::Write {
            location: path.display().to_string(),
            message: e.to_string(),
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
        Ok(Box::new(LockGuard { _file: file }))
    }
}

/// Holds the lock until dropped (or the process exits, however it exits).
struct LockGuard {
    _file: File,
}

impl StateLock for LockGuard {}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcile_core::model::Value;

    #[test]
    fn save_is_atomic_and_keeps_previous() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "s");
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
        let store = LocalStore::new(dir.path(), "s");
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
    fn corrupt_state_is_an_error_not_an_empty_stack_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), "{not json").unwrap();
        let store = LocalStore::new(dir.path(), "s");
        assert!(matches!(
            store.load("us-east-1"),
            Err(StateError::Corrupt { .. })
        ));
    }
}
