//! User namespaces. Root runs containers in the host's user namespace unless `--userns auto`
//! asks for a remapped one, whose root is an unprivileged range of host ids from /etc/subuid
//! and /etc/subgid. A user other than root always gets one (rootless): their own ids become
//! root inside, plus their subordinate range through newuidmap/newgidmap when they have one.
//! The parent writes the maps while the child waits, before it re-execs.

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use std::path::Path;
use std::process::Command;

/// `--userns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The host's user namespace (root only; a rootless run always remaps).
    Host,
    /// A namespace whose root is a range of subordinate ids.
    Auto,
}

impl Mode {
    pub fn parse(value: Option<&str>) -> Result<Mode> {
        match value {
            None | Some("") | Some("host") => Ok(Mode::Host),
            Some("auto") => Ok(Mode::Auto),
            Some(other) => bail!("invalid --userns {other:?} (use host or auto)"),
        }
    }
}

/// The uid and gid maps of a container, or none for the host's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mappings {
    pub uids: Vec<LinuxIdMapping>,
    pub gids: Vec<LinuxIdMapping>,
}

impl Mappings {
    /// The maps of a spec that asks for a new user namespace.
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Option<Mappings> {
        let linux = spec.linux().as_ref()?;
        let new_userns = linux.namespaces().as_ref()?.iter().any(|ns| {
            ns.typ() == oci_spec::runtime::LinuxNamespaceType::User && ns.path().is_none()
        });
        new_userns.then(|| Mappings {
            uids: linux.uid_mappings().clone().unwrap_or_default(),
            gids: linux.gid_mappings().clone().unwrap_or_default(),
        })
    }
}

fn mapping(container_id: u32, host_id: u32, size: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(container_id)
        .host_id(host_id)
        .size(size)
        .build()
        .expect("every field of an id mapping is set")
}

/// The first subordinate range of `user` (by name or id) in an /etc/subuid-style text.
pub fn subordinate_range(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        let start = fields.next()?.parse().ok()?;
        let count = fields.next()?.parse().ok()?;
        (owner == name || owner == id.to_string()).then_some((start, count))
    })
}

fn read_range(file: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    subordinate_range(&text, name, id)
}

/// The caller's user name, from /etc/passwd (not NSS: the binary is static).
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn newidmap_available() -> bool {
    ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|p| Path::new(p).exists())
}

/// The maps for this run, from `--userns` and who runs mini-container.
pub fn mappings(mode: Mode, euid: u32, egid: u32) -> Result<Option<Mappings>> {
    if euid == 0 && mode == Mode::Host {
        return Ok(None);
    }
    let name = user_name(euid);
    if euid == 0 {
        let uids = read_range("/etc/subuid", &name, euid);
        let gids = read_range("/etc/subgid", &name, euid);
        let (Some((uid_start, uid_count)), Some((gid_start, gid_count))) = (uids, gids) else {
            bail!(
                "--userns auto: no subordinate ids for {name} in /etc/subuid and /etc/subgid \
                 (add e.g. '{name}:100000:65536' to both)"
            );
        };
        return Ok(Some(Mappings {
            uids: vec![mapping(0, uid_start, uid_count)],
            gids: vec![mapping(0, gid_start, gid_count)],
        }));
    }
    // Rootless: the caller is root inside; their subordinate range, if any, follows.
    let mut uids = vec![mapping(0, euid, 1)];
    let mut gids = vec![mapping(0, egid, 1)];
    if newidmap_available() {
        let uid_range = read_range("/etc/subuid", &name, euid);
        let gid_range = read_range("/etc/subgid", &name, euid);
        if let (Some((us, uc)), Some((gs, gc))) = (uid_range, gid_range) {
            uids.push(mapping(1, us, uc));
            gids.push(mapping(1, gs, gc));
        }
    }
    Ok(Some(Mappings { uids, gids }))
}

/// True if `id` is mapped into the container.
pub fn maps_id(maps: &[LinuxIdMapping], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.container_id() && id - m.container_id() < m.size())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the child's maps. Root writes them itself; so can a user mapping only their own
/// ids (after denying setgroups, as the kernel requires for gid_map); anything more goes
/// through the setuid helpers newuidmap and newgidmap, which check /etc/subuid.
pub fn write_mappings(pid: Pid, maps: &Mappings) -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    if root || (maps.uids.len() == 1 && maps.gids.len() == 1) {
        if !root {
            write_proc(pid, "setgroups", "deny")?;
        }
        write_proc(pid, "uid_map", &map_text(&maps.uids))?;
        write_proc(pid, "gid_map", &map_text(&maps.gids))?;
        return Ok(());
    }
    run_helper("newuidmap", pid, &maps.uids)?;
    run_helper("newgidmap", pid, &maps.gids)
}

fn write_proc(pid: Pid, file: &str, contents: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, contents).with_context(|| format!("writing {path}"))
}

fn run_helper(helper: &str, pid: Pid, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut command = Command::new(helper);
    command.arg(pid.to_string());
    for m in maps {
        command.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let output = command
        .output()
        .with_context(|| format!("running {helper}"))?;
    if !output.status.success() {
        bail!(
            "{helper}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_id() {
        let text = "alice:100000:65536\n1001:200000:1000\nbad line\n";
        assert_eq!(
            subordinate_range(text, "alice", 1000),
            Some((100000, 65536))
        );
        assert_eq!(subordinate_range(text, "bob", 1001), Some((200000, 1000)));
        assert_eq!(subordinate_range(text, "carol", 1002), None);
    }

    #[test]
    fn modes_and_maps() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::Host);
        assert_eq!(Mode::parse(Some("auto")).unwrap(), Mode::Auto);
        assert!(Mode::parse(Some("private")).is_err());
        let maps = [mapping(0, 1000, 1), mapping(1, 100000, 65536)];
        assert!(maps_id(&maps, 0) && maps_id(&maps, 5) && maps_id(&maps, 65536));
        assert!(!maps_id(&maps, 65537));
        assert_eq!(map_text(&maps), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn root_keeps_the_hosts_namespace_by_default() {
        assert_eq!(mappings(Mode::Host, 0, 0).unwrap(), None);
        let rootless = mappings(Mode::Host, 4242, 4242).unwrap().unwrap();
        assert_eq!(rootless.uids[0], mapping(0, 4242, 1));
    }
}
