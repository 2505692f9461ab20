//! Docker image references: `busybox` is `docker.io/library/busybox:latest`,
//! `127.0.0.1:5000/tools/box:1` names a registry, `name@sha256:...` pins a digest.

use super::digest::Digest;
use anyhow::Result;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `127.0.0.1:5000`, `[::1]:5000`...
    pub registry: String,
    /// The repository path in the registry: `library/busybox`.
    pub repository: String,
    /// A tag (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |why: &str| anyhow::anyhow!("invalid reference format {text:?}: {why}");
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return Err(invalid("bad tag"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !valid_registry(&registry) {
            return Err(invalid("bad registry host"));
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(invalid(
                "repository names are lowercase letters, digits and separators (. _ __ -)",
            ));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The repository as Docker shows it: `busybox`, `me/tool`, `127.0.0.1:5000/box`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            let short = self
                .repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository);
            short.to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// Whether the registry is on this machine: "insecure" in Docker's words, spoken to over
    /// plain HTTP when it does not speak TLS.
    pub fn registry_is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// `host[:port]`: DNS labels or an IPv4 address, or `[IPv6]`, and an optional port.
fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, port.strip_prefix(':'))
            }
            None => return false,
        },
        None => match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        },
    };
    let host_ok = host.is_none_or(|host| {
        host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut run = String::new();
    for &b in bytes {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            if !(run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.bytes().all(|c| c == b'-'))
            {
                return false;
            }
            run.clear();
        } else if b"._-".contains(&b) {
            run.push(b as char);
        } else {
            return false;
        }
    }
    true
}

/// The full reference, as the index stores it: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.full_name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("me/tool"), "docker.io/me/tool:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("127.0.0.1:5000/box"), "127.0.0.1:5000/box:latest");
        assert_eq!(full("localhost/a/b:v1"), "localhost/a/b:v1");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            full(&format!("box@{digest}")),
            format!("docker.io/library/box@{digest}")
        );
        let r = Reference::parse("127.0.0.1:5000/x/box:2").unwrap();
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/x/box");
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
    }

    #[test]
    fn loopback_registries() {
        for (text, loopback) in [
            ("127.0.0.1:5000/a", true),
            ("localhost:5000/a", true),
            ("[::1]:5000/a", true),
            ("127.1.2.3/a", true),
            ("busybox", false),
            ("quay.io/a/b", false),
            ("10.0.0.1:5000/a", false),
        ] {
            assert_eq!(
                Reference::parse(text).unwrap().registry_is_loopback(),
                loopback,
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "a:",
            "a:-x",
            "../x",
            "a/..",
            "x y",
            "-a",
            "a@sha256:zz",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
