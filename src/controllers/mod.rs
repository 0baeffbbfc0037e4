//! The controller-manager's control loops. Each is an API client: it watches through informers
//! and writes through the apiserver, never the store.
//!
//! - `runtime`: informers (watch-fed caches) and work queues shared by the loops.
//! - `replicaset`: ReplicaSet -> Pods.

pub mod replicaset;
pub mod runtime;
