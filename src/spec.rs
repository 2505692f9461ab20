//! Turns `run`'s flags into the one value that describes a container: an OCI runtime spec
//! (`config.json`), filled with Docker's defaults. Also the parsers for env files and `-e`;
//! resource limits and their units are in the submodules.

pub mod resources;
pub mod units;

use crate::cli::RunArgs;
use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Linux, LinuxNamespace, LinuxNamespaceType, Mount, Process, Spec, User};
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

/// Builds the container's spec from `run`'s flags. `lookup_env` reads the caller's
/// environment for `-e K` and `K` lines in env files.
pub fn build(
    args: &RunArgs,
    id: &str,
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
    let limits = resources::from_args(args, id)?;
    let rlimits = crate::rlimits::from_flags(&args.ulimit)?;

    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
        "HOME=/root".to_string(),
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

    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_user(User::default());
    process.set_args(Some(args.command.clone()));
    process.set_env(Some(env));
    process.set_cwd(cwd);
    // Only the limits asked for: the others stay as the runner's.
    process.set_rlimits(rlimits);
    // Not applied yet: leave them out rather than describe what does not happen.
    process.set_capabilities(None);
    process.set_no_new_privileges(None);

    let mut linux = Linux::default();
    linux.set_namespaces(Some(namespaces(network)));
    linux.set_resources(limits.resources);
    // Every container has a cgroup of its own, limits or not.
    linux.set_cgroups_path(Some(limits.cgroups_path));
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);

    let mut spec = Spec::default();
    spec.set_version("1.2.0".to_string());
    spec.set_hostname(Some(hostname));
    // No --rootfs yet: the container sees the host's filesystem, with its own /proc.
    spec.set_root(None);
    spec.set_mounts(Some(vec![proc_mount()]));
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

fn proc_mount() -> Mount {
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from("/proc"));
    mount.set_typ(Some("proc".to_string()));
    mount.set_source(Some(PathBuf::from("proc")));
    mount.set_options(Some(
        ["nosuid", "noexec", "nodev"].map(String::from).to_vec(),
    ));
    mount
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

/// Adds `K=V` to the environment, replacing an earlier value of K.
fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default();
    match env
        .iter_mut()
        .find(|existing| existing.split('=').next() == Some(key))
    {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// `-e K=V` as given; `-e K` copies K from the caller's environment, or is dropped if unset.
fn parse_env_flag(
    value: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>> {
    let (name, _) = value.split_once('=').unwrap_or((value, ""));
    if name.is_empty() {
        bail!("invalid environment variable {value:?}: no variable name");
    }
    if value.contains('=') {
        Ok(Some(value.to_string()))
    } else {
        Ok(lookup_env(name).map(|v| format!("{name}={v}")))
    }
}

/// Reads a Docker env file: one `K=V` or `K` per line; blank lines and `#` comments skipped;
/// the value is taken literally, quotes included.
fn read_env_file(path: &Path, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let what = || format!("reading env file {}", path.display());
    let bytes = std::fs::read(path).with_context(what)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("it is not valid UTF-8"))
        .with_context(what)?;
    parse_env_file(&text, lookup_env).with_context(what)
}

fn parse_env_file(text: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = number + 1;
        if line.contains('\0') {
            bail!("line {line_no}: contains a NUL byte");
        }
        let name = line.split('=').next().unwrap_or_default();
        if name.is_empty() {
            bail!("line {line_no}: no variable name in {line:?}");
        }
        if name.contains(char::is_whitespace) {
            bail!("line {line_no}: variable {name:?} contains whitespace");
        }
        if line.contains('=') {
            entries.push(line.to_string());
        } else if let Some(value) = lookup_env(name) {
            entries.push(format!("{name}={value}"));
        }
    }
    Ok(entries)
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
        let spec = build(&args(&["echo", "A"]), ID, &caller_env).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        assert_eq!(
            env_of(&spec),
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=0123456789ab".into(),
                "HOME=/root".into()
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
        let spec = build(&run, ID, &caller_env).unwrap();
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Network)
        );
        run.network = "bridge".into();
        assert!(build(&run, ID, &caller_env).is_err());
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
        let spec = build(&run, ID, &caller_env).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            env_of(&spec),
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=0123456789ab".into(),
                "HOME=/home/x".into(),
                "A=from flag".into(),
                "B=\"quoted\"".into(),
                "FROM_CALLER=caller value".into(),
            ]
        );
    }

    #[test]
    fn bad_env_files_are_refused() {
        for text in ["=value", "MY VAR=1", "OK=1\n  =x", "A\0B=1"] {
            assert!(parse_env_file(text, &caller_env).is_err(), "{text:?}");
        }
        assert_eq!(
            parse_env_file("\u{feff}A=1\r\n  B=2", &caller_env).unwrap(),
            ["A=1", "B=2"]
        );
        let err = read_env_file(Path::new("/nonexistent/env"), &caller_env).unwrap_err();
        assert_eq!(
            crate::errors::describe(&err),
            "reading env file /nonexistent/env: No such file or directory"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut run = args(&["true"]);
        run.workdir = Some("relative".into());
        assert!(build(&run, ID, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("a b".into());
        assert!(build(&run, ID, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.hostname = Some("x".repeat(65));
        assert!(build(&run, ID, &caller_env).is_err());
        let mut run = args(&["true"]);
        run.env = vec!["=x".into()];
        assert!(build(&run, ID, &caller_env).is_err());
        assert!(build(&args(&[]), ID, &caller_env).is_err());
    }
}
