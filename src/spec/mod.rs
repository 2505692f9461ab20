//! Turns `run`'s flags into the one value that describes a container: an OCI runtime spec
//! (`config.json`), filled with Docker's defaults.

pub mod devices;
mod env;
pub mod exec;
pub mod mounts;
pub mod resources;
mod security;
pub mod test_switch;
pub mod units;

use crate::cli::RunArgs;
use crate::security::{seccomp, userns};
use anyhow::{Context, Result, bail};
use env::{parse_env_flag, read_env_file, set_env};
use oci_spec::runtime::{Linux, LinuxNamespace, LinuxNamespaceType, Process, Root, Spec, User};
use security::SecurityOptions;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Annotation set when the root filesystem is to be id-mapped into the container's user
/// namespace (root with --userns auto): the runner makes the mapped mount, the init
/// attaches it.
pub const IDMAP_ROOTFS: &str = "org.mini-container.rootfs.idmap";

/// Annotation set by `--init`: the container's PID 1 is mini-container's own tiny init.
pub const INIT: &str = "org.mini-container.init";

/// True when the spec asks for the built-in init.
pub fn has_init(spec: &Spec) -> bool {
    annotation(spec, INIT)
}

/// True when the spec's annotation `key` is "true".
pub fn annotation(spec: &Spec, key: &str) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .is_some_and(|v| v == "true")
}

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
    image: Option<&ImageRoot>,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec> {
    let defaults = image.map(|image| &image.config);
    let command = command(args, defaults)?;
    let hostname = match &args.hostname {
        Some(hostname) => validate_hostname(hostname)?,
        None => id[..12].to_string(),
    };
    let image_workdir = defaults
        .and_then(|c| c.working_dir.clone())
        .filter(|dir| !dir.is_empty());
    let cwd = match args.workdir.clone().or(image_workdir) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => bail!("invalid working directory {dir:?}: it must be an absolute path"),
        None => PathBuf::from("/"),
    };
    let network = Network::parse(&args.network)?;
    let limits = resources::from_args(args, id)?;
    let rlimits = crate::rlimits::from_flags(&args.ulimit)?;
    let userns_mode = userns::Mode::parse(args.userns.as_deref())?;
    let maps = userns::mappings(
        userns_mode,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )?;
    let root = match (&args.rootfs, image) {
        (Some(dir), _) => Some(rootfs(dir, args.read_only)?),
        // Our own directory, made after the spec (with the state directory).
        (None, Some(image)) => {
            let mut root = Root::default();
            root.set_path(image.rootfs.clone());
            root.set_readonly(Some(args.read_only));
            Some(root)
        }
        (None, None) => None,
    };
    if maps.is_some() && image.is_some() {
        bail!("--image in a user namespace (rootless, or --userns auto) is not supported yet");
    }
    if maps.is_some() && root.is_none() {
        bail!(
            "a container in a user namespace (rootless, or --userns auto) needs --rootfs: \
             the host's files would all belong to nobody"
        );
    }
    if args.read_only && root.is_none() {
        bail!("--read-only needs --rootfs or --image: the host's own root is never made read-only");
    }

    // HOME comes from the user's passwd entry, set by the init (see user.rs) unless given.
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    for entry in defaults.and_then(|c| c.env.clone()).unwrap_or_default() {
        set_env(&mut env, entry);
    }
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
    let image_user = defaults
        .and_then(|c| c.user.clone())
        .filter(|u| !u.is_empty());
    if let Some(name) = args.user.as_ref().or(image_user.as_ref()) {
        crate::user::validate(name)?;
        // Resolved by the init against the container's own /etc/passwd and /etc/group.
        user.set_username(Some(name.clone()));
    }

    let mut mounts = Vec::new();
    if let Some(image) = image {
        // The image's layers under the container's own: mounted onto the root by the init.
        let options: Vec<&str> = image.overlay_options.iter().map(String::as_str).collect();
        mounts.push(mounts::mount("/", "overlay", "overlay", &options));
    }
    mounts.extend(match &root {
        Some(_) => mounts::rootfs_mounts(state_dir, args.privileged),
        None => {
            let mut mounts = vec![mounts::proc_mount()];
            mounts.extend(mounts::sys_mounts(args.privileged));
            mounts
        }
    });
    if let Some(maps) = &maps {
        // devpts refuses a gid=5 that the user namespace does not map.
        if !userns::maps_id(&maps.gids, 5) {
            mounts::drop_option(&mut mounts, "/dev/pts", "gid=5");
        }
    }
    for volume in &args.volume {
        mounts.push(mounts::parse_volume(volume)?);
    }
    for tmpfs in &args.tmpfs {
        mounts.push(mounts::parse_tmpfs(tmpfs)?);
    }

    let security = SecurityOptions::parse(&args.security_opt)?;
    let capabilities =
        crate::security::caps::compute(&args.cap_add, &args.cap_drop, args.privileged)?;

    if args.tty {
        crate::tty::check_stdin_is_a_terminal()?;
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_string());
        }
    }

    let mut process = Process::default();
    process.set_terminal(Some(args.tty));
    if args.tty {
        process.set_console_size(console_size()?);
    }
    process.set_user(user);
    process.set_args(Some(command));
    process.set_env(Some(env));
    process.set_cwd(cwd);
    process.set_capabilities(Some(crate::security::caps::to_spec(capabilities)));
    process.set_no_new_privileges(Some(security.no_new_privileges));
    // Only the limits asked for: the others stay as the runner's.
    process.set_rlimits(rlimits);

    let mut linux = Linux::default();
    let mut resources = limits.resources;
    if root.is_some() {
        let (nodes, rules) = device_flags(args, image.is_none())?;
        linux.set_devices(Some(nodes));
        resources
            .get_or_insert_with(Default::default)
            .set_devices(Some(rules));
    } else if !args.device.is_empty() || !args.device_cgroup_rule.is_empty() {
        bail!(
            "--device and --device-cgroup-rule need --rootfs or --image: without them the container has the host's /dev"
        );
    }
    linux.set_namespaces(Some(namespaces(network, maps.is_some())));
    // Root can id-map the root filesystem for a remapped container; a rootless caller's
    // own files are already the container root's.
    let idmap_rootfs = maps.is_some() && nix::unistd::geteuid().is_root();
    if let Some(maps) = maps {
        linux.set_uid_mappings(Some(maps.uids));
        linux.set_gid_mappings(Some(maps.gids));
    }
    linux.set_resources(resources);
    // Every container has a cgroup of its own, limits or not.
    linux.set_cgroups_path(Some(limits.cgroups_path));
    // --privileged: no filter, as in Docker.
    if !args.privileged {
        let capabilities = capability_names(&process);
        let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
        linux.set_seccomp(seccomp::for_spec(&security.seccomp, &capabilities)?);
    }
    // Docker's masked and read-only paths, with a root filesystem of the container's own or
    // without one (where the container sees the host's files, but its own /proc and /sys).
    if !args.privileged {
        linux.set_masked_paths(Some(mounts::masked_paths()));
        linux.set_readonly_paths(Some(
            mounts::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ));
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
    let mut annotations: std::collections::HashMap<String, String> =
        [(IDMAP_ROOTFS, idmap_rootfs), (INIT, args.init)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(key, _)| (key.to_string(), "true".to_string()))
            .collect();
    if let Some(list) = test_switch::requested(lookup_env) {
        annotations.insert(test_switch::ANNOTATION.to_string(), list);
    }
    spec.set_annotations((!annotations.is_empty()).then_some(annotations));
    // Test switch "pid-namespace": the host's pid namespace (the escape battery's attacks on
    // processes outside the container, shown succeeding without it).
    if test_switch::disabled(&spec, "pid-namespace")
        && let Some(namespaces) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
    {
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Pid);
    }
    Ok(spec)
}

/// The device nodes and device rules of a container with a root of its own (see
/// [`devices`]); `host_rootfs` for `--rootfs`.
fn device_flags(
    args: &RunArgs,
    host_rootfs: bool,
) -> Result<(
    Vec<oci_spec::runtime::LinuxDevice>,
    Vec<oci_spec::runtime::LinuxDeviceCgroup>,
)> {
    let mut nodes = mounts::default_devices();
    let mut allowed = Vec::new();
    for value in &args.device {
        let (more, rules) = devices::parse_device(value)?;
        devices::merge(&mut nodes, more);
        // The init makes the node under the rules: it needs mknod where the rules do not
        // grant it for every device (a host directory's).
        allowed.extend(rules.into_iter().map(|mut rule| {
            if let Some(access) = rule.access_mut().as_mut().filter(|a| !a.contains('m')) {
                access.push('m');
            }
            rule
        }));
    }
    for value in &args.device_cgroup_rule {
        allowed.push(devices::parse_cgroup_rule(value)?);
    }
    if args.privileged {
        let mut host = devices::host_devices()?;
        // The flags' nodes where they name other paths.
        devices::merge(&mut host, nodes);
        return Ok((host, devices::privileged_rules()));
    }
    Ok((nodes, devices::rules(host_rootfs, allowed)))
}

fn namespaces(network: Network, user: bool) -> Vec<LinuxNamespace> {
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
    if user {
        types.push(LinuxNamespaceType::User);
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

/// The caller's terminal size, for a container's own terminal (`-t`).
fn console_size() -> Result<Option<oci_spec::runtime::Box>> {
    let Some(size) = crate::tty::window_size(std::io::stdin().as_fd()) else {
        return Ok(None);
    };
    let console = oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(size.ws_row))
        .width(u64::from(size.ws_col))
        .build()
        .context("recording the terminal size")?;
    Ok(Some(console))
}

/// The root filesystem of `run --image`: where the overlay of the image's layers goes, its
/// options, and the image's defaults.
#[derive(Debug, Clone)]
pub struct ImageRoot {
    pub rootfs: PathBuf,
    pub overlay_options: Vec<String>,
    pub config: crate::image::config::RunConfig,
}

/// The command: as given, after the image's Entrypoint; the image's Cmd when none is given.
fn command(args: &RunArgs, image: Option<&crate::image::config::RunConfig>) -> Result<Vec<String>> {
    let entrypoint = image.and_then(|c| c.entrypoint.clone()).unwrap_or_default();
    let arguments = if args.command.is_empty() {
        image.and_then(|c| c.cmd.clone()).unwrap_or_default()
    } else {
        args.command.clone()
    };
    let command: Vec<String> = entrypoint.into_iter().chain(arguments).collect();
    if command.is_empty() {
        bail!(match image {
            Some(_) => "run: no command given and the image has no Entrypoint or Cmd",
            None => "run: no command given (usage: mini-container run [OPTIONS] COMMAND [ARG...])",
        });
    }
    Ok(command)
}

/// The capabilities the seccomp profile is resolved for: the process's bounding set, or
/// Docker's default set while the spec does not list capabilities.
fn capability_names(process: &Process) -> Vec<String> {
    match process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
    {
        Some(set) => set.iter().map(|cap| format!("CAP_{cap}")).collect(),
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
        let spec = build(
            &args(&["echo", "A"]),
            ID,
            Path::new("/state"),
            None,
            &caller_env,
        )
        .unwrap();
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
        let spec = build(&run, ID, Path::new("/state"), None, &caller_env).unwrap();
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Network)
        );
        run.network = "bridge".into();
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
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
        let spec = build(&run, ID, Path::new("/state"), None, &caller_env).unwrap();
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
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("a b".into());
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("x".repeat(65));
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.env = vec!["=x".into()];
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
        assert!(build(&args(&[]), ID, Path::new("/state"), None, &caller_env).is_err());
    }

    #[test]
    fn a_rootfs_gets_dockers_mounts_masks_and_devices() {
        let mut run = args(&["true"]);
        run.rootfs = Some("/tmp".into());
        run.read_only = true;
        run.volume = vec!["/tmp:/data:ro".into()];
        run.tmpfs = vec!["/scratch".into()];
        let spec = build(&run, ID, Path::new("/state/abc"), None, &caller_env).unwrap();
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
                "/sys/fs/cgroup",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts",
                "/data",
                "/scratch"
            ]
        );
        let hosts = &spec.mounts().as_ref().unwrap()[9];
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
    fn without_a_rootfs_proc_sys_cgroups_masks_and_what_was_asked_are_mounted() {
        let mut run = args(&["true"]);
        run.tmpfs = vec!["/mnt".into()];
        let spec = build(&run, ID, Path::new("/state"), None, &caller_env).unwrap();
        let mounts: Vec<(String, String)> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| {
                let options = m.options().clone().unwrap_or_default();
                (
                    m.destination().to_string_lossy().into_owned(),
                    options.join(","),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                ("/proc".into(), "nosuid,noexec,nodev".into()),
                ("/sys".into(), "nosuid,noexec,nodev,ro".into()),
                ("/sys/fs/cgroup".into(), "nosuid,noexec,nodev,ro".into()),
                ("/mnt".into(), "nosuid,nodev,noexec".into()),
            ]
        );
        assert!(spec.root().is_none());
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.devices().is_none());
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
                .contains(&"/proc/sysrq-trigger".into())
        );
        // --privileged: no masks, /sys and its cgroups writable, as in Docker.
        run.privileged = true;
        let spec = build(&run, ID, Path::new("/state"), None, &caller_env).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
        let sys = spec.mounts().as_ref().unwrap()[1]
            .options()
            .clone()
            .unwrap();
        assert!(sys.contains(&"rw".to_string()));
        run.privileged = false;
        run.read_only = true;
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
    }

    #[test]
    fn bad_rootfs_and_users_are_refused() {
        for bad in ["/nonexistent", "/etc/hostname"] {
            let mut run = args(&["true"]);
            run.rootfs = Some(bad.into());
            assert!(
                build(&run, ID, Path::new("/state"), None, &caller_env).is_err(),
                "{bad}"
            );
        }
        let mut run = args(&["true"]);
        run.user = Some(":".into());
        assert!(build(&run, ID, Path::new("/state"), None, &caller_env).is_err());
    }
}
