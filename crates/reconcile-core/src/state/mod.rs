//! State types: what reconcile records of a stack (resources, outputs, deposed
//! copies, the journal of in-flight AWS mutations) and the [`StateStore`]
//! interface its backends implement.

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
    /// Writes the whole state atomically, setting its lineage at the first
    /// write and bumping its serial.
    fn save(&self, state: &mut State) -> Result<(), StateError>;
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
}
