//! The spec of `exec`: the running container's own, with the new process in it and every
//! namespace joined by path (/proc/PID/ns/*) instead of created; nothing to mount or set up.

use super::env::{parse_env_flag, set_env};
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use std::path::PathBuf;

/// What `exec` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
}

/// The name of a namespace type under /proc/PID/ns.
fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Builds the spec of a process in the container whose init is `init_pid`.
pub fn build(
    container: &Spec,
    init_pid: i32,
    request: &ExecRequest,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec> {
    if request.command.is_empty() {
        bail!(
            "exec: no command given (usage: mini-container exec [OPTIONS] CONTAINER COMMAND [ARG...])"
        );
    }
    let mut process = container
        .process()
        .clone()
        .context("reading the container's spec: it has no process")?;
    process.set_args(Some(request.command.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    for value in &request.env {
        if let Some(entry) = parse_env_flag(value, lookup_env)? {
            set_env(&mut env, entry);
        }
    }
    if request.tty {
        crate::tty::check_stdin_is_a_terminal()?;
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_string());
        }
    }
    process.set_env(Some(env));
    if let Some(dir) = &request.workdir {
        if !dir.starts_with('/') {
            bail!("invalid working directory {dir:?}: it must be an absolute path");
        }
        process.set_cwd(PathBuf::from(dir));
    }
    if let Some(user) = &request.user {
        crate::user::validate(user)?;
        let mut process_user = process.user().clone();
        process_user.set_username(Some(user.clone()));
        process.set_user(process_user);
    }
    process.set_terminal(Some(request.tty));
    process.set_console_size(None);
    if request.tty {
        process.set_console_size(super::console_size()?);
    }

    let mut linux = container.linux().clone().unwrap_or_default();
    let joined: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut namespace| {
            let path = format!("/proc/{init_pid}/ns/{}", proc_name(namespace.typ()));
            namespace.set_path(Some(PathBuf::from(path)));
            namespace
        })
        .collect();
    linux.set_namespaces(Some(joined));
    // The container is set up already: nothing to mount, map or limit again.
    linux.set_devices(None);
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    linux.set_resources(None);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    let mut spec = container.clone();
    spec.set_process(Some(process));
    spec.set_linux(Some(linux));
    spec.set_mounts(None);
    spec.set_root(None);
    spec.set_hostname(None);
    // Only the test switches of this `exec`'s caller (debug builds), for its exec side.
    spec.set_annotations(
        super::test_switch::requested(lookup_env)
            .map(|list| [(super::test_switch::ANNOTATION.to_string(), list)].into()),
    );
    Ok(spec)
}
