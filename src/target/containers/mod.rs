//! The containers target: the reference components, each in its own Docker container, so process
//! and network boundaries are real and faults are real kills.
//!
//! So far only its image exists ([`image`]): a static kubespec binary in an image `FROM scratch`,
//! built locally because nothing can be pulled. This module must not know about Gherkin or the
//! harness, and it reaches Docker only through testcontainers (and the bollard client it lends).

pub mod image;
