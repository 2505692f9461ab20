//! Detached containers and their management: run -d, ps, logs, inspect, stop, kill, rm.

mod common;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// `run -d ARGS...`: returns the id it printed.
fn detach(root: &TestRoot, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let id = ok_stdout(&root.run(&all)).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    id
}

fn inspect(root: &TestRoot, container: &str) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_str(&ok_stdout(&root.run(&["inspect", container]))).unwrap();
    json[0].clone()
}

/// Waits until `container` has ended (its monitor let go).
fn wait_exited(root: &TestRoot, container: &str) -> serde_json::Value {
    wait_until(Duration::from_secs(15), || {
        let state = inspect(root, container);
        // Ended, and its end recorded by its monitor: between the init's death and the
        // monitor's record, `inspect` already says it is not running, with no exit code yet.
        (state["State"]["Running"] == false && !state["State"]["ExitCode"].is_null())
            .then_some(state)
    })
    .expect("the container never ended")
}

#[test]
fn run_d_returns_at_once_and_ps_and_logs_show_it() {
    let root = TestRoot::new();
    let id = detach(
        &root,
        &[
            "--name",
            "web",
            "sh",
            "-c",
            "echo hello; echo oops >&2; sleep 30",
        ],
    );
    let ps = ok_stdout(&root.run(&["ps"]));
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 2, "{ps}");
    assert!(
        lines[0].starts_with("CONTAINER ID   NAME   COMMAND"),
        "{ps}"
    );
    assert!(
        lines[1].starts_with(&format!("{}   web    \"sh -c echo hello", &id[..12])),
        "{ps}"
    );
    assert!(lines[1].contains("Up "), "{ps}");
    assert_eq!(
        ok_stdout(&root.run(&["ps", "-q"])),
        format!("{}\n", &id[..12])
    );
    let logs = wait_until(Duration::from_secs(5), || {
        let out = ok_stdout(&root.run(&["logs", "web"]));
        (out.lines().count() == 2).then_some(out)
    })
    .expect("the log never got both lines");
    assert_eq!(logs, "hello\noops\n");
    let state = inspect(&root, &id[..8]);
    assert_eq!(state["Id"], id);
    assert_eq!(state["Name"], "web");
    assert_eq!(state["State"]["Status"], "running");
    let pid = state["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(is_alive(pid));
    assert_eq!(state["Spec"]["process"]["args"][0], "sh");
    assert!(!state["Cgroups"].as_array().unwrap().is_empty());
    ok_stdout(&root.run(&["rm", "-f", "web"]));
    assert!(!is_alive(pid));
    assert_eq!(ok_stdout(&root.run(&["ps", "-a", "-q"])), "");
}

#[test]
fn exited_containers_are_kept_until_rm() {
    let root = TestRoot::new();
    let id = detach(&root, &["sh", "-c", "echo bye; exit 4"]);
    let state = wait_exited(&root, &id);
    assert_eq!(state["State"]["ExitCode"], 4);
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(ok_stdout(&root.run(&["ps", "-q"])), "", "not running");
    let all = ok_stdout(&root.run(&["ps", "-a"]));
    assert!(all.contains("Exited (4) "), "{all}");
    assert_eq!(ok_stdout(&root.run(&["logs", &id[..12]])), "bye\n");
    // A foreground run does not sweep it away.
    ok_stdout(&root.run(&["run", "true"]));
    assert_eq!(root.state_dirs().len(), 1);
    assert_eq!(ok_stdout(&root.run(&["rm", &id])), format!("{id}\n"));
    assert!(root.state_dirs().is_empty());
    // --rm: removed when it ends.
    let removed = detach(&root, &["--rm", "true"]);
    let gone = wait_until(Duration::from_secs(5), || {
        root.state_dirs().is_empty().then_some(())
    });
    assert!(gone.is_some(), "{removed} was kept despite --rm");
}

#[test]
fn stop_sends_sigterm_then_sigkill() {
    let root = TestRoot::new();
    // Under --init an untrapped SIGTERM ends the command: 143 within the grace period.
    let graceful = detach(&root, &["--init", "sleep", "60"]);
    let started = std::time::Instant::now();
    ok_stdout(&root.run(&["stop", &graceful]));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(inspect(&root, &graceful)["State"]["ExitCode"], 143);
    // A grace period too long for a deadline is no deadline (it once overflowed: a panic).
    let patient = detach(&root, &["--init", "sleep", "60"]);
    ok_stdout(&root.run(&["stop", "-t", "18446744073709551615", &patient]));
    assert_eq!(inspect(&root, &patient)["State"]["ExitCode"], 143);
    // PID 1 without a handler ignores SIGTERM: SIGKILL after the grace period, 137.
    let stubborn = detach(&root, &["sleep", "60"]);
    let started = std::time::Instant::now();
    ok_stdout(&root.run(&["stop", "-t", "1", &stubborn]));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(inspect(&root, &stubborn)["State"]["ExitCode"], 137);
    // kill -s: any signal; the container's trap answers it.
    let trapping = detach(
        &root,
        &[
            "sh",
            "-c",
            "trap 'exit 10' USR1; while :; do sleep 0.05; done",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    ok_stdout(&root.run(&["kill", "-s", "USR1", &trapping]));
    assert_eq!(wait_exited(&root, &trapping)["State"]["ExitCode"], 10);
    let line = assert_fails(&root.run(&["kill", &trapping]), 125);
    assert!(line.contains("is not running"), "{line}");
    ok_stdout(&root.run(&["rm", &graceful, &patient, &stubborn, &trapping]));
}

#[test]
fn a_killed_monitor_leaves_a_container_ps_reports_and_rm_f_removes() {
    let root = TestRoot::new();
    let id = detach(&root, &["sleep", "60"]);
    let state = inspect(&root, &id);
    let init = state["State"]["Pid"].as_i64().unwrap() as i32;
    let cgroups: Vec<String> = state["Cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let monitor = std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let monitor: i32 = monitor
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kill(Pid::from_raw(monitor), Signal::SIGKILL).unwrap();
    let gone = wait_until(Duration::from_secs(5), || (!is_alive(init)).then_some(()));
    assert!(gone.is_some(), "the container outlived its monitor");
    let all = ok_stdout(&root.run(&["ps", "-a"]));
    assert!(all.contains("Dead"), "{all}");
    assert_eq!(inspect(&root, &id)["State"]["Running"], false);
    // Not swept by other commands: it is the user's to remove.
    ok_stdout(&root.run(&["run", "true"]));
    assert_eq!(root.state_dirs().len(), 1);
    ok_stdout(&root.run(&["rm", "-f", &id]));
    assert!(root.state_dirs().is_empty());
    for cgroup in cgroups {
        assert!(
            !std::path::Path::new(&cgroup).exists(),
            "{cgroup} left behind"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_125() {
    let root = TestRoot::new();
    let id = detach(&root, &["--name", "taken", "sleep", "30"]);
    let line = assert_fails(&root.run(&["run", "-d", "--name", "taken", "true"]), 125);
    assert!(line.contains("already in use"), "{line}");
    for command in [
        &["logs", "nosuch"][..],
        &["inspect", "nosuch"],
        &["stop", "nosuch"],
        &["rm", "nosuch"],
        &["kill", "nosuch"],
    ] {
        let line = assert_fails(&root.run(command), 125);
        assert_eq!(
            line, "mini-container: no such container: nosuch",
            "{command:?}"
        );
    }
    let line = assert_fails(&root.run(&["rm", "taken"]), 125);
    assert!(line.contains("cannot remove running container"), "{line}");
    let line = assert_fails(&root.run(&["kill", "-s", "NOPE", "taken"]), 125);
    assert!(line.contains("invalid signal"), "{line}");
    // An ambiguous prefix: make containers until two ids share their first digit.
    let mut ids = vec![id.clone()];
    let shared = loop {
        let next = detach(&root, &["true"]);
        if let Some(other) = ids.iter().find(|other| other[..1] == next[..1]) {
            break other[..1].to_string();
        }
        ids.push(next);
    };
    let line = assert_fails(&root.run(&["inspect", &shared]), 125);
    assert!(
        line.contains("matches") && line.contains("give more of the id"),
        "{line}"
    );
    assert_fails(&root.run(&["run", "-d", "nosuch-command"]), 127);
    let line = assert_fails(&root.run(&["run", "-d", "-t", "true"]), 125);
    assert!(
        line.contains("not supported") || line.contains("not a TTY"),
        "{line}"
    );
    let all: Vec<String> = ok_stdout(&root.run(&["ps", "-a", "-q"]))
        .lines()
        .map(String::from)
        .collect();
    let mut args = vec!["rm", "-f"];
    args.extend(all.iter().map(String::as_str));
    ok_stdout(&root.run(&args));
}

/// The start time of process `pid` (field 22 of /proc/PID/stat).
fn start_time_of(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// Sets `pid` and `start_time` in a container's state.json, as a reused pid would leave it.
fn forge_state(dir: &std::path::Path, pid: i32, start_time: u64) {
    let path = dir.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["pid"] = pid.into();
    state["start_time"] = start_time.into();
    let tmp = dir.join("state.forged");
    std::fs::write(&tmp, serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Lets a stopped monitor go on and kills a bystander, whatever the test's outcome.
struct Resume {
    monitor: i32,
    bystander: std::process::Child,
}

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.monitor), Signal::SIGCONT);
        let _ = self.bystander.kill();
        let _ = self.bystander.wait();
    }
}

#[test]
fn a_pid_that_went_to_another_process_is_not_the_container() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let id = detach(
        &root,
        &[
            "--name",
            "lifecycle-reuse",
            "--rootfs",
            path_str(&rootfs),
            "sleep",
            "1000",
        ],
    );
    let dir = root.path.join("run").join(&id);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let init = state["pid"].as_i64().unwrap() as i32;
    let monitor = state["runner_pid"].as_i64().unwrap() as i32;
    let recorded = state["start_time"]
        .as_u64()
        .expect("no start time in state.json");
    assert_eq!(recorded, start_time_of(init));
    // The recorded start time matches: exec works.
    assert_eq!(ok_stdout(&root.run(&["exec", &id, "echo", "in"])), "in\n");

    // The monitor stopped, it keeps holding the container while its init is killed: the
    // state says running, with a pid that a process of ours now has.
    kill(Pid::from_raw(monitor), Signal::SIGSTOP).unwrap();
    let bystander = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let other = bystander.id() as i32;
    let mut resume = Resume { monitor, bystander };
    kill(Pid::from_raw(init), Signal::SIGKILL).unwrap();
    let dead = wait_until(Duration::from_secs(5), || (!is_alive(init)).then_some(()));
    assert!(dead.is_some(), "the container's init outlived SIGKILL");
    forge_state(&dir, other, recorded);

    let line = assert_fails(&root.run(&["kill", &id]), 125);
    assert!(line.contains("is not running"), "{line}");
    let line = assert_fails(&root.run(&["exec", &id, "true"]), 125);
    assert!(line.contains("is not running"), "{line}");
    // stop: stopped already.
    assert_eq!(
        ok_stdout(&root.run(&["stop", "-t", "1", &id])),
        format!("{id}\n")
    );
    assert!(
        is_alive(other),
        "a process that got the init's pid was signalled"
    );
    assert_eq!(ok_stdout(&root.run(&["ps", "-q"])), "");
    let all = ok_stdout(&root.run(&["ps", "-a"]));
    assert!(all.contains("Exited"), "{all}");
    assert_eq!(inspect(&root, &id)["State"]["Status"], "exited");

    // With the bystander's own start time, the check passes and kill reaches it: the
    // start time is what decided.
    forge_state(&dir, other, start_time_of(other));
    assert_eq!(ok_stdout(&root.run(&["kill", &id])), format!("{id}\n"));
    let status = resume.bystander.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));

    drop(resume);
    assert_eq!(wait_exited(&root, &id)["State"]["ExitCode"], 137);
    ok_stdout(&root.run(&["rm", &id]));
}

/// The sizes of a container's log files (container.log and its rotated ones).
fn log_sizes(root: &TestRoot, id: &str) -> Vec<u64> {
    std::fs::read_dir(root.path.join("run").join(id))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .map(|e| e.metadata().unwrap().len())
        .collect()
}

#[test]
fn a_detached_log_is_rotated_and_bounded() {
    let root = TestRoot::new();
    let rootfs = root.busybox_rootfs();
    let rootfs = path_str(&rootfs);
    // 500 numbered lines, 4,390 bytes, of which 3 files of 1 KiB keep the newest.
    let script = "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done";
    let id = detach(
        &root,
        &[
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(wait_exited(&root, &id)["State"]["ExitCode"], 0);
    let sizes = log_sizes(&root, &id);
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(sizes.iter().all(|&size| size <= 1024), "{sizes:?}");
    assert!(sizes.iter().sum::<u64>() <= 3 * 1024, "{sizes:?}");
    // `logs` (and `logs -f`): the newest lines, in order, whole, up to the last.
    for args in [&["logs", &id][..], &["logs", "-f", &id]] {
        let logs = ok_stdout(&root.run(args));
        let numbers: Vec<u32> = logs
            .lines()
            .map(|line| line.strip_prefix("line-").unwrap().parse().unwrap())
            .collect();
        assert_eq!(numbers.last(), Some(&499), "{logs}");
        assert!(numbers.len() > 200 && numbers[0] > 0, "{logs}");
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{logs}");
    }
    // The comma form; with room for it all, every line is kept in one file.
    let all = detach(
        &root,
        &[
            "--log-opt",
            "max-size=1m,max-file=2",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            script,
        ],
    );
    wait_exited(&root, &all);
    assert_eq!(log_sizes(&root, &all), [4390]);
    assert_eq!(ok_stdout(&root.run(&["logs", &all])).lines().count(), 500);
    let line = assert_fails(
        &root.run(&["run", "-d", "--log-opt", "max-file=0", "true"]),
        125,
    );
    assert!(line.contains("invalid --log-opt \"max-file=0\""), "{line}");
    ok_stdout(&root.run(&["rm", &id, &all]));
}
