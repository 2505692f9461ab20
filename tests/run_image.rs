//! `run --image`: an image's layers under a writable layer of the container's own.

mod common;

use common::image::*;
use common::*;
use std::fs;

/// Loads the two-layer busybox image that umoci builds (Cmd sh, Env GREETING=hi,
/// WorkingDir /opt) as `busybox:latest`.
fn load_busybox(root: &TestRoot) {
    let layout = umoci_layout(&root.path, "busybox");
    ok_stdout(&root.run(&["load", "-i", &path_string(&layout)]));
}

fn containers_dir(root: &TestRoot) -> Vec<String> {
    store_entries(root, "containers")
}

#[test]
fn the_image_config_gives_the_defaults() {
    let root = TestRoot::new();
    load_busybox(&root);
    let out = ok_stdout(&root.run(&[
        "run", "--image", "busybox", "sh", "-c",
        "pwd; echo $GREETING; cat /etc/second; ls /opt/dir; [ -e /etc/hello ] || echo hello-deleted",
    ]));
    assert_eq!(out, "/opt\nhi\nsecond layer\nb\nhello-deleted\n");
    // No command: the image's Cmd (sh), which reads stdin.
    let output = root.run_with_input(&["run", "--image", "busybox"], b"echo from the image cmd\n");
    assert_eq!(ok_stdout(&output), "from the image cmd\n");
    // Flags override the config.
    let out = ok_stdout(&root.run(&[
        "run",
        "--image",
        "busybox",
        "-w",
        "/tmp",
        "-e",
        "GREETING=bye",
        "-u",
        "65534",
        "sh",
        "-c",
        "pwd; echo $GREETING; busybox id -u",
    ]));
    assert_eq!(out, "/tmp\nbye\n65534\n");
    assert!(
        containers_dir(&root).is_empty(),
        "writable layers left behind"
    );
}

#[test]
fn containers_of_one_image_do_not_see_each_others_writes() {
    let root = TestRoot::new();
    load_busybox(&root);
    let lowers = lower_dirs(&root, "busybox");
    let second_before = fs::read(lowers[0].join("etc/second")).unwrap();
    let writer = spawn(
        &root,
        &[
            "run",
            "--image",
            "busybox",
            "sh",
            "-c",
            "echo changed > /etc/second; echo mine > /mine; busybox rm /bin/ls; cat /etc/second; busybox sleep 2",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(700));
    let other = ok_stdout(&root.run(&[
        "run",
        "--image",
        "busybox",
        "sh",
        "-c",
        "cat /etc/second; [ -e /mine ] || echo no-mine; [ -e /bin/ls ] && echo has-ls",
    ]));
    assert_eq!(other, "second layer\nno-mine\nhas-ls\n");
    let output = writer.wait_with_output().unwrap();
    assert_eq!(stdout(&output), "changed\n");
    assert_eq!(
        fs::read(lowers[0].join("etc/second")).unwrap(),
        second_before,
        "the image changed"
    );
    assert!(fs::symlink_metadata(lowers.last().unwrap().join("bin/ls")).is_ok());
    assert!(containers_dir(&root).is_empty());
}

#[test]
fn read_only_images_and_images_in_use() {
    let root = TestRoot::new();
    load_busybox(&root);
    let out = ok_stdout(&root.run(&[
        "run",
        "--image",
        "busybox",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "sh",
        "-c",
        "busybox touch /x 2>/dev/null || echo ro; busybox touch /tmp/x && echo tmp-ok",
    ]));
    assert_eq!(out, "ro\ntmp-ok\n");

    let mut runner = spawn(
        &root,
        &["run", "--image", "busybox", "busybox", "sleep", "5"],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    if let Some(status) = runner.try_wait().unwrap() {
        panic!(
            "runner ended: {status}: {}",
            stderr(&runner.wait_with_output().unwrap())
        );
    }
    let state = root.wait_for_running_state();
    assert!(
        state["image"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{state}"
    );
    let line = assert_fails(&root.run(&["rmi", "busybox"]), 125);
    assert!(line.contains("is used by container"), "{line}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(root.wait_for_running_state()["pid"].as_i64().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(runner.wait_with_output().unwrap().status.code(), Some(137));
    ok_stdout(&root.run(&["rmi", "busybox"]));
    assert!(containers_dir(&root).is_empty());
}

#[test]
fn bad_image_runs_are_125() {
    let root = TestRoot::new();
    let line = assert_fails(&root.run(&["run", "--image", "nosuchimage", "true"]), 125);
    assert!(line.contains("nosuchimage"), "{line}");
    let line = assert_fails(
        &root.run(&["run", "--image", "x", "--rootfs", "/", "true"]),
        125,
    );
    assert!(line.contains("cannot be used with"), "{line}");
}

#[test]
fn a_killed_runners_writable_layer_goes_with_the_next_command() {
    let root = TestRoot::new();
    load_busybox(&root);
    let mut runner = spawn(
        &root,
        &["run", "--image", "busybox", "busybox", "sleep", "30"],
    );
    let init = root.wait_for_running_state()["pid"].as_i64().unwrap() as i32;
    assert_eq!(containers_dir(&root).len(), 1);
    runner.kill().unwrap();
    runner.wait().unwrap();
    let gone = wait_until(std::time::Duration::from_secs(5), || {
        (!is_alive(init)).then_some(())
    });
    assert!(gone.is_some(), "the container outlived its runner");
    ok_stdout(&root.run(&["run", "--image", "busybox", "true"]));
    assert!(
        containers_dir(&root).is_empty(),
        "the stale writable layer was not removed"
    );
    assert!(root.state_dirs().is_empty());
}
