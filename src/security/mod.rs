//! What keeps a container in beyond its namespaces: capabilities and no_new_privs, seccomp
//! filters, and user namespaces.

pub mod caps;
pub mod seccomp;
pub mod userns;
