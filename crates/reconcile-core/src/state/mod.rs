//! State types: what reconcile records of a stack (resources, outputs, deposed
//! copies, the journal of in-flight AWS mutations), the [`Delta`]s an apply
//! records them by, and the [`StateStore`] interface its backends implement.

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
    #[error("stack `{stack}` is locked by {holder}; wait for it to finish, or if that process is gone, run again (the lock is released when its holder exits)")]
    Locked { stack: String, holder: String },
    #[error("cannot read state {location}: {message}")]
    Read { location: String, message: String },
    #[error("state {location} is not valid: {message}; restore it from {location}.prev if a write was interrupted")]
    Corrupt { location: String, message: String },
    #[error("state {location} has format version {found}, this reconcile reads {STATE_FORMAT_VERSION}; upgrade reconcile")]
    Version { location: String, found: u32 },
    #[error("cannot write state {location}: {message}")]
    Write { location: String, message: String },
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

/// Held while a writer owns a stack's state; dropping it releases the stack.
pub trait StateLock: Send + Sync {}

/// Where one stack's state lives. Every backend gives the same guarantees: a
/// save is all or nothing, `serial` grows by one per save, and a second writer
/// is refused with the name of the one holding the stack.
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
    /// Takes the stack for `operation` or fails at once naming its holder.
    fn lock(&self, operation: &str) -> Result<Box<dyn StateLock>, StateError>;
}

/// Checks what a backend read: a format this build understands.
pub fn parse_state(location: &str, text: &str) -> Result<State, StateError> {
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
