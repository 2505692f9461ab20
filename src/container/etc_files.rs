//! /etc/hostname, /etc/hosts and /etc/resolv.conf of a container with its own root
//! filesystem: written into its state directory and bind-mounted by the init, so the root
//! filesystem is never edited for them and they go away with the container.

use anyhow::{Context, Result};
use std::path::Path;

/// Docker's /etc/hosts, with the container's hostname on the loopback address.
pub fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n\
         127.0.0.1\t{hostname}\n"
    )
}

/// Writes the three files into `dir` (the names are those of `spec::mounts::ETC_FILES`).
pub fn write(dir: &Path, hostname: &str) -> Result<()> {
    // The host's resolver configuration, as Docker gives containers on the host network.
    let resolv = match std::fs::read("/etc/resolv.conf") {
        Ok(contents) => contents,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).context("reading /etc/resolv.conf"),
    };
    for (name, contents) in [
        ("resolv.conf", resolv),
        ("hostname", format!("{hostname}\n").into_bytes()),
        ("hosts", hosts(hostname).into_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_has_localhost_and_the_hostname() {
        let hosts = super::hosts("box");
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(hosts.ends_with("127.0.0.1\tbox\n"));
    }
}
