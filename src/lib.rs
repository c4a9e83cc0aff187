//! reconcile: a declarative AWS reconciler. TOML desired state -> dependency graph ->
//! plan against live AWS -> apply in parallel, with state, journal and lock.

pub mod apply;
pub mod cli;
pub mod daemon;
pub mod graph;
pub mod model;
pub mod plan;
pub mod providers;
pub mod sensitive;
pub mod state;
