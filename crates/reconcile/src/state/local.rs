//! The local state backend: a snapshot `<state-dir>/<stack>.json` written
//! atomically with the previous version kept beside it, a journal
//! `<stack>.journal` of the steps recorded since, and the stack's lease
//! `<stack>.lease`.

use chrono::Utc;
use reconcile_core::state::lease::{LeaseCell, Seen};
use reconcile_core::state::{
    parse_any_state, parse_state, Delta, JournalStep, State, StateError, StateStore, Version,
};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Journal steps between two folds, at the least; more for bigger stacks, so
/// that folding (a write of the whole state) costs a constant share per step.
const FOLD_AFTER: usize = 256;

/// Crash tests stop the process in the middle of a state write:
/// `RECONCILE_CRASH_AT=append:N` aborts halfway through writing the Nth
/// journal line of the run, `fold:N` between the Nth snapshot and the
/// removal of the journal it folds. Unset, this costs one lookup per write.
fn crash_at(point: &str) -> bool {
    static PLAN: std::sync::OnceLock<Option<(String, usize)>> = std::sync::OnceLock::new();
    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some((at, n)) = PLAN.get_or_init(|| {
        let v = std::env::var("RECONCILE_CRASH_AT").ok()?;
        let (at, n) = v.split_once(':')?;
        Some((at.to_string(), n.parse().ok()?))
    }) else {
        return false;
    };
    at == point && SEEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == *n
}

/// File backend for one stack's state.
#[derive(Clone, Debug)]
pub struct LocalStore {
    pub dir: PathBuf,
    pub stack: String,
    /// The journal open for appending, and its steps since the last fold.
    journal: Arc<Mutex<Option<(File, usize)>>>,
    /// What this store last read or wrote, once it has loaded.
    base: Arc<Mutex<Option<Base>>>,
}

/// The files a store's next write must find unchanged: otherwise another
/// writer wrote since, and this store's state is stale.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Base {
    /// The snapshot file (device and inode), if there was one.
    snapshot: Option<(u64, u64)>,
    /// Bytes of complete journal lines.
    journal_len: u64,
}

fn identity(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LocalStore {
    pub fn new(dir: &Path, stack: &str) -> Self {
        LocalStore {
            dir: dir.to_path_buf(),
            stack: stack.to_string(),
            journal: Arc::default(),
            base: Arc::default(),
        }
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(format!("{}.journal", self.stack))
    }

    /// Opens the journal for appending, cutting off an unfinished last line
    /// that a crash left: the next step would otherwise continue it.
    fn open_journal(&self) -> std::io::Result<File> {
        let path = self.journal_path();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if keep < text.len() {
            file.set_len(keep as u64)?;
        }
        file.sync_all()?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(file)
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

    /// The snapshot with the journal written since replayed on it.
    fn load(&self, region: &str) -> Result<State, StateError> {
        let read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Read {
                location: path.display().to_string(),
                message: e.to_string(),
            }),
        };
        let snapshot = identity(&self.path()).map_err(|e| StateError::Read {
            location: self.location(),
            message: e.to_string(),
        })?;
        let mut state = match read(&self.path())? {
            Some(text) => parse_state(&self.location(), &text)?,
            None => State::empty(&self.stack, region),
        };
        // Whatever this store had open may have been folded away by another
        // store of the same stack since: the next step opens the journal anew.
        *self.journal.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let journal = self.journal_path();
        let mut journal_len = 0;
        if let Some(text) = read(&journal)? {
            state.replay(&journal.display().to_string(), &text)?;
            journal_len = text.rfind('\n').map_or(0, |i| i as u64 + 1);
        }
        *self.base.lock().unwrap_or_else(PoisonError::into_inner) = Some(Base {
            snapshot,
            journal_len,
        });
        Ok(state)
    }

    /// Appends one line to the journal and syncs it; acknowledged once synced.
    /// The first step of a stack and every so many after are written as a
    /// snapshot instead (a fold).
    fn record(&self, state: &mut State, deltas: Vec<Delta>) -> Result<(), StateError> {
        for d in &deltas {
            state.apply(d);
        }
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let steps = journal.as_ref().map_or(0, |(_, n)| *n);
        if state.lineage.is_none() || steps >= FOLD_AFTER.max(state.resources.len()) {
            drop(journal);
            return self.save(state);
        }
        let path = self.journal_path();
        let werr = |e: std::io::Error| StateError::Write {
            location: path.display().to_string(),
            message: e.to_string(),
        };
        if journal.is_none() {
            *journal = Some((self.open_journal().map_err(werr)?, 0));
        }
        let (file, n) = journal.as_mut().expect("opened above");
        let mut base = self.base.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = base.as_mut() {
            use std::os::unix::fs::MetadataExt;
            let open = file.metadata().map_err(werr)?;
            let linked = identity(&path).map_err(werr)?;
            let snapshot = identity(&self.path()).map_err(werr)?;
            if snapshot != b.snapshot
                || linked != Some((open.dev(), open.ino()))
                || open.len() != b.journal_len
            {
                return Err(StateError::Conflict {
                    location: path.display().to_string(),
                    message: "another writer wrote this stack's state since this run read it"
                        .into(),
                });
            }
        }
        let step = JournalStep {
            serial: state.serial + 1,
            deltas,
        };
        let mut line = serde_json::to_vec(&step).expect("journal step serialises");
        line.push(b'\n');
        if crash_at("append") {
            let _ = file.write_all(&line[..line.len() / 2]);
            let _ = file.sync_data();
            std::process::abort();
        }
        file.write_all(&line).map_err(werr)?;
        file.sync_data().map_err(werr)?;
        if let Some(b) = base.as_mut() {
            b.journal_len += line.len() as u64;
        }
        state.serial = step.serial;
        *n += 1;
        Ok(())
    }

    /// Writes state atomically: temporary file, fsync, rename; the version it
    /// replaces is kept as `<stack>.json.prev`. The journal it folds goes
    /// after: until then its steps are skipped as already in the snapshot.
    fn save(&self, state: &mut State) -> Result<(), StateError> {
        let path = self.path();
        let werr = |e: std::io::Error| StateError::Write {
            location: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(werr)?;
        let mut base = self.base.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = base.as_ref() {
            if identity(&path).map_err(werr)? != b.snapshot {
                return Err(StateError::Conflict {
                    location: path.display().to_string(),
                    message: "another writer replaced the snapshot since this run read it".into(),
                });
            }
        }
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
        if crash_at("fold") {
            std::process::abort();
        }
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        *journal = None;
        match std::fs::remove_file(self.journal_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(werr(e)),
            _ => {}
        }
        if base.is_some() {
            *base = Some(Base {
                snapshot: identity(&path).map_err(werr)?,
                journal_len: 0,
            });
        }
        Ok(())
    }

    fn folded(&self) -> bool {
        self.base
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|b| b.journal_len == 0)
    }

    fn lease(&self) -> Arc<dyn LeaseCell> {
        Arc::new(LocalLease {
            dir: self.dir.clone(),
            stack: self.stack.clone(),
        })
    }

    /// The snapshot and the one it replaced.
    fn history(&self) -> Result<Vec<Version>, StateError> {
        let mut out = vec![];
        for (id, path, current) in [
            ("current", self.path(), true),
            ("prev", self.prev_path(), false),
        ] {
            if let Ok(meta) = std::fs::metadata(&path) {
                out.push(Version {
                    id: id.into(),
                    written: meta.modified().ok().map(chrono::DateTime::<Utc>::from),
                    bytes: meta.len(),
                    current,
                });
            }
        }
        Ok(out)
    }

    fn load_version(&self, id: &str) -> Result<State, StateError> {
        let path = match id {
            "current" => self.path(),
            "prev" => self.prev_path(),
            other => {
                return Err(StateError::Read {
                    location: self.location(),
                    message: format!(
                        "no version `{other}`: the local backend keeps `current` and `prev`"
                    ),
                })
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| StateError::Read {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        parse_any_state(&path.display().to_string(), &text)
    }
}

/// The lease of a local stack: `<stack>.lease`, written only under the
/// advisory lock `<stack>.lock`, which is held just for each compare-and-write.
struct LocalLease {
    dir: PathBuf,
    stack: String,
}

impl LocalLease {
    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.lease", self.stack))
    }

    fn werr(&self, e: std::io::Error) -> StateError {
        StateError::Write {
            location: self.location(),
            message: e.to_string(),
        }
    }

    /// Runs `f` on the current record under the stack's advisory lock.
    fn exclusive<T>(
        &self,
        f: impl FnOnce(Option<String>) -> std::io::Result<T>,
    ) -> Result<T, StateError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.werr(e))?;
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(format!("{}.lock", self.stack)))
            .map_err(|e| self.werr(e))?;
        lock.lock().map_err(|e| self.werr(e))?;
        let current = match std::fs::read_to_string(self.path()) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.werr(e)),
        };
        f(current).map_err(|e| self.werr(e))
    }

    fn write(&self, body: &str) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(body.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path()).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A local record's tag is its text: every record names its holder and
/// renewal time, so no two writes are alike.
impl LeaseCell for LocalLease {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn read(&self) -> Result<Option<Seen>, StateError> {
        match std::fs::read_to_string(self.path()) {
            Ok(body) => Ok(Some(Seen {
                tag: body.clone(),
                body,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Read {
                location: self.location(),
                message: e.to_string(),
            }),
        }
    }

    fn create(&self, body: &str) -> Result<Option<String>, StateError> {
        self.exclusive(|current| match current {
            Some(_) => Ok(None),
            None => self.write(body).map(|()| Some(body.to_string())),
        })
    }

    fn replace(&self, tag: &str, body: &str) -> Result<Option<String>, StateError> {
        self.exclusive(|current| match current {
            Some(c) if c == tag => self.write(body).map(|()| Some(body.to_string())),
            _ => Ok(None),
        })
    }

    fn remove(&self, tag: &str) -> Result<bool, StateError> {
        self.exclusive(|current| match current {
            Some(c) if c == tag => std::fs::remove_file(self.path()).map(|()| true),
            _ => Ok(false),
        })
    }
}

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

    fn put(address: &str, id: &str) -> Delta {
        Delta::Put(reconcile_core::state::StateResource {
            address: address.into(),
            kind: "vpc".into(),
            id: id.into(),
            inputs: Default::default(),
            attributes: Default::default(),
            dependencies: vec![],
            protect: false,
        })
    }

    #[test]
    fn steps_are_appended_and_replayed_and_a_save_folds_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "s");
        let mut st = store.load("us-east-1").unwrap();
        // The first step of a stack is a snapshot: it sets the lineage.
        store.record(&mut st, vec![put("vpc.a", "vpc-1")]).unwrap();
        assert!(!store.journal_path().exists());
        let snapshot = std::fs::read(store.path()).unwrap();
        for i in 0..5 {
            store
                .record(&mut st, vec![put(&format!("vpc.n{i}"), "vpc-2")])
                .unwrap();
        }
        assert_eq!(
            std::fs::read(store.path()).unwrap(),
            snapshot,
            "no snapshot rewrite"
        );
        let back = LocalStore::new(dir.path(), "s").load("us-east-1").unwrap();
        assert_eq!(back.serial, 6);
        assert_eq!(back.resources.len(), 6);
        assert_eq!(back.lineage, st.lineage);
        store.save(&mut st).unwrap();
        assert!(!store.journal_path().exists());
        assert_eq!(store.load("us-east-1").unwrap().serial, 7);
    }

    #[test]
    fn a_crash_at_any_byte_of_a_journal_write_loses_no_acknowledged_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "s");
        let mut st = store.load("us-east-1").unwrap();
        store.record(&mut st, vec![put("vpc.a", "vpc-1")]).unwrap();
        let mut acknowledged = vec![];
        for i in 0..3 {
            store
                .record(&mut st, vec![put(&format!("vpc.n{i}"), "vpc-2")])
                .unwrap();
            acknowledged.push(std::fs::metadata(store.journal_path()).unwrap().len());
        }
        let full = std::fs::read(store.journal_path()).unwrap();
        for cut in 0..=full.len() {
            let crashed = tempfile::tempdir().unwrap();
            std::fs::copy(store.path(), crashed.path().join("s.json")).unwrap();
            std::fs::write(crashed.path().join("s.journal"), &full[..cut]).unwrap();
            let again = LocalStore::new(crashed.path(), "s");
            let mut back = again.load("us-east-1").unwrap();
            let steps = acknowledged.iter().filter(|&&n| n as usize <= cut).count();
            assert_eq!(back.resources.len(), 1 + steps, "cut at byte {cut}");
            // The next step continues the journal cleanly after the torn line.
            again
                .record(&mut back, vec![put("vpc.z", "vpc-9")])
                .unwrap();
            let reread = again.load("us-east-1").unwrap();
            assert_eq!(reread.resources.len(), 2 + steps, "cut at byte {cut}");
            assert_eq!(reread.serial, back.serial);
        }
    }

    #[test]
    fn a_fold_interrupted_before_the_journal_went_replays_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), "s");
        let mut st = store.load("us-east-1").unwrap();
        store.record(&mut st, vec![put("vpc.a", "vpc-1")]).unwrap();
        store.record(&mut st, vec![put("vpc.b", "vpc-2")]).unwrap();
        let journal = std::fs::read(store.journal_path()).unwrap();
        store.save(&mut st).unwrap();
        // As if the process died between the snapshot's rename and the removal.
        std::fs::write(store.journal_path(), journal).unwrap();
        let back = LocalStore::new(dir.path(), "s").load("us-east-1").unwrap();
        assert_eq!(back.serial, st.serial);
        assert_eq!(back.resources.len(), 2);
    }

    #[test]
    fn a_store_whose_journal_another_folded_writes_to_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalStore::new(dir.path(), "s");
        let mut st = a.load("us-east-1").unwrap();
        a.record(&mut st, vec![put("vpc.a", "vpc-1")]).unwrap();
        a.record(&mut st, vec![put("vpc.b", "vpc-2")]).unwrap();
        let b = LocalStore::new(dir.path(), "s");
        let mut other = b.load("us-east-1").unwrap();
        b.record(&mut other, vec![put("vpc.c", "vpc-3")]).unwrap();
        b.save(&mut other).unwrap();
        let mut st = a.load("us-east-1").unwrap();
        a.record(&mut st, vec![put("vpc.d", "vpc-4")]).unwrap();
        let back = LocalStore::new(dir.path(), "s").load("us-east-1").unwrap();
        assert_eq!(back.resources.len(), 4, "{:?}", back.resources.keys());
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
