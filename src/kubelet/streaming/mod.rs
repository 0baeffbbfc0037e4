//! Streaming protocols the kubelet serves exec, attach and port-forward over.

pub mod spdy;
