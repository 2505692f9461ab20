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
    spec.set_annotations(None);
    // The test switches (debug builds): the container's, and those asked of `exec` itself.
    let switches: Vec<String> = container
        .annotations()
        .as_ref()
        .and_then(|a| a.get(super::test_switch::ANNOTATION).cloned())
        .into_iter()
        .chain(super::test_switch::requested(lookup_env))
        .collect();
    if !switches.is_empty() {
        let list = switches.join(",");
        spec.set_annotations(Some(
            [(super::test_switch::ANNOTATION.to_string(), list)].into(),
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::test_switch::{ANNOTATION, VARIABLE, disabled};

    #[test]
    fn test_switches_of_the_container_and_of_exec_are_both_kept() {
        let args = crate::cli::RunArgs {
            command: vec!["sleep".into(), "60".into()],
            network: "none".into(),
            ..Default::default()
        };
        let with = |list: &'static str| {
            move |key: &str| (key == VARIABLE && !list.is_empty()).then(|| list.to_string())
        };
        let container = crate::spec::build(
            &args,
            &"a".repeat(64),
            std::path::Path::new("/s"),
            None,
            &with("close-fds"),
        )
        .unwrap();
        let request = ExecRequest {
            command: vec!["true".into()],
            ..Default::default()
        };
        let spec = build(&container, 7, &request, &with("dumpable")).unwrap();
        assert_eq!(disabled(&spec, "close-fds"), cfg!(debug_assertions));
        assert_eq!(disabled(&spec, "dumpable"), cfg!(debug_assertions));
        let spec = build(&container, 7, &request, &with("")).unwrap();
        assert!(!disabled(&spec, "dumpable"));
        let annotations = spec.annotations().clone().unwrap_or_default();
        assert!(
            annotations.keys().all(|key| key == ANNOTATION),
            "{annotations:?}"
        );
    }
}
