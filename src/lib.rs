//! kubespec: a declarative test-and-conformance harness for the Kubernetes pod lifecycle, and the
//! faithful reference cluster it runs against by default.
//!
//! # Layout
//! - [`clock`]: cluster time; every timer and timestamp reads it, never wall time.
//! - [`store`]: the versioned (MVCC) key/value store with watch; knows no HTTP.
//! - [`apiserver`]: REST, discovery, admission and watch serving; the only user of the store.
//! - [`cluster`]: assembles components into a running reference cluster (`kubespec up`) and
//!   writes its kubeconfig.
//!
//! Every component other than the apiserver is an HTTP client of it, and can run alone as
//! `kubespec component <name>`.

pub mod apiserver;
pub mod bench;
pub mod clock;
pub mod cluster;
pub mod controllers;
pub mod events;
pub mod labels;
pub mod leader;
pub mod scheduler;
pub mod store;
