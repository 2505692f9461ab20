//! Turns `run`'s flags into the one value that describes a container: an OCI runtime spec
//! (`config.json`), filled with Docker's defaults.

mod env;
pub mod mounts;
mod security;

use crate::cli::RunArgs;
use crate::security::seccomp;
use anyhow::{Context, Result, bail};
use env::{parse_env_flag, read_env_file, set_env};
use oci_spec::runtime::{Linux, LinuxNamespace, LinuxNamespaceType, Process, Root, Spec, User};
use security::SecurityOptions;
use std::path::{Path, PathBuf};

/// The PATH every container starts with, as in Docker.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the container's network comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network namespace.
    Host,
    /// A new network namespace holding only `lo`, brought up.
    None,
}

impl Network {
    fn parse(value: &str) -> Result<Network> {
        match value {
            "host" => Ok(Network::Host),
            "none" => Ok(Network::None),
            other => bail!("invalid value for --network: {other:?} (supported: host, none)"),
        }
    }
}

/// Builds the container's spec from `run`'s flags. `state_dir` is where the runner will
/// write the container's /etc files; `lookup_env` reads the caller's environment for `-e K`
/// and `K` lines in env files.
pub fn build(
    args: &RunArgs,
    id: &str,
    state_dir: &Path,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec> {
    if args.command.is_empty() {
        bail!("run: no command given (usage: mini-container run [OPTIONS] COMMAND [ARG...])");
    }
    let hostname = match &args.hostname {
        Some(hostname) => validate_hostname(hostname)?,
        None => id[..12].to_string(),
    };
    let cwd = match &args.workdir {
        Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => bail!("invalid working directory {dir:?}: it must be an absolute path"),
        None => PathBuf::from("/"),
    };
    let network = Network::parse(&args.network)?;
    let security = SecurityOptions::parse(&args.security_opt)?;
    let root = match &args.rootfs {
        Some(dir) => Some(rootfs(dir, args.read_only)?),
        None => None,
    };
    if args.read_only && root.is_none() {
        bail!("--read-only needs --rootfs: the host's own root is never made read-only");
    }

    // HOME comes from the user's passwd entry, set by the init (see user.rs) unless given.
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    for file in &args.env_file {
        for entry in read_env_file(file, lookup_env)? {
            set_env(&mut env, entry);
        }
    }
    for value in &args.env {
        if let Some(entry) = parse_env_flag(value, lookup_env)? {
            set_env(&mut env, entry);
        }
    }

    let mut user = User::default();
    if let Some(name) = &args.user {
        crate::user::validate(name)?;
        // Resolved by the init against the container's own /etc/passwd and /etc/group.
        user.set_username(Some(name.clone()));
    }

    let mut mounts = match &root {
        Some(_) => mounts::rootfs_mounts(state_dir),
        None => vec![mounts::proc_mount()],
    };
    for volume in &args.volume {
        mounts.push(mounts::parse_volume(volume)?);
    }
    for tmpfs in &args.tmpfs {
        mounts.push(mounts::parse_tmpfs(tmpfs)?);
    }

    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_user(user);
    process.set_args(Some(args.command.clone()));
    process.set_env(Some(env));
    process.set_cwd(cwd);
    // Not applied yet: leave them out rather than describe what does not happen.
    process.set_capabilities(None);
    process.set_rlimits(None);
    process.set_no_new_privileges(None);

    let mut linux = Linux::default();
    let capabilities = capability_names(&process);
    let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
    linux.set_seccomp(seccomp::for_spec(&security.seccomp, &capabilities)?);
    linux.set_namespaces(Some(namespaces(network)));
    linux.set_resources(None);
    // Docker's protections belong to a root filesystem of the container's own; without one
    // the container sees the host's filesystem, as in the article, with its own /proc.
    if root.is_some() {
        linux.set_masked_paths(Some(mounts::masked_paths()));
        linux.set_readonly_paths(Some(
            mounts::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ));
        linux.set_devices(Some(mounts::default_devices()));
    } else {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }

    let mut spec = Spec::default();
    spec.set_version("1.2.0".to_string());
    spec.set_hostname(Some(hostname));
    spec.set_root(root);
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

fn namespaces(network: Network) -> Vec<LinuxNamespace> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    if network == Network::None {
        types.push(LinuxNamespaceType::Network);
    }
    types
        .into_iter()
        .map(|typ| {
            let mut namespace = LinuxNamespace::default();
            namespace.set_typ(typ);
            namespace
        })
        .collect()
}

/// The capabilities the seccomp profile is resolved for: the process's bounding set, or
/// Docker's default set while the spec does not list capabilities.
fn capability_names(process: &Process) -> Vec<String> {
    match process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
    {
        Some(set) => set.iter().map(|cap| cap.to_string()).collect(),
        None => seccomp::DEFAULT_CAPABILITIES.map(String::from).to_vec(),
    }
}

/// `--rootfs DIR`: an existing directory, taken by its canonical path.
fn rootfs(dir: &Path, read_only: bool) -> Result<Root> {
    let what = || format!("invalid --rootfs {}", dir.display());
    let path = std::fs::canonicalize(dir).with_context(what)?;
    if !path.is_dir() {
        bail!("{}: not a directory", what());
    }
    let mut root = Root::default();
    root.set_path(path);
    root.set_readonly(Some(read_only));
    Ok(root)
}

/// Hostnames are what the kernel takes (at most 64 bytes) and what DNS allows.
fn validate_hostname(hostname: &str) -> Result<String> {
    let valid_chars = hostname
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if hostname.is_empty() || hostname.len() > 64 || !valid_chars {
        bail!("invalid hostname {hostname:?}: use 1 to 64 letters, digits, '-', '.' or '_'");
    }
    Ok(hostname.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn caller_env(name: &str) -> Option<String> {
        (name == "FROM_CALLER").then(|| "caller value".to_string())
    }

    fn args(command: &[&str]) -> RunArgs {
        RunArgs {
            command: command.iter().map(|s| s.to_string()).collect(),
            network: "host".into(),
            ..RunArgs::default()
        }
    }

    fn env_of(spec: &Spec) -> Vec<String> {
        spec.process().as_ref().unwrap().env().clone().unwrap()
    }

    #[test]
    fn defaults_are_dockers() {
        let spec = build(&args(&["echo", "A"]), ID, Path::new("/state"), &caller_env).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        assert_eq!(
            env_of(&spec),
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=0123456789ab".into(),
            ]
        );
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.cwd(), Path::new("/"));
        assert_eq!(
            process.args().as_deref(),
            Some(&["echo".into(), "A".into()][..])
        );
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            !namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Network),
            "--network host shares the host's network namespace"
        );
    }

    #[test]
    fn network_none_adds_a_network_namespace() {
        let mut run = args(&["true"]);
        run.network = "none".into();
        let spec = build(&run, ID, Path::new("/state"), &caller_env).unwrap();
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Network)
        );
        run.network = "bridge".into();
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
    }

    #[test]
    fn env_flags_override_env_files_and_defaults() {
        let dir = std::env::temp_dir().join(format!("mc-spec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("env");
        std::fs::write(
            &file,
            "# comment\n\nA=from file\nB=\"quoted\"\nFROM_CALLER\nUNSET\n",
        )
        .unwrap();
        let mut run = args(&["env"]);
        run.env_file = vec![file];
        run.env = vec![
            "A=from flag".into(),
            "HOME=/home/x".into(),
            "UNSET_TOO".into(),
        ];
        let spec = build(&run, ID, Path::new("/state"), &caller_env).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            env_of(&spec),
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=0123456789ab".into(),
                "A=from flag".into(),
                "B=\"quoted\"".into(),
                "FROM_CALLER=caller value".into(),
                "HOME=/home/x".into(),
            ]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut run = args(&["true"]);
        run.workdir = Some("relative".into());
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("a b".into());
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("x".repeat(65));
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
        let mut run = args(&["true"]);
        run.env = vec!["=x".into()];
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
        assert!(build(&args(&[]), ID, Path::new("/state"), &caller_env).is_err());
    }

    #[test]
    fn a_rootfs_gets_dockers_mounts_masks_and_devices() {
        let mut run = args(&["true"]);
        run.rootfs = Some("/tmp".into());
        run.read_only = true;
        run.volume = vec!["/tmp:/data:ro".into()];
        run.tmpfs = vec!["/scratch".into()];
        let spec = build(&run, ID, Path::new("/state/abc"), &caller_env).unwrap();
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), &std::fs::canonicalize("/tmp").unwrap());
        assert_eq!(root.readonly(), Some(true));
        let destinations: Vec<String> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts",
                "/data",
                "/scratch"
            ]
        );
        let hosts = &spec.mounts().as_ref().unwrap()[8];
        assert_eq!(
            hosts.source().as_deref(),
            Some(Path::new("/state/abc/hosts"))
        );
        let linux = spec.linux().as_ref().unwrap();
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".into())
        );
        assert!(
            linux
                .readonly_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/sys".into())
        );
        assert_eq!(linux.devices().as_ref().unwrap().len(), 6);
    }

    #[test]
    fn without_a_rootfs_only_proc_and_what_was_asked_is_mounted() {
        let mut run = args(&["true"]);
        run.tmpfs = vec!["/mnt".into()];
        let spec = build(&run, ID, Path::new("/state"), &caller_env).unwrap();
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 2);
        assert!(spec.root().is_none());
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.masked_paths().is_none() && linux.devices().is_none());
        run.read_only = true;
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
    }

    #[test]
    fn bad_rootfs_and_users_are_refused() {
        for bad in ["/nonexistent", "/etc/hostname"] {
            let mut run = args(&["true"]);
            run.rootfs = Some(bad.into());
            assert!(
                build(&run, ID, Path::new("/state"), &caller_env).is_err(),
                "{bad}"
            );
        }
        let mut run = args(&["true"]);
        run.user = Some(":".into());
        assert!(build(&run, ID, Path::new("/state"), &caller_env).is_err());
    }
}
