//! kubespec: a declarative test-and-conformance harness for the Kubernetes pod lifecycle, and the
//! faithful reference cluster it runs against by default.
//!
//! # Layout
//! - [`harness`]: `kubespec test`: Gherkin specs of the pod lifecycle, their steps, timeline,
//!   event checks, snapshots and reports.
//! - [`target`]: where scenarios run (embedded reference cluster, kubeconfig) and what each target
//!   can do (capabilities).
//! - [`clock`]: cluster time; every timer and timestamp reads it, never wall time.
//! - [`store`]: the versioned (MVCC) key/value store with watch; knows no HTTP.
//! - [`apiserver`]: REST, discovery, admission and watch serving; the only user of the store.
//!   `rest/` routes requests (with the one retry-on-conflict helper) to `read`, `write` (create,
//!   update, patch, apply), `delete` and `subresource`; `table/` prints Tables for `kubectl get`
//!   (column definitions, formatting, one file per printer family); `openapi_v2/` is the Swagger
//!   document (definitions, paths, gnostic messages, protobuf encoding); `protobuf.rs` decodes
//!   protobuf bodies against the schema in `protobuf_schema.txt`.
//! - [`cluster`]: assembles components into a running reference cluster (`kubespec up`) and
//!   writes its kubeconfig.
//! - [`controllers`]: the controller-manager's control loops, on informers and work queues;
//!   `deployment/` is split as upstream's (the loop in `mod.rs`; `plan`, `sync`, `rolling`,
//!   `recreate`, `rollback`, `progress`, `util`).
//! - [`scheduler`]: filter/score plugins and the binding loop; `plugins/` has one file per plugin
//!   as upstream's framework/plugins, with request accounting, NodeInfo and the FitError text.
//! - [`runtime`]: the client-side runtime (informers, work queues) that the controllers, the
//!   scheduler, the kubelet and the harness share.
//! - [`leader`]: Lease-based leader election for controller-manager and scheduler replicas, as
//!   explicit state (candidate, leading, renewing) with pure steps.
//! - [`kubelet`]: the node agent: node status and Lease, pod workers (their life as explicit
//!   state in `pod_state`; restart and pull back-off in `backoff`), lifecycle hooks, probes,
//!   volumes, status, and a simulated container runtime that models real images (`runtime/`:
//!   the simulator, the image catalog and models, and `sh/`, the sh subset: lexer, parser,
//!   interpreter, builtins).
//! - [`events`]: Event recorders (core/v1 and events.k8s.io/v1) as upstream components use them.
//! - [`k8s`]: one implementation of each Kubernetes rule more than one layer needs.
//! - [`labels`]: label selector matching shared by admission and the controllers.
//! - [`probe`]: HTTP probes as upstream's `pkg/probe` (the kubelet's probes and hooks, the
//!   apiserver's componentstatus checks).
//! - [`server`]: HTTP serving limits (header timeout, connection cap) every server shares.
//! - [`bench`]: load generators behind `kubespec bench`.
//!
//! Every component other than the apiserver is an HTTP client of it, and can run alone as
//! `kubespec component <name>`.

pub mod apiserver;
pub mod bench;
pub mod clock;
pub mod cluster;
pub mod controllers;
pub mod events;
#[doc(hidden)]
pub mod fuzz;
pub mod harness;
pub mod host;
pub mod k8s;
pub mod kubelet;
pub mod labels;
pub mod leader;
pub mod netfilter;
pub mod probe;
pub mod proxy;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod target;
