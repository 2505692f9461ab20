//! Test images: a busybox root filesystem (from Debian's busybox-static), tarballs of it made
//! by GNU tar, gzip and zstd, and hand-made hostile archives.

use super::{TestRoot, ok_stdout, path_str};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const APPLETS: &[&str] = &["sh", "ls", "cat", "echo", "test", "true"];

/// Writes a small busybox root filesystem into `dir`: /bin/busybox, applet links, /etc/hello.
pub fn busybox_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("/bin/busybox is missing: install busybox-static (tests/run-all.sh does)");
    for applet in APPLETS {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/hello"), "hello from the image\n").unwrap();
}

/// Runs a shell command line, asserting success.
pub fn sh(script: &str) -> String {
    let output = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `tar -C dir -c .`, as docker export writes it, compressed with `compressor` ("cat",
/// "gzip" or "zstd").
pub fn tarball(dir: &Path, out: &Path, compressor: &str) {
    sh(&format!(
        "tar --numeric-owner -C '{}' -cf - . | {compressor} > '{}'",
        dir.display(),
        out.display()
    ));
}

/// `image inspect` of one image, as JSON.
pub fn inspect(root: &TestRoot, image: &str) -> serde_json::Value {
    let json = ok_stdout(&root.run(&["image", "inspect", image]));
    let mut all: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// The image's layer directories, topmost first.
pub fn lower_dirs(root: &TestRoot, image: &str) -> Vec<PathBuf> {
    inspect(root, image)["LowerDirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect()
}

/// The store's directory under a test root.
pub fn storage(root: &TestRoot) -> PathBuf {
    root.path.join("lib")
}

/// Names of the entries in one of the store's directories (empty when it does not exist).
pub fn store_entries(root: &TestRoot, sub: &str) -> Vec<String> {
    match fs::read_dir(storage(root).join(sub)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Asserts the store holds no layer, image or leftover work.
pub fn assert_store_empty(root: &TestRoot) {
    assert_eq!(
        store_entries(root, "layers"),
        Vec::<String>::new(),
        "layers"
    );
    assert_eq!(
        store_entries(root, "blobs/sha256"),
        Vec::<String>::new(),
        "blobs"
    );
    assert_eq!(
        store_entries(root, "tmp"),
        Vec::<String>::new(),
        "work left"
    );
    let images = ok_stdout(&root.run(&["images", "-q"]));
    assert_eq!(images, "", "images listed");
}

/// One raw tar entry, written byte by byte so that hostile names survive.
pub struct RawEntry<'a> {
    pub name: &'a str,
    pub kind: u8,
    pub link: &'a str,
    pub data: &'a [u8],
    pub mode: u32,
}

impl<'a> RawEntry<'a> {
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        RawEntry {
            name,
            kind: b'0',
            link: "",
            data,
            mode: 0o644,
        }
    }
    pub fn dir(name: &'a str) -> Self {
        RawEntry {
            name,
            kind: b'5',
            link: "",
            data: b"",
            mode: 0o755,
        }
    }
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        RawEntry {
            name,
            kind: b'2',
            link: target,
            data: b"",
            mode: 0o777,
        }
    }
    pub fn hardlink(name: &'a str, target: &'a str) -> Self {
        RawEntry {
            name,
            kind: b'1',
            link: target,
            data: b"",
            mode: 0o644,
        }
    }
}

/// A ustar archive of `entries`, names taken literally (no checks, no normalization).
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = [0u8; 512];
        header[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        let octal = |field: &mut [u8], value: u64| {
            let text = format!("{value:0width$o}\0", width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        };
        octal(&mut header[100..108], u64::from(entry.mode));
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], entry.data.len() as u64);
        octal(&mut header[136..148], 1_700_000_000);
        header[156] = entry.kind;
        header[157..157 + entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(entry.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub fn path_string(path: &Path) -> String {
    path_str(path).to_string()
}

/// A two-layer busybox image built by umoci in the OCI layout `<dir>/layout`, tagged `tag`:
/// the first layer holds the busybox root filesystem plus /opt/dir/a, the second deletes
/// /etc/hello and /opt/dir/a (whiteouts) and adds /etc/second and /opt/dir/b. Its config:
/// Cmd sh, Env GREETING=hi, WorkingDir /opt, User 0:0, ExposedPorts 80/tcp.
pub fn umoci_layout(dir: &Path, tag: &str) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let (l, b) = (path_string(&layout), path_string(&bundle));
    sh(&format!(
        "umoci init --layout '{l}' && umoci new --image '{l}:{tag}'"
    ));
    sh(&format!("umoci unpack --image '{l}:{tag}' '{b}'"));
    busybox_rootfs(&bundle.join("rootfs"));
    fs::create_dir_all(bundle.join("rootfs/opt/dir")).unwrap();
    fs::write(bundle.join("rootfs/opt/dir/a"), "a\n").unwrap();
    sh(&format!(
        "umoci repack --image '{l}:{tag}' '{b}' && rm -rf '{b}'"
    ));
    sh(&format!("umoci unpack --image '{l}:{tag}' '{b}'"));
    fs::remove_file(bundle.join("rootfs/etc/hello")).unwrap();
    fs::remove_file(bundle.join("rootfs/opt/dir/a")).unwrap();
    fs::write(bundle.join("rootfs/etc/second"), "second layer\n").unwrap();
    fs::write(bundle.join("rootfs/opt/dir/b"), "b\n").unwrap();
    sh(&format!(
        "umoci repack --image '{l}:{tag}' '{b}' && rm -rf '{b}'"
    ));
    sh(&format!(
        "umoci config --image '{l}:{tag}' --config.cmd sh --config.env GREETING=hi \
         --config.workingdir /opt --config.user 0:0 --config.exposedports 80/tcp"
    ));
    layout
}

/// What a container of the image would see: the layers stacked by overlayfs (in a private
/// mount namespace, so nothing can leak), listed with `find` and the files' contents.
pub fn stacked_view(lower_dirs: &[PathBuf], mountpoint: &Path) -> String {
    fs::create_dir_all(mountpoint).unwrap();
    let lower: Vec<String> = lower_dirs.iter().map(|p| path_string(p)).collect();
    let m = path_string(mountpoint);
    let lowerdir = if lower.len() == 1 {
        // overlayfs wants two layers at least without an upper dir: add an empty one.
        let empty = mountpoint.with_extension("empty");
        fs::create_dir_all(&empty).unwrap();
        format!("{}:{}", lower[0], path_string(&empty))
    } else {
        lower.join(":")
    };
    sh(&format!(
        "unshare --mount --propagation private sh -c \
         'mount -t overlay overlay -o ro,lowerdir={lowerdir} {m} && cd {m} && \
          find . | sort && cat etc/hello etc/second opt/dir/a opt/dir/b 2>/dev/null; \
          cmp bin/busybox /bin/busybox && echo busybox-identical; true'"
    ))
}

/// The architecture name OCI platforms use for this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The descriptor `index.json` of a layout holds for `tag`.
pub fn layout_descriptor(layout: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"))
        .clone()
}

/// Adds to the layout an image index tagged `tag` (a manifest list, for the registry) whose
/// entries are the manifests of `entries` (tag, architecture).
pub fn add_platform_index(layout: &Path, tag: &str, entries: &[(&str, &str)]) {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(image, arch)| {
            let d = layout_descriptor(layout, image);
            serde_json::json!({
                "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
                "platform": {"architecture": arch, "os": "linux"}
            })
        })
        .collect();
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let digest = sh(&format!(
        "printf '%s' '{}' | sha256sum | cut -d' ' -f1",
        String::from_utf8(nested.clone()).unwrap()
    ));
    let digest = digest.trim();
    fs::write(layout.join("blobs/sha256").join(digest), &nested).unwrap();
    let path = layout.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{digest}"),
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Adds a one-layer image tagged `tag` holding only /other to an umoci layout.
pub fn umoci_other_image(layout: &Path, tag: &str) {
    let bundle = layout.with_file_name("bundle-other");
    let (l, b) = (path_string(layout), path_string(&bundle));
    sh(&format!(
        "umoci new --image '{l}:{tag}' && umoci unpack --image '{l}:{tag}' '{b}'"
    ));
    fs::write(bundle.join("rootfs/other"), "the wrong platform\n").unwrap();
    sh(&format!(
        "umoci repack --image '{l}:{tag}' '{b}' && rm -rf '{b}'"
    ));
}

/// Adds a third layer with `size` random (incompressible) bytes in /big to image `tag`.
pub fn umoci_add_big_layer(layout: &Path, tag: &str, size: usize) {
    let bundle = layout.with_file_name("bundle-big");
    let (l, b) = (path_string(layout), path_string(&bundle));
    sh(&format!("umoci unpack --image '{l}:{tag}' '{b}'"));
    sh(&format!("head -c {size} /dev/urandom > '{b}/rootfs/big'"));
    sh(&format!(
        "umoci repack --image '{l}:{tag}' '{b}' && rm -rf '{b}'"
    ));
}
