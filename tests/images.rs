//! The image store: `import`, `load`, `pull`, `images`, `rmi` and `image inspect`, on the real
//! binary as root, each test with a private `--root`.

mod common;

use common::image::*;
use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Checks that a layer directory holds the busybox root filesystem the harness built.
fn assert_busybox_tree(fs_dir: &Path) {
    assert_eq!(
        fs::read(fs_dir.join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    let mode = fs::metadata(fs_dir.join("bin/busybox"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert_eq!(
        fs::read_link(fs_dir.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_to_string(fs_dir.join("etc/hello")).unwrap(),
        "hello from the image\n"
    );
}

#[test]
fn import_reads_plain_gzip_and_zstd_tarballs() {
    let root = TestRoot::new();
    let rootfs = root.path.join("rootfs");
    busybox_rootfs(&rootfs);
    nix::unistd::chown(
        &rootfs.join("etc/hello"),
        Some(1234.into()),
        Some(5678.into()),
    )
    .unwrap();
    fs::set_permissions(rootfs.join("etc/hello"), fs::Permissions::from_mode(0o4750)).unwrap();
    let mut ids = Vec::new();
    for (compressor, name) in [("cat", "plain:1"), ("gzip", "gz:1"), ("zstd -q", "zst:1")] {
        let file = root.path.join(format!("{}.tar", name.replace(':', "-")));
        tarball(&rootfs, &file, compressor);
        let out = ok_stdout(&root.run(&["import", path_str(&file), name]));
        assert!(out.starts_with("sha256:"), "{out}");
        let dirs = lower_dirs(&root, name);
        assert_eq!(dirs.len(), 1);
        assert_busybox_tree(&dirs[0]);
        let hello = fs::metadata(dirs[0].join("etc/hello")).unwrap();
        assert_eq!((hello.uid(), hello.gid()), (1234, 5678), "ownership kept");
        assert_eq!(hello.mode() & 0o7777, 0o4750, "setuid and mode kept");
        ids.push(dirs[0].clone());
    }
    // One layer, shared: the three tarballs hold the same tar stream.
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(store_entries(&root, "layers").len(), 1);
    let listing = ok_stdout(&root.run(&["images"]));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    assert!(
        lines[0].starts_with("REPOSITORY   TAG   IMAGE ID       CREATED"),
        "{listing}"
    );
    for repo in ["plain", "gz", "zst"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{repo} ")) && l.contains(" ago ")),
            "{listing}"
        );
    }
    assert!(lines[1].ends_with("MB"), "{listing}");
}

#[test]
fn import_reads_stdin() {
    let root = TestRoot::new();
    let rootfs = root.path.join("rootfs");
    busybox_rootfs(&rootfs);
    let file = root.path.join("rootfs.tar.gz");
    tarball(&rootfs, &file, "gzip");
    let out = root.run_with_input(&["import", "-", "box"], &fs::read(&file).unwrap());
    ok_stdout(&out);
    let image = inspect(&root, "box:latest");
    assert_eq!(image["RepoTags"][0], "box:latest");
    assert_busybox_tree(Path::new(image["LowerDirs"][0].as_str().unwrap()));
}

/// Imports `archive` expecting a one-line refusal, and checks that nothing was written
/// outside the store nor left in it.
fn assert_refused(root: &TestRoot, archive: &[u8], outside: &[&Path]) -> String {
    let file = temp_file(root, "hostile.tar", archive);
    let line = assert_fails(&root.run(&["import", path_str(&file), "hostile"]), 125);
    for path in outside {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{} was written: {line}",
            path.display()
        );
    }
    assert_store_empty(root);
    line
}

#[test]
fn hostile_tarballs_are_refused_and_write_nothing_outside() {
    let root = TestRoot::new();
    let victim = root.path.join("victim");
    fs::create_dir(&victim).unwrap();
    let victim_file = victim.join("pwned");
    let v = path_string(&victim);
    // The layer lands in <root>/lib/tmp/<work>/layer/fs: six levels below <root>.
    let climb = "../../../../../../victim/pwned";

    let line = assert_refused(
        &root,
        &raw_tar(&[RawEntry::file(climb, b"x")]),
        &[&victim_file],
    );
    assert!(line.contains("\"..\""), "{line}");

    let absolute = format!("{v}/pwned");
    let line = assert_refused(
        &root,
        &raw_tar(&[RawEntry::file(&absolute, b"x")]),
        &[&victim_file],
    );
    assert!(line.contains("absolute"), "{line}");

    // A symbolic link to a directory outside, then a file written through it.
    for target in [v.as_str(), "../../../../../../victim"] {
        let line = assert_refused(
            &root,
            &raw_tar(&[
                RawEntry::symlink("escape", target),
                RawEntry::file("escape/pwned", b"x"),
            ]),
            &[&victim_file],
        );
        assert!(line.contains("symbolic link"), "{line}");
    }
    // The same through a directory: a/b -> outside, then a/b/pwned.
    assert_refused(
        &root,
        &raw_tar(&[
            RawEntry::dir("a"),
            RawEntry::symlink("a/b", &v),
            RawEntry::file("a/b/pwned", b"x"),
        ]),
        &[&victim_file],
    );

    // Hard links to files outside the layer.
    fs::write(victim.join("secret"), "secret").unwrap();
    let secret = format!("{v}/secret");
    for target in [secret.as_str(), "../../../../../../victim/secret"] {
        assert_refused(
            &root,
            &raw_tar(&[RawEntry::hardlink("stolen", target)]),
            &[&victim_file],
        );
    }
    // A hard link through a symbolic link that leads outside.
    assert_refused(
        &root,
        &raw_tar(&[
            RawEntry::symlink("out", &v),
            RawEntry::hardlink("stolen", "out/secret"),
        ]),
        &[&victim_file],
    );
    assert_eq!(fs::read_to_string(victim.join("secret")).unwrap(), "secret");
    assert_eq!(
        fs::metadata(victim.join("secret")).unwrap().nlink(),
        1,
        "no new link to it"
    );
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
}

#[test]
fn symlinks_pointing_out_are_stored_as_links_not_followed() {
    let root = TestRoot::new();
    let archive = raw_tar(&[
        RawEntry::symlink("etc/passwd-link", "/etc/passwd"),
        RawEntry::symlink("up", "../../.."),
        RawEntry::file("data/file", b"content"),
        RawEntry::hardlink("data/again", "data/file"),
    ]);
    let file = temp_file(&root, "links.tar", &archive);
    ok_stdout(&root.run(&["import", path_str(&file), "links"]));
    let dir = &lower_dirs(&root, "links")[0];
    assert_eq!(
        fs::read_link(dir.join("etc/passwd-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(dir.join("up")).unwrap(),
        Path::new("../../..")
    );
    let meta = fs::metadata(dir.join("data/again")).unwrap();
    assert_eq!(
        meta.ino(),
        fs::metadata(dir.join("data/file")).unwrap().ino()
    );
}

#[test]
fn corrupt_and_truncated_archives_leave_nothing() {
    let root = TestRoot::new();
    let rootfs = root.path.join("rootfs");
    busybox_rootfs(&rootfs);
    for compressor in ["cat", "gzip", "zstd -q"] {
        let file = root.path.join("whole.tar");
        tarball(&rootfs, &file, compressor);
        let whole = fs::read(&file).unwrap();
        // GNU tar pads its output with zeros: cut into the data, or into the compressed end.
        let near_end = if compressor == "cat" {
            whole.len() / 3
        } else {
            whole.len() - 4
        };
        for cut in [whole.len() / 2, near_end] {
            let truncated = temp_file(&root, "cut.tar", &whole[..cut]);
            let line = assert_fails(&root.run(&["import", path_str(&truncated), "cut"]), 125);
            assert!(line.starts_with("mini-container: import: "), "{line}");
            assert_store_empty(&root);
        }
    }
    // A stream that stops between two entries, without tar's closing zero blocks.
    let whole = raw_tar(&[RawEntry::file("a", b"a"), RawEntry::file("b", b"b")]);
    let cut = temp_file(&root, "cut.tar", &whole[..1024]);
    let line = assert_fails(&root.run(&["import", path_str(&cut), "cut"]), 125);
    assert!(line.contains("truncated"), "{line}");
    assert_store_empty(&root);
    let garbage = temp_file(
        &root,
        "garbage.tar",
        &[0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert_fails(&root.run(&["import", path_str(&garbage), "bad"]), 125);
    let noise = temp_file(&root, "noise.tar", &[b'x'; 3000]);
    assert_fails(&root.run(&["import", path_str(&noise), "bad"]), 125);
    let line = assert_fails(&root.run(&["import", "/nonexistent.tar", "bad"]), 125);
    assert_eq!(
        line,
        "mini-container: import: opening /nonexistent.tar: No such file or directory"
    );
    let line = assert_fails(&root.run(&["import", path_str(&noise), "Bad"]), 125);
    assert!(line.contains("invalid reference format"), "{line}");
    assert_store_empty(&root);
}

#[test]
fn devices_xattrs_and_whiteouts_are_stored_for_overlayfs() {
    let root = TestRoot::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, pax: &[(&str, &[u8])], data: &[u8]| {
        if !pax.is_empty() {
            builder.append_pax_extensions(pax.iter().copied()).unwrap();
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o640
        });
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        if kind == tar::EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        builder.append_data(&mut header, name, data).unwrap();
    };
    add("dev/", tar::EntryType::Directory, &[], b"");
    add("dev/null", tar::EntryType::Char, &[], b"");
    add("dev/fifo", tar::EntryType::Fifo, &[], b"");
    add("etc/", tar::EntryType::Directory, &[], b"");
    add(
        "etc/tagged",
        tar::EntryType::Regular,
        &[("SCHILY.xattr.user.origin", b"test")],
        b"x",
    );
    add("etc/.wh.removed", tar::EntryType::Regular, &[], b"");
    add("opaque/", tar::EntryType::Directory, &[], b"");
    add("opaque/.wh..wh..opq", tar::EntryType::Regular, &[], b"");
    add(
        "sneaky",
        tar::EntryType::Regular,
        &[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")],
        b"",
    );
    let archive = builder.into_inner().unwrap();
    let file = temp_file(&root, "special.tar", &archive);
    ok_stdout(&root.run(&["import", path_str(&file), "special"]));
    let dir = &lower_dirs(&root, "special")[0];
    let null = fs::metadata(dir.join("dev/null")).unwrap();
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::metadata(dir.join("dev/fifo")).unwrap().file_type()
    ));
    let xattr = sh(&format!(
        "getfattr --only-values -n user.origin '{}'",
        dir.join("etc/tagged").display()
    ));
    assert_eq!(xattr, "test");
    let whiteout = fs::symlink_metadata(dir.join("etc/removed")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &whiteout.file_type()
    ));
    assert_eq!(whiteout.rdev(), 0);
    assert!(!dir.join("etc/.wh.removed").exists());
    let opaque = sh(&format!(
        "getfattr --only-values -n trusted.overlay.opaque '{}'",
        dir.join("opaque").display()
    ));
    assert_eq!(opaque, "y");
    assert!(!dir.join("opaque/.wh..wh..opq").exists());
    let sneaky = std::process::Command::new("getfattr")
        .args([
            "-n",
            "trusted.overlay.redirect",
            path_str(&dir.join("sneaky")),
        ])
        .output()
        .unwrap();
    assert!(
        !sneaky.status.success(),
        "overlayfs xattrs are never taken from an archive"
    );
}

#[test]
fn rmi_untags_and_removes_what_no_image_uses() {
    let root = TestRoot::new();
    let a = temp_file(&root, "a.tar", &raw_tar(&[RawEntry::file("a", b"a")]));
    let b = temp_file(&root, "b.tar", &raw_tar(&[RawEntry::file("b", b"b")]));
    ok_stdout(&root.run(&["import", path_str(&a), "one"]));
    ok_stdout(&root.run(&["import", path_str(&a), "two:v2"]));
    ok_stdout(&root.run(&["import", path_str(&b), "three"]));
    assert_eq!(store_entries(&root, "layers").len(), 2);
    let out = ok_stdout(&root.run(&["rmi", "one"]));
    assert!(
        out.starts_with("Untagged: one:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(
        store_entries(&root, "layers").len(),
        2,
        "two:v2 still uses the layer"
    );
    let line = assert_fails(&root.run(&["rmi", "one"]), 125);
    assert_eq!(line, "mini-container: rmi: no such image: one");
    // By id, as `images` shows it.
    let three_id = inspect(&root, "three")["Id"].as_str().unwrap()[7..19].to_string();
    ok_stdout(&root.run(&["rmi", &three_id]));
    ok_stdout(&root.run(&["rmi", "two:v2"]));
    assert_store_empty(&root);
}

/// Checks an image loaded from the umoci-built layout: its config, and its two layers stacked.
fn assert_two_layer_busybox(root: &TestRoot, image: &str) {
    let json = inspect(root, image);
    let config = &json["Config"];
    assert_eq!(config["Cmd"], serde_json::json!(["sh"]), "{json}");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&"GREETING=hi".into()),
        "{json}"
    );
    assert_eq!(config["WorkingDir"], "/opt");
    assert_eq!(config["User"], "0:0");
    assert!(config["ExposedPorts"]["80/tcp"].is_object(), "{json}");
    let dirs = lower_dirs(root, image);
    assert_eq!(dirs.len(), 2, "{json}");
    // The bottom layer alone still has what the top one deletes.
    assert_busybox_tree(&dirs[1]);
    assert_eq!(
        fs::read_to_string(dirs[1].join("opt/dir/a")).unwrap(),
        "a\n"
    );
    let view = stacked_view(&dirs, &root.path.join("mnt"));
    for present in ["./bin/busybox", "./bin/sh", "./etc/second", "./opt/dir/b"] {
        assert!(
            view.lines().any(|l| l == present),
            "{present} missing:\n{view}"
        );
    }
    for deleted in ["./etc/hello", "./opt/dir/a"] {
        assert!(
            !view.lines().any(|l| l == deleted),
            "{deleted} not deleted:\n{view}"
        );
    }
    assert!(
        view.contains("second layer\nb\nbusybox-identical"),
        "{view}"
    );
}

#[test]
fn load_reads_oci_layouts_docker_archives_and_oci_archives() {
    let root = TestRoot::new();
    let layout = umoci_layout(&root.path, "busybox");
    let l = path_string(&layout);
    let docker_archive = root.path.join("docker.tar");
    let oci_archive = root.path.join("oci.tar");
    sh(&format!(
        "skopeo copy -q oci:{l}:busybox docker-archive:{}:busybox:saved",
        docker_archive.display()
    ));
    sh(&format!(
        "skopeo copy -q oci:{l}:busybox oci-archive:{}:busybox:oci",
        oci_archive.display()
    ));

    let out = ok_stdout(&root.run(&["load", "-i", &l]));
    assert_eq!(out, "Loaded image: busybox:latest\n");
    assert_two_layer_busybox(&root, "busybox");

    let out = ok_stdout(&root.run(&["load", "-i", path_str(&docker_archive)]));
    assert_eq!(out, "Loaded image: busybox:saved\n");
    assert_two_layer_busybox(&root, "busybox:saved");

    let out = ok_stdout(&root.run(&["load", "--input", path_str(&oci_archive)]));
    assert_eq!(out, "Loaded image: busybox:oci\n");
    assert_two_layer_busybox(&root, "busybox:oci");

    // A compressed archive on stdin, named by --tag.
    sh(&format!("gzip -k {}", docker_archive.display()));
    let gz = fs::read(docker_archive.with_extension("tar.gz")).unwrap();
    let out = ok_stdout(&root.run_with_input(&["load", "--tag", "renamed:v1"], &gz));
    assert_eq!(out, "Loaded image: renamed:v1\n");

    // One image, one set of layers, four names.
    let ids = ok_stdout(&root.run(&["images", "-q"]));
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(store_entries(&root, "layers").len(), 2);
    assert_eq!(store_entries(&root, "tmp"), Vec::<String>::new());
    let listing = ok_stdout(&root.run(&["images"]));
    assert_eq!(listing.lines().count(), 5, "{listing}");

    // Removing three names keeps the image; the last removes it all.
    for name in ["busybox:saved", "busybox:oci", "renamed:v1"] {
        let out = ok_stdout(&root.run(&["rmi", name]));
        assert!(!out.contains("Deleted"), "{out}");
    }
    let out = ok_stdout(&root.run(&["rmi", "busybox"]));
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert_store_empty(&root);
}

#[test]
fn rmi_by_id_of_an_image_with_several_names_needs_force() {
    let root = TestRoot::new();
    let layout = umoci_layout(&root.path, "busybox");
    let l = path_string(&layout);
    ok_stdout(&root.run(&["load", "-i", &l]));
    ok_stdout(&root.run(&["load", "-i", &l, "--tag", "other"]));
    let id = ok_stdout(&root.run(&["images", "-q"]));
    let line = assert_fails(&root.run(&["rmi", id.trim()]), 125);
    assert!(line.contains("must be forced"), "{line}");
    let out = ok_stdout(&root.run(&["rmi", "-f", id.trim()]));
    assert!(
        out.contains("Untagged: busybox:latest\nUntagged: other:latest\nDeleted:"),
        "{out}"
    );
    assert_store_empty(&root);
}

#[test]
fn load_refuses_tampered_and_hostile_archives() {
    let root = TestRoot::new();
    let layout = umoci_layout(&root.path, "busybox");
    // A layer blob changed after the manifest was written.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest[7..]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let top = blob(manifest["layers"][1]["digest"].as_str().unwrap());
    let original = fs::read(&top).unwrap();
    sh(&format!(
        "zcat {0} > {0}.plain && echo x >> {0}.plain && gzip -c {0}.plain > {0}",
        top.display()
    ));
    let line = assert_fails(&root.run(&["load", "-i", path_str(&layout)]), 125);
    assert!(line.starts_with("mini-container: load: "), "{line}");
    assert!(line.contains("does not match its DiffID"), "{line}");
    // The bottom layer was complete and verified: it stays, for the next load to reuse; the
    // image is not there, and neither is any work.
    assert_eq!(
        ok_stdout(&root.run(&["images", "-q"])),
        "",
        "no image named"
    );
    assert_eq!(store_entries(&root, "layers").len(), 1);
    assert_eq!(store_entries(&root, "tmp"), Vec::<String>::new());
    fs::write(&top, original).unwrap();
    ok_stdout(&root.run(&["load", "-i", path_str(&layout)]));
    assert_two_layer_busybox(&root, "busybox");
    ok_stdout(&root.run(&["rmi", "busybox"]));
    assert_store_empty(&root);

    // docker save archives whose manifest.json points outside, directly or by a symlink.
    let victim = root.path.join("victim.tar");
    fs::write(&victim, raw_tar(&[RawEntry::file("stolen", b"host file")])).unwrap();
    let v = path_string(&victim);
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    for (layer_path, extra) in [
        (v.clone(), None),
        ("../../../../../../victim.tar".to_string(), None),
        (
            "layer.tar".to_string(),
            Some(RawEntry::symlink("layer.tar", &v)),
        ),
    ] {
        let manifest = format!(
            r#"[{{"Config":"config.json","RepoTags":["evil:1"],"Layers":["{layer_path}"]}}]"#
        );
        let mut entries = vec![
            RawEntry::file("manifest.json", manifest.as_bytes()),
            RawEntry::file("config.json", config),
        ];
        entries.extend(extra);
        let archive = temp_file(&root, "evil.tar", &raw_tar(&entries));
        let line = assert_fails(&root.run(&["load", "-i", path_str(&archive)]), 125);
        assert!(line.contains("No such file or directory"), "{line}");
        assert_store_empty(&root);
    }
}

#[test]
fn pull_chooses_the_host_platform_from_a_manifest_list() {
    let root = TestRoot::new();
    let registry = common::registry::Registry::start(&root.path.join("registry"));
    let layout = umoci_layout(&root.path, "busybox");
    umoci_other_image(&layout, "other");
    let wrong = if host_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    add_platform_index(
        &layout,
        "multi",
        &[
            ("other", wrong),
            ("busybox", host_arch()),
            ("other", "riscv64"),
        ],
    );
    registry.push(&layout, "multi", "tools/busybox:multi");
    // The registry now serves a manifest list.
    let name = format!("{}/tools/busybox:multi", registry.addr);

    let output = root.run(&["pull", &name]);
    assert_eq!(ok_stdout(&output), format!("{name}\n"));
    let progress = stderr(&output);
    assert!(
        progress.starts_with("multi: Pulling from tools/busybox\n"),
        "{progress}"
    );
    assert_eq!(progress.matches(": Pull complete").count(), 2, "{progress}");
    assert!(
        !progress.contains('\r'),
        "no progress bars when stderr is not a terminal"
    );
    assert_two_layer_busybox(&root, &name);
    let view = stacked_view(&lower_dirs(&root, &name), &root.path.join("mnt2"));
    assert!(
        !view.contains("./other"),
        "the wrong platform's image: {view}"
    );

    // Pulled again: nothing downloaded.
    let again = stderr(&root.run(&["pull", &name]));
    assert_eq!(again.matches(": Already exists").count(), 2, "{again}");
    let listing = ok_stdout(&root.run(&["images"]));
    assert!(
        listing.contains(&format!("{}/tools/busybox   multi ", registry.addr)),
        "{listing}"
    );
    ok_stdout(&root.run(&["rmi", &name]));
    assert_store_empty(&root);
}

#[test]
fn pull_reads_zstd_layers_and_pins_digests() {
    let root = TestRoot::new();
    let registry = common::registry::Registry::start(&root.path.join("registry"));
    let layout = umoci_layout(&root.path, "busybox");
    sh(&format!(
        "skopeo copy -q --dest-tls-verify=false --dest-compress --dest-compress-format zstd \
         oci:{}:busybox docker://{}/busybox:zstd",
        layout.display(),
        registry.addr
    ));
    let name = format!("{}/busybox:zstd", registry.addr);
    let raw = sh(&format!(
        "skopeo inspect --raw --tls-verify=false docker://{name}"
    ));
    assert_eq!(raw.matches("tar+zstd").count(), 2, "zstd layers: {raw}");
    ok_stdout(&root.run(&["pull", "-q", &name]));
    assert_two_layer_busybox(&root, &name);
    let digest = sh(&format!(
        "skopeo inspect --tls-verify=false --format '{{{{.Digest}}}}' docker://{name}"
    ));
    let pinned = format!("{}/busybox@{}", registry.addr, digest.trim());
    ok_stdout(&root.run(&["pull", "-q", &pinned]));
    assert_two_layer_busybox(&root, &pinned);
    // On a terminal, progress bars (script(1) gives the pull a pty).
    ok_stdout(&root.run(&["rmi", &name, &pinned]));
    assert_store_empty(&root);
    let typescript = sh(&format!(
        "script -qec '{BIN} --root {} pull {name}' /dev/null",
        root.path.display()
    ));
    assert!(typescript.contains("Downloading ["), "{typescript}");
    assert!(typescript.contains(": Pull complete"), "{typescript}");
    let line = assert_fails(
        &root.run(&["pull", &format!("{}/busybox:nosuch", registry.addr)]),
        125,
    );
    assert!(line.contains("404 Not Found (manifest unknown)"), "{line}");
}

#[test]
fn pull_speaks_tls_to_a_registry_whose_ca_is_in_certs_d() {
    let root = TestRoot::new();
    let certs = common::registry::TestCerts::make(&root.path.join("tls"));
    let registry = common::registry::Registry::start_tls(&root.path.join("registry"), &certs);
    // The registry speaks TLS only: a plain HTTP client is turned away.
    let answer = common::registry::plain_http_get(&registry.addr);
    assert!(
        answer.contains("Client sent an HTTP request to an HTTPS server"),
        "{answer}"
    );
    // skopeo checks its certificate against the test CA.
    registry.push(
        &umoci_layout(&root.path, "busybox"),
        "busybox",
        "busybox:tls",
    );
    // Through a proxy that records how each connection began.
    let proxy = common::registry::Proxy::start(&registry.addr);
    let name = format!("{}/busybox:tls", proxy.addr);
    let certs_dir = root.path.join("certs.d").join(&proxy.addr);

    // Without the CA: one line naming the certificate, and no retry over plain HTTP.
    let line = assert_fails(&root.run(&["pull", &name]), 125);
    let expected = format!(
        "mini-container: pull {name}: GET https://{}/v2/busybox/manifests/tls: the TLS \
         certificate is not trusted: invalid peer certificate: UnknownIssuer (a private CA for \
         {} goes in {}/ca.crt)",
        proxy.addr,
        proxy.addr,
        certs_dir.display()
    );
    assert_eq!(line, expected);
    assert_eq!(
        proxy.take_first_bytes(),
        [common::registry::TLS_HANDSHAKE],
        "one TLS handshake and nothing else"
    );
    assert_store_empty(&root);

    // A ca.crt that holds no certificate is an error of its own.
    fs::create_dir_all(&certs_dir).unwrap();
    fs::write(certs_dir.join("ca.crt"), "not a certificate\n").unwrap();
    let line = assert_fails(&root.run(&["pull", &name]), 125);
    assert!(
        line.ends_with(&format!(
            "the registry's certs.d: {}/ca.crt: no PEM certificate in it",
            certs_dir.display()
        )),
        "{line}"
    );
    assert_eq!(
        proxy.take_first_bytes(),
        Vec::<u8>::new(),
        "nothing was sent"
    );

    // With the CA in <root>/certs.d/<host:port>/ca.crt: pulled, every connection over TLS.
    fs::copy(&certs.ca, certs_dir.join("ca.crt")).unwrap();
    let output = root.run(&["pull", &name]);
    assert_eq!(ok_stdout(&output), format!("{name}\n"));
    let first_bytes = proxy.take_first_bytes();
    assert!(!first_bytes.is_empty());
    assert!(
        first_bytes
            .iter()
            .all(|&b| b == common::registry::TLS_HANDSHAKE),
        "a connection that was not TLS: {first_bytes:?}"
    );
    assert_two_layer_busybox(&root, &name);
    let log = fs::read_to_string(registry.log.as_ref().unwrap()).unwrap();
    assert!(
        log.contains(&format!("listening on {}, tls", registry.addr)),
        "{log}"
    );
    assert!(
        log.contains("/v2/busybox/manifests/tls") && log.contains("mini-container/"),
        "{log}"
    );
    ok_stdout(&root.run(&["rmi", &name]));
    assert_store_empty(&root);
}

#[test]
fn a_pull_killed_halfway_leaves_a_store_the_next_pull_completes() {
    let root = TestRoot::new();
    let registry = common::registry::Registry::start(&root.path.join("registry"));
    let layout = umoci_layout(&root.path, "busybox");
    umoci_add_big_layer(&layout, "busybox", 4 << 20);
    registry.push(&layout, "busybox", "busybox:big");
    // The proxy passes the manifest, the config and the first two layers, then holds the
    // third (4 MB of random bytes) back halfway.
    let descriptor = layout_descriptor(&layout, "busybox");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(&descriptor["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let sizes: Vec<u64> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 3);
    let proxy = common::registry::Proxy::start(&registry.addr);
    proxy.budget.store(
        sizes[0] + sizes[1] + sizes[2] / 2,
        std::sync::atomic::Ordering::SeqCst,
    );
    proxy.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let name = format!("{}/busybox:big", proxy.addr);

    let mut pull = spawn(&root, &["pull", &name]);
    let stalled = wait_until(std::time::Duration::from_secs(30), || {
        proxy
            .stalled
            .load(std::sync::atomic::Ordering::SeqCst)
            .then_some(())
    });
    assert!(stalled.is_some(), "the download never reached the stall");
    // SIGKILL, by the pid of the pull this test started: no chance to clean up.
    pull.kill().unwrap();
    pull.wait().unwrap();
    assert_eq!(
        ok_stdout(&root.run(&["images", "-q"])),
        "",
        "no image after the interrupted pull"
    );
    assert_eq!(
        store_entries(&root, "layers").len(),
        2,
        "the complete layers stay"
    );
    let line = assert_fails(&root.run(&["image", "inspect", &name]), 125);
    assert!(line.contains("no such image"), "{line}");

    proxy
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let output = root.run(&["pull", &name]);
    ok_stdout(&output);
    // Each pull tried HTTPS first, once, and then spoke plain HTTP to this loopback registry.
    let first_bytes = proxy.take_first_bytes();
    assert_eq!(
        first_bytes
            .iter()
            .filter(|&&b| b == common::registry::TLS_HANDSHAKE)
            .count(),
        2,
        "{first_bytes:?}"
    );
    assert_eq!(first_bytes[0], common::registry::TLS_HANDSHAKE);
    assert!(
        first_bytes
            .iter()
            .all(|&b| b == common::registry::TLS_HANDSHAKE || b == b'G'),
        "{first_bytes:?}"
    );
    let progress = stderr(&output);
    assert_eq!(
        progress.matches(": Already exists").count(),
        2,
        "{progress}"
    );
    assert_eq!(progress.matches(": Pull complete").count(), 1, "{progress}");
    assert_eq!(
        store_entries(&root, "tmp"),
        Vec::<String>::new(),
        "the killed pull's work is gone"
    );
    let dirs = lower_dirs(&root, &name);
    assert_eq!(dirs.len(), 3);
    assert_eq!(fs::metadata(dirs[0].join("big")).unwrap().len(), 4 << 20);
    ok_stdout(&root.run(&["rmi", &name]));
    assert_store_empty(&root);
}
