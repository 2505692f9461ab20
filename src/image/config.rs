//! The JSON documents of images: the image config (what `run --image` needs), and the
//! manifests, indexes and descriptors of the OCI image spec and Docker's schema 2.
//! Only the fields mini-container uses are modelled; a config blob is stored as it came, so
//! its digest (the image id) never changes.

use super::digest::Digest;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// An image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

/// What a container of the image runs by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig> {
        serde_json::from_slice(bytes).context("parsing the image config")
    }
}

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index or a Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// Whether a descriptor's media type is an index (or manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// The OCI name of the machine's architecture (`amd64`, `arm64`...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Picks the manifest for this machine (linux and its architecture) from an index.
pub fn choose_platform(index: &Index) -> Option<&Descriptor> {
    let arch = host_architecture();
    index.manifests.iter().find(|d| {
        !is_index(&d.media_type)
            && d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_docker_config() {
        let json = br#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/w","User":"1:2",
                      "ExposedPorts":{"80/tcp":{}},"Labels":null},
            "container_config":{},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
        let config = ImageConfig::parse(json).unwrap();
        assert_eq!(config.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(config.config.working_dir.as_deref(), Some("/w"));
        assert_eq!(config.config.user.as_deref(), Some("1:2"));
        assert!(config.config.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(config.rootfs.diff_ids.len(), 1);
    }

    #[test]
    fn chooses_the_host_platform() {
        let d = |arch: &str| {
            serde_json::json!({"mediaType": OCI_MANIFEST, "size": 1,
                "digest": format!("sha256:{}", "0".repeat(63) + &arch.len().to_string()),
                "platform": {"architecture": arch, "os": "linux"}})
        };
        let index: Index = serde_json::from_value(serde_json::json!({
            "manifests": [d("s390x"), d(host_architecture()), d("riscv64")]
        }))
        .unwrap();
        let chosen = choose_platform(&index).unwrap();
        assert_eq!(
            chosen.platform.as_ref().unwrap().architecture,
            host_architecture()
        );
    }
}
