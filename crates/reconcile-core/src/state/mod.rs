//! State types: what reconcile records of a stack (resources, outputs, deposed
//! copies, the journal of in-flight AWS mutations), the [`Delta`]s an apply
//! records them by, the [`StateStore`] interface its backends implement, and
//! the [`lease`]s that keep one writer per stack.

pub mod lease;

use crate::model::{Fields, Value};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

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
    /// Set where state was moved away from: this copy is no longer written
    /// and nothing reads it as the stack's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
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

/// One change an apply records: small, so that recording costs the same
/// whatever the size of the stack. Backends with a journal append deltas and
/// fold them into a snapshot now and then; [`State::apply`] replays them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", content = "with", rename_all = "snake_case")]
pub enum Delta {
    /// An AWS mutation starts.
    Begin(JournalEntry),
    /// The mutation started with this idempotency token settled.
    Settle {
        token: String,
    },
    /// The resource at its address is now this one.
    Put(StateResource),
    /// The resource at `address` becomes a deposed copy (its replacement is
    /// created before it is deleted).
    Depose {
        address: String,
    },
    /// The copy `id` of `kind` is deleted: dropped from `address` if it is
    /// the one there, and from the deposed copies.
    Gone {
        address: String,
        kind: String,
        id: String,
    },
    Outputs(IndexMap<String, Value>),
}

/// One durable step of a journal: the deltas that take state from serial
/// `serial - 1` to `serial`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JournalStep {
    pub serial: u64,
    pub deltas: Vec<Delta>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("stack `{stack}` is held by {holder}; wait for it to finish (a `reconcile watch --remediate` holds its stacks while it runs: change the TOML and let it apply, or stop it). If that process is gone, a later run takes its lease over once nobody renewed it for the lease's duration (`reconcile state unlock --stack {stack}` releases it at once)")]
    Locked { stack: String, holder: String },
    #[error("cannot read state {location}: {message}")]
    Read { location: String, message: String },
    #[error("state {location} is not valid: {message}; restore an earlier version (`reconcile state history`) if a write was interrupted")]
    Corrupt { location: String, message: String },
    #[error("state {location} has format version {found}, this reconcile reads {STATE_FORMAT_VERSION}; upgrade reconcile")]
    Version { location: String, found: u32 },
    #[error("cannot write state {location}: {message}")]
    Write { location: String, message: String },
    /// A conditional write found state other than what this run read: another
    /// writer took the stack (this run's lease lapsed). Nothing was overwritten.
    #[error("state {location} changed since this run read it ({message}); another writer holds the stack now, so nothing was overwritten: look at `reconcile state history` and run again")]
    Conflict { location: String, message: String },
    #[error("the state of this stack moved from {location} to {to}; point the stack there (`[stack] state = \"{to}\"` or `--state {to}`)")]
    Moved { location: String, to: String },
    #[error("{0}")]
    Location(String),
}

/// Where a stack's state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// A directory of `<stack>.json` files.
    Local(std::path::PathBuf),
    /// `s3://bucket/prefix`: objects `<prefix>/<stack>.json` and beside it.
    S3 { bucket: String, prefix: String },
}

impl StateLocation {
    /// Reads `s3://bucket[/prefix]` or a local directory.
    pub fn parse(s: &str) -> Result<StateLocation, String> {
        let Some(rest) = s.strip_prefix("s3://") else {
            if s.contains("://") {
                return Err(format!(
                    "state location \"{s}\" is neither s3://bucket/prefix nor a directory"
                ));
            }
            return Ok(StateLocation::Local(s.into()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !ok {
            return Err(format!(
                "state location \"{s}\": `{bucket}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `-` and `.`)"
            ));
        }
        Ok(StateLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Local(dir) => write!(f, "{}", dir.display()),
            StateLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StateLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// One earlier (or the current) snapshot of a stack's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// What `state show --version` takes.
    pub id: String,
    pub written: Option<DateTime<Utc>>,
    pub bytes: u64,
    pub current: bool,
}

impl State {
    /// The state of a stack nothing was recorded for yet.
    pub fn empty(stack: &str, region: &str) -> State {
        State {
            format_version: STATE_FORMAT_VERSION,
            stack: stack.to_string(),
            region: region.to_string(),
            ..State::default()
        }
    }
}

impl State {
    /// Applies one recorded change.
    pub fn apply(&mut self, d: &Delta) {
        match d {
            Delta::Begin(j) => self.journal.push(j.clone()),
            Delta::Settle { token } => self.journal.retain(|j| &j.token != token),
            Delta::Put(r) => {
                self.resources.insert(r.address.clone(), r.clone());
            }
            Delta::Depose { address } => {
                if let Some(old) = self.resources.shift_remove(address) {
                    self.deposed.push(old);
                }
            }
            Delta::Gone { address, kind, id } => {
                if self.resources.get(address).is_some_and(|r| &r.id == id) {
                    self.resources.shift_remove(address);
                }
                self.deposed.retain(|r| &r.id != id || &r.kind != kind);
            }
            Delta::Outputs(o) => self.outputs = o.clone(),
        }
    }

    /// Replays a journal written after this snapshot. Steps the snapshot
    /// already holds (a fold interrupted before the journal was removed) are
    /// skipped; an unfinished last line is a write that was never
    /// acknowledged, so it is dropped. Answers how many steps were applied.
    pub fn replay(&mut self, location: &str, journal: &str) -> Result<usize, StateError> {
        let complete = journal.rfind('\n').map_or("", |end| &journal[..end]);
        let mut applied = 0;
        for (n, line) in complete.lines().enumerate() {
            let step: JournalStep =
                serde_json::from_str(line).map_err(|e| StateError::Corrupt {
                    location: location.to_string(),
                    message: format!("journal line {}: {e}", n + 1),
                })?;
            if step.serial <= self.serial {
                continue;
            }
            if step.serial != self.serial + 1 {
                return Err(StateError::Corrupt {
                    location: location.to_string(),
                    message: format!(
                        "journal line {} is serial {} but the state is at {}",
                        n + 1,
                        step.serial,
                        self.serial
                    ),
                });
            }
            for d in &step.deltas {
                self.apply(d);
            }
            self.serial = step.serial;
            applied += 1;
        }
        Ok(applied)
    }
}

/// Where one stack's state lives. Every backend gives the same guarantees: a
/// save is all or nothing, `serial` grows by one per step, a write never
/// replaces state other than what this store read, and one lease per stack
/// says who may write.
pub trait StateStore: Send + Sync {
    /// Where the state lives, for messages (a path or a URL).
    fn location(&self) -> String;
    /// The stack's state, or an empty one when none was written yet.
    fn load(&self, region: &str) -> Result<State, StateError>;
    /// Writes the whole state atomically (a snapshot, which folds any journal),
    /// setting its lineage at the first write and bumping its serial.
    fn save(&self, state: &mut State) -> Result<(), StateError>;
    /// Records `deltas` as one durable step, applying them to `state` too. A
    /// backend with a journal appends them, at a cost independent of the
    /// stack's size; this default writes the whole state.
    fn record(&self, state: &mut State, deltas: Vec<Delta>) -> Result<(), StateError> {
        for d in &deltas {
            state.apply(d);
        }
        self.save(state)
    }
    /// Whether every step this store read or recorded is in the snapshot
    /// already (no journal to fold).
    fn folded(&self) -> bool {
        true
    }
    /// The stack's lease record.
    fn lease(&self) -> std::sync::Arc<dyn lease::LeaseCell>;
    /// The snapshots kept, newest first.
    fn history(&self) -> Result<Vec<Version>, StateError>;
    /// One snapshot of [`StateStore::history`], as it was written.
    fn load_version(&self, id: &str) -> Result<State, StateError>;
}

/// Checks what a backend read: a format this build understands.
pub fn parse_state(location: &str, text: &str) -> Result<State, StateError> {
    let state = parse_any_state(location, text)?;
    if let Some(to) = &state.moved_to {
        return Err(StateError::Moved {
            location: location.to_string(),
            to: to.clone(),
        });
    }
    Ok(state)
}

/// As [`parse_state`], also reading a copy that was moved elsewhere (for
/// history).
pub fn parse_any_state(location: &str, text: &str) -> Result<State, StateError> {
    let state: State = serde_json::from_str(text).map_err(|e| StateError::Corrupt {
        location: location.to_string(),
        message: e.to_string(),
    })?;
    if state.format_version != STATE_FORMAT_VERSION {
        return Err(StateError::Version {
            location: location.to_string(),
            found: state.format_version,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_or_newer_state_is_an_error_not_an_empty_stack() {
        assert!(matches!(
            parse_state("s.json", "{not json"),
            Err(StateError::Corrupt { .. })
        ));
        let mut st = State::empty("s", "us-east-1");
        st.format_version = STATE_FORMAT_VERSION + 1;
        let text = serde_json::to_string(&st).unwrap();
        assert!(matches!(
            parse_state("s.json", &text),
            Err(StateError::Version { found, .. }) if found == STATE_FORMAT_VERSION + 1
        ));
    }

    #[test]
    fn state_locations_are_s3_urls_or_directories() {
        assert_eq!(
            StateLocation::parse("s3://team-state/reconcile/prod/").unwrap(),
            StateLocation::S3 {
                bucket: "team-state".into(),
                prefix: "reconcile/prod".into()
            }
        );
        assert_eq!(
            StateLocation::parse("s3://team-state").unwrap().to_string(),
            "s3://team-state"
        );
        assert_eq!(
            StateLocation::parse("state").unwrap(),
            StateLocation::Local("state".into())
        );
        for bad in ["s3://Team", "s3://ab/x", "s3://-a-b", "gs://b/p"] {
            assert!(StateLocation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_moved_copy_is_refused_as_state_and_names_where_it_went() {
        let mut st = State::empty("s", "us-east-1");
        st.moved_to = Some("s3://b/p".into());
        let text = serde_json::to_string(&st).unwrap();
        assert!(matches!(
            parse_state("s.json", &text),
            Err(StateError::Moved { to, .. }) if to == "s3://b/p"
        ));
        assert!(parse_any_state("s.json", &text).is_ok());
    }

    fn res(address: &str, id: &str) -> StateResource {
        StateResource {
            address: address.into(),
            kind: "vpc".into(),
            id: id.into(),
            inputs: Fields::new(),
            attributes: Fields::new(),
            dependencies: vec![],
            protect: false,
        }
    }

    fn line(serial: u64, deltas: Vec<Delta>) -> String {
        serde_json::to_string(&JournalStep { serial, deltas }).unwrap() + "\n"
    }

    #[test]
    fn a_journal_replays_in_order_and_a_torn_last_line_is_dropped() {
        let mut st = State::empty("s", "us-east-1");
        st.serial = 3;
        let entry = JournalEntry {
            op: JournalOp::Create,
            address: "vpc.b".into(),
            kind: "vpc".into(),
            resource_id: None,
            token: "t".into(),
            started_at: Utc::now(),
        };
        let mut text = line(3, vec![Delta::Put(res("vpc.old", "vpc-0"))]);
        text += &line(4, vec![Delta::Put(res("vpc.a", "vpc-1"))]);
        text += &line(5, vec![Delta::Begin(entry.clone())]);
        text += &line(
            6,
            vec![
                Delta::Depose {
                    address: "vpc.a".into(),
                },
                Delta::Put(res("vpc.a", "vpc-2")),
                Delta::Settle { token: "t".into() },
            ],
        );
        let torn = line(7, vec![Delta::Outputs(IndexMap::new())]);
        text += &torn[..torn.len() - 1];
        assert_eq!(st.replay("s.journal", &text).unwrap(), 3);
        assert_eq!(st.serial, 6);
        assert!(
            !st.resources.contains_key("vpc.old"),
            "serial 3 was already in the snapshot"
        );
        assert_eq!(st.resources["vpc.a"].id, "vpc-2");
        assert_eq!(st.deposed, [res("vpc.a", "vpc-1")]);
        assert!(st.journal.is_empty());

        st.apply(&Delta::Gone {
            address: "vpc.a".into(),
            kind: "vpc".into(),
            id: "vpc-1".into(),
        });
        assert!(st.deposed.is_empty());
        assert_eq!(
            st.resources["vpc.a"].id, "vpc-2",
            "another copy's delete keeps it"
        );
    }

    #[test]
    fn a_gap_or_a_damaged_line_in_the_journal_is_an_error() {
        let mut st = State::empty("s", "us-east-1");
        let gap = line(2, vec![]);
        assert!(matches!(
            st.replay("s.journal", &gap),
            Err(StateError::Corrupt { .. })
        ));
        let damaged = format!("{{not json\n{}", line(1, vec![]));
        assert!(matches!(
            st.replay("s.journal", &damaged),
            Err(StateError::Corrupt { .. })
        ));
    }
}
