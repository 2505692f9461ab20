//! `-u USER[:GROUP]`: resolved inside the container, against its own /etc/passwd and
//! /etc/group (after pivot_root, so a hostile root filesystem cannot point the lookup at the
//! host's files), then the init switches to it just before exec.

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};

/// The ids the command runs with, and the home directory for HOME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Checks the shape of a `-u` value before anything starts.
pub fn validate(spec: &str) -> Result<()> {
    let (user, group) = split(spec);
    if user.is_empty() || group == Some("") || spec.matches(':').count() > 1 {
        bail!("invalid --user {spec:?}: use USER[:GROUP], names or numeric ids");
    }
    Ok(())
}

fn split(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    }
}

/// One line of /etc/passwd: name, uid, gid, home.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 {
            return None;
        }
        Some(PasswdEntry {
            name: fields[0],
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
            home: fields[5],
        })
    })
}

/// (name, gid, members) of each line of /etc/group.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 {
            return None;
        }
        let members = fields[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((fields[0], fields[2].parse().ok()?, members))
    })
}

/// Resolves `USER[:GROUP]` as Docker does: names must exist in the files; numeric ids need
/// not. Without GROUP the primary group is the passwd entry's (0 if there is none);
/// supplementary groups are those that list the user by name.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let (user_part, group_part) = split(spec);
    let (uid, entry) = match user_part.parse::<u32>() {
        Ok(uid) => (uid, passwd_entries(passwd).find(|e| e.uid == uid)),
        Err(_) => {
            let entry = passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .with_context(|| {
                    format!("unable to find user {user_part}: no matching entries in passwd file")
                })?;
            (entry.uid, Some(entry))
        }
    };
    let gid = match group_part {
        None => entry.as_ref().map_or(0, |e| e.gid),
        Some(part) => match part.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|(name, _, _)| *name == part)
                .map(|(_, gid, _)| gid)
                .with_context(|| {
                    format!("unable to find group {part}: no matching entries in group file")
                })?,
        },
    };
    let mut additional_gids = vec![gid];
    if let Some(entry) = &entry {
        for (_, member_gid, members) in group_entries(group) {
            if members.contains(&entry.name) && !additional_gids.contains(&member_gid) {
                additional_gids.push(member_gid);
            }
        }
    }
    let home = match &entry {
        Some(entry) => entry.home.to_string(),
        None if uid == 0 => "/root".to_string(),
        None => "/".to_string(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Reads the container's /etc/passwd and /etc/group (missing files are empty) and resolves.
pub fn resolve_in_container(spec: &str) -> Result<ResolvedUser> {
    let read = |path: &str| match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(err).with_context(|| format!("reading {path}")),
    };
    resolve(spec, &read("/etc/passwd")?, &read("/etc/group")?)
        .with_context(|| format!("setting user {spec:?}"))
}

/// Switches groups, then gid, then uid (the order that keeps the right to do the next), and
/// re-arms the death signal, which the kernel clears when the credentials change.
pub fn switch_to(user: &ResolvedUser) -> Result<()> {
    let what = || format!("switching to user {}:{}", user.uid, user.gid);
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    // A rootless user namespace that maps one gid denies setgroups; the groups stay as set.
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|policy| policy.trim() == "deny");
    if !setgroups_denied {
        setgroups(&groups).with_context(what)?;
    }
    let unmapped = |kind: &str, id: u32| {
        format!(
            "{kind} {id} is not mapped in the container's user namespace (a rootless container maps only root unless /etc/subuid and /etc/subgid give the user a range)"
        )
    };
    let gid = Gid::from_raw(user.gid);
    match setresgid(gid, gid, gid) {
        Err(nix::errno::Errno::EINVAL) => bail!(unmapped("gid", user.gid)),
        other => other.with_context(what)?,
    }
    let uid = Uid::from_raw(user.uid);
    match setresuid(uid, uid, uid) {
        Err(nix::errno::Errno::EINVAL) => bail!(unmapped("uid", user.uid)),
        other => other.with_context(what)?,
    }
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).with_context(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1000:app:/home/app:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
                          broken line\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nnogroup:x:65534:\n";

    #[test]
    fn names_and_ids_resolve_as_in_docker() {
        let app = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.home.as_str()),
            (1000, 1000, "/home/app")
        );
        assert_eq!(app.additional_gids, [1000, 2000]);
        let nobody = resolve("nobody", PASSWD, GROUP).unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
        let numeric = resolve("1000:1000", PASSWD, GROUP).unwrap();
        assert_eq!(numeric.home, "/home/app");
        let unknown_id = resolve("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            (unknown_id.uid, unknown_id.gid, unknown_id.home.as_str()),
            (4242, 0, "/")
        );
        let by_group_name = resolve("app:extra", PASSWD, GROUP).unwrap();
        assert_eq!(by_group_name.gid, 2000);
        assert_eq!(resolve("0", "", "").unwrap().home, "/root");
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = resolve("ghost", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert!(resolve("app:ghosts", PASSWD, GROUP).is_err());
    }

    #[test]
    fn malformed_values_are_refused_early() {
        for bad in ["", ":", "app:", ":app", "a:b:c"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        validate("app:app").unwrap();
        validate("1000").unwrap();
    }
}
