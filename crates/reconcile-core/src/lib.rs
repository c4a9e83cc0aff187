//! reconcile-core: the pure layers of reconcile. Values, schemas and diagnostics,
//! the TOML loader, the dependency graph, the planner, plan and state types, and
//! the two interfaces the outer crates implement: the kind catalog and the state
//! store. Nothing here talks to AWS or needs an async runtime.

pub mod catalog;
pub mod diff;
pub mod graph;
pub mod model;
pub mod plan;
pub mod sensitive;
pub mod state;
