//! What confines the container's processes beyond namespaces: seccomp filters.

pub mod seccomp;
