//! What keeps a container in: capabilities and no_new_privs (and, in their own modules,
//! seccomp and user namespaces).

pub mod caps;
pub mod userns;
