//! `mini-container run`: the core container, asserted on the real binary as root.

mod common;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn echo_prints_a() {
    let root = TestRoot::new();
    let output = root.run(&["run", "echo", "A"]);
    assert_eq!(ok_stdout(&output), "A\n");
    assert_eq!(
        stderr(&output),
        "",
        "nothing but the command's output without RUST_LOG"
    );
}

#[test]
fn arguments_after_the_command_belong_to_it() {
    let root = TestRoot::new();
    let output = root.run(&["run", "echo", "-n", "--rm", "-e", "x", "--hostname"]);
    assert_eq!(ok_stdout(&output), "--rm -e x --hostname");
}

#[test]
fn the_command_is_pid_1() {
    let root = TestRoot::new();
    assert_eq!(ok_stdout(&root.run(&["run", "sh", "-c", "echo $$"])), "1\n");
}

#[test]
fn ps_lists_only_the_containers_processes() {
    let root = TestRoot::new();
    // Wait for the background child to have exec'd sleep: until then it is a second sh.
    let script = "sleep 5 & until [ \"$(cat /proc/$!/comm)\" = sleep ]; do :; done; \
                  ps -e -o pid=,comm=";
    let out = ok_stdout(&root.run(&["run", "sh", "-c", script]));
    let procs: Vec<(u32, String)> = out
        .lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next().unwrap().parse().unwrap();
            (pid, fields.next().unwrap().to_string())
        })
        .collect();
    let names: Vec<&str> = procs.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["sh", "sleep", "ps"], "{out}");
    assert_eq!(procs[0].0, 1);
    assert!(procs.iter().all(|(pid, _)| *pid < 10), "{out}");
    // The host's own /proc still shows the host's processes afterwards.
    let host_ps = Command::new("ps")
        .args(["-e", "-o", "pid="])
        .output()
        .unwrap();
    let host_pids: Vec<u32> = stdout(&host_ps)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        host_pids.contains(&std::process::id()),
        "host ps no longer works"
    );
}

#[test]
fn default_hostname_is_the_short_id_and_hostname_overrides_it() {
    let root = TestRoot::new();
    let first = ok_stdout(&root.run(&["run", "sh", "-c", "hostname; echo $HOSTNAME"]));
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 12, "{first}");
    assert!(lines[0].bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    assert_eq!(lines[0], lines[1], "HOSTNAME matches the hostname");
    let second = ok_stdout(&root.run(&["run", "hostname"]));
    assert_ne!(second.trim(), lines[0], "each container gets a new id");
    let named = ok_stdout(&root.run(&[
        "run",
        "--hostname",
        "box",
        "sh",
        "-c",
        "hostname; echo $HOSTNAME",
    ]));
    assert_eq!(named, "box\nbox\n");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box", "the host's hostname is untouched");
}

fn namespace_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_container_has_its_own_namespaces() {
    let root = TestRoot::new();
    let kinds = ["uts", "ipc", "pid", "mnt", "cgroup", "net"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect();
    for network in ["host", "none"] {
        let out = ok_stdout(&root.run(&["run", "--network", network, "sh", "-c", &script]));
        let inside: Vec<&str> = out.lines().collect();
        assert_eq!(inside.len(), kinds.len(), "{out}");
        for (kind, inside) in kinds.iter().zip(&inside) {
            let host = namespace_of("self", kind);
            if *kind == "net" && network == "host" {
                assert_eq!(*inside, host, "--network host shares the host's network");
            } else {
                assert_ne!(*inside, host, "{kind} namespace with --network {network}");
            }
        }
    }
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    let root = TestRoot::new();
    let out = ok_stdout(&root.run(&["run", "--network", "none", "ip", "-o", "link", "show"]));
    let links: Vec<&str> = out.lines().collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(links[0].contains(": lo: <LOOPBACK,UP,LOWER_UP>"), "{out}");
    let addrs =
        ok_stdout(&root.run(&["run", "--network", "none", "ip", "-o", "addr", "show", "lo"]));
    assert!(addrs.contains("inet 127.0.0.1/8"), "{addrs}");
}

#[test]
fn mounts_inside_never_reach_the_host() {
    let root = TestRoot::new();
    let before = host_mounts();
    // Docker's seccomp profile denies mount(2): this container runs unconfined.
    let out = ok_stdout(&root.run(&[
        "run",
        "--cap-add",
        "SYS_ADMIN",
        "sh",
        "-c",
        "mount -t tmpfs mc-test-inside /mnt && grep -c mc-test-inside /proc/self/mountinfo",
    ]));
    assert_eq!(out, "1\n");
    assert_eq!(host_mounts(), before, "the host's mount table changed");
}

#[test]
fn mounts_do_not_propagate_even_when_the_hosts_root_is_shared() {
    // systemd hosts mount / shared: reproduce that in a mount namespace of the test's own.
    // Docker's seccomp profile denies mount(2): the container runs unconfined.
    let root = TestRoot::new();
    let script = format!(
        "mount --make-rshared / && {BIN} --root {} run --cap-add SYS_ADMIN sh -c 'mount -t tmpfs mc-test-shared /mnt' \
         && grep -c mc-test-shared /proc/self/mountinfo",
        path_str(&root.path)
    );
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "unchanged", "sh", "-c", &script])
        .output()
        .unwrap();
    // grep -c prints 0 and exits 1 when nothing matched.
    assert_eq!(stdout(&output), "0\n", "stderr: {}", stderr(&output));
}

#[test]
fn exit_statuses() {
    let root = TestRoot::new();
    let status = |args: &[&str]| root.run(args).status.code().unwrap();
    assert_eq!(status(&["run", "true"]), 0);
    assert_eq!(status(&["run", "sh", "-c", "exit 42"]), 42);
    let line = assert_fails(&root.run(&["run", "--no-such-flag", "true"]), 125);
    assert!(line.contains("--no-such-flag"), "{line}");
    let line = assert_fails(
        &root.run(&["run", "--env-file", "/nonexistent/env", "true"]),
        125,
    );
    assert_eq!(
        line,
        "mini-container: reading env file /nonexistent/env: No such file or directory"
    );
    let not_executable = temp_file(&root, "not-executable", b"#!/bin/sh\necho hi\n");
    let line = assert_fails(&root.run(&["run", path_str(&not_executable)]), 126);
    assert_eq!(
        line,
        format!("mini-container: executing {not_executable:?}: Permission denied")
    );
    let garbage = temp_file(&root, "garbage", b"\x7fELF but not really");
    fs::set_permissions(
        &garbage,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let line = assert_fails(&root.run(&["run", path_str(&garbage)]), 126);
    assert!(line.ends_with("Exec format error"), "{line}");
    assert_fails(&root.run(&["run", "/tmp"]), 126);
    let line = assert_fails(&root.run(&["run", "no-such-command"]), 127);
    assert_eq!(
        line,
        "mini-container: executing \"no-such-command\": executable file not found in $PATH"
    );
    assert_fails(&root.run(&["run", "/no/such/file"]), 127);
}

#[test]
fn pid_1_ignores_signals_it_does_not_handle_as_in_docker() {
    // The kernel protects a PID namespace's init from signals it has no handler for.
    let root = TestRoot::new();
    let out = ok_stdout(&root.run(&[
        "run",
        "sh",
        "-c",
        "kill -TERM $$; kill -USR1 $$; echo survived",
    ]));
    assert_eq!(out, "survived\n");
}

#[test]
fn killed_by_sigkill_is_137() {
    let root = TestRoot::new();
    let runner = spawn(&root, &["run", "sleep", "60"]);
    let state = root.wait_for_running_state();
    let pid = state["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(137),
        "stderr: {}",
        stderr(&output)
    );
}

/// Starts a container whose init traps `signal` and exits with `status`, waits until the
/// trap is set, sends `signal` to the runner and returns the runner's output.
fn forward(root: &TestRoot, signal: Signal, trap: &str, status: i32) -> std::process::Output {
    let script = format!(
        "trap 'echo got {trap}; exit {status}' {trap}; echo ready; while :; do sleep 0.05; done"
    );
    let mut runner = spawn(root, &["run", "sh", "-c", &script]);
    // Wait for the trap before signalling.
    let mut out = runner.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    kill(Pid::from_raw(runner.id() as i32), signal).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut output = runner.wait_with_output().unwrap();
    output.stdout = rest.into_bytes();
    output
}

#[test]
fn signals_to_the_runner_reach_the_containers_init() {
    let root = TestRoot::new();
    for (signal, trap, status) in [
        (Signal::SIGTERM, "TERM", 143),
        (Signal::SIGINT, "INT", 130),
        (Signal::SIGHUP, "HUP", 129),
        (Signal::SIGQUIT, "QUIT", 131),
        (Signal::SIGUSR1, "USR1", 138),
        (Signal::SIGUSR2, "USR2", 140),
    ] {
        let output = forward(&root, signal, trap, status);
        assert_eq!(stdout(&output), format!("got {trap}\n"), "{signal}");
        assert_eq!(
            output.status.code(),
            Some(status),
            "{signal}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn stdin_is_piped_through() {
    let root = TestRoot::new();
    let output = root.run_with_input(&["run", "cat"], b"hello from the pipe\n");
    assert_eq!(ok_stdout(&output), "hello from the pipe\n");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let output = root.run_with_input(&["run", "cat"], &big);
    assert!(output.status.success());
    assert!(output.stdout == big, "1 MiB+ of stdin came back altered");
}

#[test]
fn ten_mib_of_stdout_arrive_intact() {
    let root = TestRoot::new();
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = temp_file(&root, "ten-mib", &data);
    let output = root.run(&["run", "cat", path_str(&file)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(output.stdout.len(), data.len());
    assert!(output.stdout == data, "10 MiB of stdout came back altered");
}

#[test]
fn environment_is_dockers_not_the_callers() {
    let root = TestRoot::new();
    let file = temp_file(
        &root,
        "env",
        b"# a comment\n\nFROM_FILE=file value\nOVERRIDDEN=from file\nCOPIED_BY_FILE\n",
    );
    let output = root
        .command(&[
            "run",
            "--env-file",
            path_str(&file),
            "-e",
            "OVERRIDDEN=from flag",
            "-e",
            "COPIED",
            "-e",
            "NOT_SET_ANYWHERE",
            "--hostname",
            "envbox",
            "env",
        ])
        .env("CALLER_ONLY", "must not leak")
        .env("COPIED", "copied value")
        .env("COPIED_BY_FILE", "copied by file")
        .env_remove("NOT_SET_ANYWHERE")
        .output()
        .unwrap();
    let mut env: Vec<String> = ok_stdout(&output).lines().map(String::from).collect();
    env.sort();
    assert_eq!(
        env,
        [
            "COPIED=copied value",
            "COPIED_BY_FILE=copied by file",
            "FROM_FILE=file value",
            "HOME=/root",
            "HOSTNAME=envbox",
            "OVERRIDDEN=from flag",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
}

#[test]
fn workdir_sets_the_current_directory() {
    let root = TestRoot::new();
    assert_eq!(ok_stdout(&root.run(&["run", "pwd"])), "/\n");
    assert_eq!(
        ok_stdout(&root.run(&["run", "-w", "/tmp", "pwd"])),
        "/tmp\n"
    );
    assert_eq!(
        ok_stdout(&root.run(&["run", "--workdir", "/usr/bin", "pwd"])),
        "/usr/bin\n"
    );
    let line = assert_fails(&root.run(&["run", "-w", "/no/such/dir", "true"]), 125);
    assert_eq!(
        line,
        "mini-container: changing to working directory /no/such/dir: No such file or directory"
    );
}

#[test]
fn docker_flags_that_change_nothing_are_accepted() {
    let root = TestRoot::new();
    let output = root.run_with_input(&["run", "-i", "--rm", "--name", "quiet", "cat"], b"x");
    assert_eq!(ok_stdout(&output), "x");
}

#[test]
fn bad_input_is_one_line_and_125() {
    let root = TestRoot::new();
    let cases: &[&[&str]] = &[
        &["run"],
        &["run", "--network", "bridge", "true"],
        &["run", "-w", "relative", "true"],
        &["run", "-e", "=x", "true"],
        &["run", "--hostname", "has space", "true"],
        &["run", "--hostname", &"x".repeat(65), "true"],
        &["run", "--name", "bad/name", "true"],
        &["run", "--env-file"],
        &["no-such-subcommand"],
        &[],
    ];
    for args in cases {
        let output = root.run(args);
        let line = assert_fails(&output, 125);
        assert!(
            line.len() > "mini-container: ".len() + 5,
            "{args:?}: {line}"
        );
    }
    let bad_file = temp_file(&root, "bad-env", b"MY VAR=1\n");
    let line = assert_fails(
        &root.run(&["run", "--env-file", path_str(&bad_file), "true"]),
        125,
    );
    assert!(line.contains("contains whitespace"), "{line}");
}

#[test]
fn the_internal_child_command_refuses_to_run_by_hand() {
    let root = TestRoot::new();
    let line = assert_fails(&root.run(&["child"]), 125);
    assert!(line.contains("internal"), "{line}");
    let output = Command::new(BIN)
        .arg("child")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_fails(&output, 125);
}

#[test]
fn debug_logging_shows_each_setup_step() {
    let root = TestRoot::new();
    let output = root
        .command(&["run", "--network", "none", "true"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success());
    let log = stderr(&output);
    for step in [
        "cloning the container's init",
        "setup: entering a new cgroup namespace",
        "setup: making mounts private",
        "setup: mounting proc on /proc",
        "setup: setting hostname",
        "setup: bringing up lo",
        "setup: changing to /",
        "executing [\"true\"]",
    ] {
        assert!(log.contains(step), "missing {step:?} in:\n{log}");
    }
}

#[test]
fn state_lives_while_the_container_runs() {
    let root = TestRoot::new();
    let runner = spawn(&root, &["run", "--name", "web", "sleep", "60"]);
    let state = root.wait_for_running_state();
    let id = state["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(state["name"], "web");
    assert_eq!(state["runner_pid"], runner.id());
    let pid = state["pid"].as_i64().unwrap() as i32;
    assert!(is_alive(pid));
    let dir = root.path.join("run").join(&id);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["sleep", "60"])
    );
    assert_eq!(config["hostname"], &id[..12]);
    assert_eq!(
        fs::read_link(root.path.join("run/names/web"))
            .unwrap()
            .to_str(),
        Some(id.as_str())
    );

    // The name is taken while it runs.
    let line = assert_fails(&root.run(&["run", "--name", "web", "true"]), 125);
    assert!(line.contains("already in use"), "{line}");

    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(137));
    assert!(
        !dir.exists(),
        "state directory removed when the container ends"
    );
    assert!(fs::symlink_metadata(root.path.join("run/names/web")).is_err());
    // The name is free again.
    ok_stdout(&root.run(&["run", "--name", "web", "true"]));
}

#[test]
fn sigkill_to_the_runner_leaves_nothing_behind() {
    let root = TestRoot::new();
    let mut runner = spawn(
        &root,
        &["run", "--name", "doomed", "sh", "-c", "sleep 60 & sleep 60"],
    );
    let state = root.wait_for_running_state();
    let pid = state["pid"].as_i64().unwrap() as i32;
    // The container's processes: its init and the init's child.
    let grandchild = wait_until(Duration::from_secs(5), || {
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse::<i32>().ok()
    })
    .unwrap();
    runner.kill().unwrap();
    runner.wait().unwrap();
    for process in [pid, grandchild] {
        let gone = wait_until(Duration::from_secs(5), || {
            (!is_alive(process)).then_some(())
        });
        assert!(
            gone.is_some(),
            "container process {process} outlived its runner"
        );
    }
    // The runner could not clean up; the next command does.
    assert_eq!(root.state_dirs().len(), 1);
    ok_stdout(&root.run(&["run", "--name", "doomed", "true"]));
    assert!(root.state_dirs().is_empty(), "stale state was not removed");
}

#[test]
fn twenty_containers_in_parallel() {
    let root = TestRoot::new();
    let runners: Vec<_> = (0..20)
        .map(|i| {
            let script = format!("echo $$ $HOSTNAME {i}; exit {i}");
            (i, spawn(&root, &["run", "sh", "-c", &script]))
        })
        .collect();
    let mut hostnames = std::collections::HashSet::new();
    for (i, runner) in runners {
        let output = runner.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(i), "stderr: {}", stderr(&output));
        let out = stdout(&output);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{out}");
        assert_eq!(fields[0], "1");
        assert_eq!(fields[2], i.to_string());
        assert!(
            hostnames.insert(fields[1].to_string()),
            "hostname reused: {out}"
        );
    }
}

#[test]
fn an_interactive_shell_on_a_terminal_runs_without_job_control_and_keeps_its_status() {
    // `script` runs the runner on a new pty, as a user's terminal would. Without -t the
    // container has a session of its own and no controlling terminal: no job control.
    let root = TestRoot::new();
    let command = format!("{BIN} --root {} run sh", path_str(&root.path));
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"echo pid=$$ pgid=$(ps -o pgid= -p $$ | tr -d ' ')\nexit 3\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let out = stdout(&output);
    assert!(out.contains("pid=1 pgid=1"), "{out}");
    assert!(out.contains("job control turned off"), "{out}");
    assert_eq!(output.status.code(), Some(3), "{out}");
}
