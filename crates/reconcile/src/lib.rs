//! reconcile: a declarative AWS reconciler. TOML desired state -> dependency graph ->
//! plan against live AWS -> apply in parallel, with state, journal and lock.
//! This crate is the program: the executor, the state backends, `ops` (load,
//! lock, observe, plan, apply) and, thin over it, the CLI and the watch daemon.

pub mod apply;
pub mod cli;
pub mod daemon;
pub mod ops;
pub mod signals;
pub mod state;
