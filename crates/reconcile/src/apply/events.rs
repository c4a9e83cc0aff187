//! What the executor reports while it runs. It only reports: the terminal
//! display, the JSON log and the watch daemon subscribe as [`EventSink`]s.

use reconcile_aws::ProviderError;
use serde::Serialize;
use std::sync::Arc;

/// The class of a failed step, from the typed AWS error behind it: callers
/// retry, wait or report by class, never by reading messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// AWS throttled the call beyond the SDK's retries.
    Throttled,
    NotFound,
    /// Something else holds or uses the resource (a dependency, a lock).
    Conflict,
    /// AWS refused a value.
    InvalidInput,
    AccessDenied,
    /// Any other error AWS answered with.
    Aws,
    /// Not AWS's answer: no connection, state could not be written, a step that
    /// panicked, a reference still unknown.
    Other,
}

/// Why one step failed: its class and the whole message (AWS's own words included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub class: ErrorClass,
    pub message: String,
}

impl StepError {
    pub fn other(message: impl Into<String>) -> Self {
        StepError {
            class: ErrorClass::Other,
            message: message.into(),
        }
    }
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        let class = match &e {
            ProviderError::Throttled(_) => ErrorClass::Throttled,
            ProviderError::NotFound(_) => ErrorClass::NotFound,
            ProviderError::DependencyViolation(_) | ProviderError::Conflict(_) => {
                ErrorClass::Conflict
            }
            ProviderError::InvalidInput(_) => ErrorClass::InvalidInput,
            ProviderError::AccessDenied(_) => ErrorClass::AccessDenied,
            ProviderError::Aws { .. } => ErrorClass::Aws,
            ProviderError::Other(_) => ErrorClass::Other,
        };
        StepError {
            class,
            message: e.to_string(),
        }
    }
}

/// One thing that happened during an apply. `key` is the resource's address,
/// with the old id for the delete half of a replacement.
#[derive(Clone, Debug)]
pub enum Event {
    /// An operation started; `verb` is "creating", "updating" or "deleting".
    Started {
        key: String,
        verb: &'static str,
    },
    /// What AWS says of an operation still in flight (a database "modifying").
    Status {
        key: String,
        status: String,
    },
    Finished {
        key: String,
        message: String,
    },
    Failed {
        key: String,
        error: StepError,
    },
    /// About the run as a whole (it was interrupted, say).
    Note(String),
}

/// Receives the executor's events, from several tasks at once.
pub trait EventSink: Send + Sync {
    fn event(&self, e: &Event);
}

/// Hears nothing.
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &Event) {}
}

/// Writes every event to the log (`tracing`), so `--log-format json` carries them.
pub struct LogEvents;

impl EventSink for LogEvents {
    fn event(&self, e: &Event) {
        match e {
            Event::Started { key, verb } => tracing::info!(address = %key, "{verb}"),
            Event::Status { key, status } => {
                tracing::info!(address = %key, status = %status, "status")
            }
            Event::Finished { key, message } => tracing::info!(address = %key, "{message}"),
            Event::Failed { key, error } => {
                tracing::warn!(address = %key, class = ?error.class, "failed: {}", error.message)
            }
            Event::Note(line) => tracing::info!("{line}"),
        }
    }
}

/// Hands every event to each of several sinks.
pub struct Fanout(pub Vec<Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn event(&self, e: &Event) {
        for s in &self.0 {
            s.event(e);
        }
    }
}
