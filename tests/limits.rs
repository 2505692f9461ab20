//! Resource limits: the container's own cgroup (memory, CPU, cpuset, pids), the OOM killer,
//! `--stats` and `--ulimit`, asserted on the real binary as root with real containers. On
//! this host cgroups are v1 (hybrid); the checks read v2's files where the host has v2.

mod common;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Allocates about 100 MB in the shell itself, PID 1 of the container.
const MEMORY_HOG: &str = "x=$(head -c 100000000 /dev/zero | tr '\\0' x)";

/// Starts a runner whose container prints `ready` and then waits for a line on stdin;
/// returns it with its state once it runs.
fn start_waiting(root: &TestRoot, flags: &[&str]) -> (Child, serde_json::Value) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend(["sh", "-c", "echo ready; read line; exit ${line:-0}"]);
    let mut runner = root
        .command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(runner.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let state = root.wait_for_running_state();
    (runner, state)
}

/// Lets a container from `start_waiting` exit with `status`; returns the runner's output.
fn finish(mut runner: Child, status: i32) -> std::process::Output {
    writeln!(runner.stdin.take().unwrap(), "{status}").unwrap();
    runner.wait_with_output().unwrap()
}

fn pid_of(state: &serde_json::Value) -> i32 {
    state["pid"].as_i64().unwrap() as i32
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
        .trim()
        .to_string()
}

fn assert_gone(dirs: &[PathBuf]) {
    for dir in dirs {
        assert!(!dir.exists(), "cgroup {} is left", dir.display());
    }
}

#[test]
fn a_memory_hog_is_oom_killed_and_the_runner_says_so() {
    let root = TestRoot::new();
    let output = root.run(&["run", "-m", "32m", "sh", "-c", MEMORY_HOG]);
    assert_eq!(output.status.code(), Some(137), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "mini-container: container killed: out of memory (limit 32MiB)\n"
    );
    // Another hog, another form: `tail` buffering a line that never ends.
    let output = root.run(&["run", "--memory", "48MiB", "tail", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(137), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "mini-container: container killed: out of memory (limit 48MiB)\n"
    );
    // The same allocation fits in a larger limit.
    let output = root.run(&["run", "-m", "512m", "sh", "-c", MEMORY_HOG]);
    assert_eq!(ok_stdout(&output), "");
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_sigkill_that_is_not_the_oom_killer_is_not_reported_as_one() {
    // 137 alone proves nothing: the cgroup's own counter decides.
    let root = TestRoot::new();
    let (runner, state) = start_waiting(&root, &["-m", "32m"]);
    kill(Pid::from_raw(pid_of(&state)), Signal::SIGKILL).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(137));
    assert_eq!(stderr(&output), "");
}

#[test]
fn memory_limits_are_written_to_the_containers_cgroup() {
    let root = TestRoot::new();
    let (runner, state) = start_waiting(&root, &["-m", "64m", "--memory-swap", "96m"]);
    let dirs = cgroups_of(&state);
    if let Some(memory) = cgroup_with(&dirs, "memory.limit_in_bytes") {
        assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(
            read(&memory.join("memory.memsw.limit_in_bytes")),
            "100663296"
        );
    } else {
        let dir = cgroup_with(&dirs, "memory.max").expect("no memory cgroup");
        assert_eq!(read(&dir.join("memory.max")), "67108864");
        assert_eq!(read(&dir.join("memory.swap.max")), "33554432");
    }
    assert_eq!(finish(runner, 0).status.code(), Some(0));
    assert_gone(&dirs);
}

#[test]
fn pids_limit_makes_forks_fail_inside_and_the_container_still_exits_normally() {
    let root = TestRoot::new();
    // The inner shell starts sleepers until fork fails (and the shell with it); the outer
    // one, PID 1, goes on and exits 0.
    let script = "sh -c 'for i in $(seq 40); do sleep 30 >/dev/null & echo $i; done' | tail -n 1; echo exited normally";
    let output = root.run(&["run", "--pids-limit", "20", "sh", "-c", script]);
    let out = ok_stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let started: u32 = lines[0].parse().unwrap();
    assert!(
        (10..20).contains(&started),
        "{started} sleepers started under a limit of 20 pids"
    );
    assert_eq!(lines[1], "exited normally");
    assert!(
        stderr(&output).to_lowercase().contains("fork"),
        "{}",
        stderr(&output)
    );
    // Without the limit all 40 start.
    let out = ok_stdout(&root.run(&["run", "--pids-limit", "-1", "sh", "-c", script]));
    assert_eq!(out, "40\nexited normally\n");
    let out = ok_stdout(&root.run(&["run", "--pids-limit", "0", "sh", "-c", script]));
    assert_eq!(out, "40\nexited normally\n");
}

#[test]
fn cpus_set_a_quota_over_a_100ms_period_in_the_containers_cgroup() {
    let root = TestRoot::new();
    let (runner, state) = start_waiting(&root, &["--cpus", "0.5", "--cpu-shares", "512"]);
    let dirs = cgroups_of(&state);
    if let Some(cpu) = cgroup_with(&dirs, "cpu.cfs_quota_us") {
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&cpu.join("cpu.shares")), "512");
        assert!(
            read(&cpu.join("cgroup.procs"))
                .lines()
                .any(|pid| pid == pid_of(&state).to_string()),
            "the container's init is not in {}",
            cpu.display()
        );
    } else {
        let dir = cgroup_with(&dirs, "cpu.max").expect("no cpu cgroup");
        assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
        assert_eq!(read(&dir.join("cpu.weight")), "20");
    }
    assert_eq!(finish(runner, 0).status.code(), Some(0));
    assert_gone(&dirs);
}

#[test]
fn cpuset_cpus_pins_the_container() {
    let root = TestRoot::new();
    let allowed = |cpus: &str| {
        let out = ok_stdout(&root.run(&[
            "run",
            "--cpuset-cpus",
            cpus,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ]));
        out.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(allowed("0"), "0");
    let online = read(Path::new("/sys/devices/system/cpu/online"));
    if online != "0" {
        assert_eq!(allowed("1"), "1");
    }
}

#[test]
fn the_container_sees_its_cgroup_as_the_root() {
    let root = TestRoot::new();
    let out = ok_stdout(&root.run(&["run", "-m", "64m", "cat", "/proc/self/cgroup"]));
    assert!(out.lines().count() >= 1, "{out}");
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{out}");
    }
    // From the host, the container's init is in mini-container-<id>.
    let (runner, state) = start_waiting(&root, &["-m", "64m"]);
    let id = state["id"].as_str().unwrap();
    let host_view = read(Path::new(&format!("/proc/{}/cgroup", pid_of(&state))));
    let name = format!("/mini-container-{id}");
    let inside: Vec<&str> = host_view.lines().filter(|l| l.ends_with(&name)).collect();
    assert!(!inside.is_empty(), "{host_view}");
    if !is_cgroup_v2() {
        for controller in ["freezer", "memory"] {
            assert!(
                inside
                    .iter()
                    .any(|l| l.split(':').nth(1) == Some(controller)),
                "not in a {controller} cgroup: {host_view}"
            );
        }
    }
    assert_eq!(finish(runner, 0).status.code(), Some(0));
}

#[test]
fn the_cgroup_lives_exactly_as_long_as_the_container() {
    let root = TestRoot::new();
    for status in [0, 3] {
        let (runner, state) = start_waiting(&root, &["-m", "64m", "--pids-limit", "50"]);
        let dirs = cgroups_of(&state);
        assert!(!dirs.is_empty());
        for dir in &dirs {
            assert!(
                dir.file_name().unwrap().to_string_lossy()
                    == format!("mini-container-{}", state["id"].as_str().unwrap()),
                "{}",
                dir.display()
            );
            assert!(
                read(&dir.join("cgroup.procs")).contains(&pid_of(&state).to_string()),
                "{}",
                dir.display()
            );
        }
        let output = finish(runner, status);
        assert_eq!(output.status.code(), Some(status), "{}", stderr(&output));
        assert_gone(&dirs);
    }
    // Failures before and at exec: the cgroup was made, and is gone.
    for (args, status) in [
        (&["run", "-m", "64m", "-w", "/no/such/dir", "true"][..], 125),
        (&["run", "-m", "64m", "no-such-command"][..], 127),
        (&["run", "--ulimit", "nofile=unlimited", "true"][..], 125),
    ] {
        let output = root
            .command(args)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(status), "{args:?}");
        let created = created_cgroups(&stderr(&output));
        assert!(!created.is_empty(), "{args:?}: {}", stderr(&output));
        assert_gone(&created);
    }
    // A plain run has a cgroup too.
    let output = root
        .command(&["run", "true"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let created = created_cgroups(&stderr(&output));
    assert_eq!(created.len(), 1, "{}", stderr(&output));
    assert_gone(&created);
}

#[test]
fn ctrl_c_to_the_runner_ends_the_container_and_removes_its_cgroup() {
    let root = TestRoot::new();
    // Bounded (20 s), so that a failing test never leaves it running.
    let script = "trap 'echo got INT; exit 130' INT; echo ready; \
                  i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done";
    let mut runner = spawn(&root, &["run", "-m", "64m", "sh", "-c", script]);
    let mut out = BufReader::new(runner.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let dirs = cgroups_of(&root.wait_for_running_state());
    kill(Pid::from_raw(runner.id() as i32), Signal::SIGINT).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got INT\n");
    let output = runner.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert_gone(&dirs);
}

#[test]
fn cgroups_of_a_sigkilled_runner_are_removed_by_the_next_command() {
    let root = TestRoot::new();
    let mut runner = spawn(
        &root,
        &[
            "run",
            "-m",
            "64m",
            "--pids-limit",
            "50",
            "sh",
            "-c",
            "sleep 60 & sleep 60",
        ],
    );
    let state = root.wait_for_running_state();
    let dirs = cgroups_of(&state);
    // A process of the test's own, moved into the container's cgroups: the next command
    // must kill it (it is not in the container's PID namespace, so it outlives the init).
    let mut stray = Command::new("sleep").arg("60").spawn().unwrap();
    for dir in &dirs {
        fs::write(dir.join("cgroup.procs"), stray.id().to_string()).unwrap();
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    let init = pid_of(&state);
    assert!(
        wait_until(Duration::from_secs(5), || (!is_alive(init)).then_some(())).is_some(),
        "the container outlived its runner"
    );
    for dir in &dirs {
        assert!(dir.exists(), "{} vanished without cleanup", dir.display());
    }
    ok_stdout(&root.run(&["run", "true"]));
    assert_gone(&dirs);
    assert!(root.state_dirs().is_empty(), "stale state was not removed");
    assert_eq!(stray.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn processes_moved_into_the_cgroup_are_killed_when_the_container_ends() {
    let root = TestRoot::new();
    let (runner, state) = start_waiting(&root, &["--pids-limit", "50"]);
    let dirs = cgroups_of(&state);
    let mut stray = Command::new("sleep").arg("60").spawn().unwrap();
    for dir in &dirs {
        fs::write(dir.join("cgroup.procs"), stray.id().to_string()).unwrap();
    }
    let output = finish(runner, 0);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stray.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_gone(&dirs);
}

/// `--stats`' line, as numbers: (wall, cpu, user, system) in seconds, peak memory in bytes,
/// peak pids.
fn parse_stats(line: &str) -> (f64, f64, f64, f64, u64, u64) {
    let rest = line
        .strip_prefix("mini-container: stats: wall ")
        .unwrap_or_else(|| panic!("{line}"));
    let numbers: Vec<f64> = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| !s.is_empty() && *s != ".")
        .map(|s| s.parse().unwrap())
        .collect();
    // wall, cpu, user, system, memory (MiB), memory (bytes), pids
    assert_eq!(numbers.len(), 7, "{line}");
    (
        numbers[0],
        numbers[1],
        numbers[2],
        numbers[3],
        numbers[5] as u64,
        numbers[6] as u64,
    )
}

#[test]
fn stats_report_what_the_container_used() {
    let root = TestRoot::new();
    let fifty_mib = "x=$(head -c 52428800 /dev/zero | tr '\\0' x); echo allocated";
    let output = root.run(&["run", "--stats", "sh", "-c", fifty_mib]);
    assert_eq!(ok_stdout(&output), "allocated\n");
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (wall, cpu, user, system, memory, pids) = parse_stats(err.trim_end());
    assert!(memory >= 50 << 20, "peak memory {memory} < 50 MiB: {err}");
    assert!(memory < 1 << 30, "{err}");
    assert!(pids >= 3, "sh, head and tr at least: {err}");
    assert!((user + system - cpu).abs() <= 0.0015, "{err}");
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(cpu > 0.0 && cpu <= wall * cpus + 0.01, "{err}");
    assert!(wall > 0.0 && wall < 60.0, "{err}");

    // A CPU-bound loop in one process: its CPU time is mostly user time, at most its wall.
    let busy = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
    let output = root.run(&["run", "--stats", "sh", "-c", busy]);
    ok_stdout(&output);
    let (wall, cpu, user, system, _, pids) = parse_stats(stderr(&output).trim_end());
    assert!(cpu <= wall, "{}", stderr(&output));
    assert!(user > system, "{}", stderr(&output));
    assert_eq!(pids, 1, "{}", stderr(&output));

    // With a limit, the peak stays under it, and the OOM line comes first.
    let output = root.run(&["run", "--stats", "-m", "32m", "sh", "-c", MEMORY_HOG]);
    assert_eq!(output.status.code(), Some(137));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        "mini-container: container killed: out of memory (limit 32MiB)"
    );
    let (_, _, _, _, memory, _) = parse_stats(lines[1]);
    assert!(memory <= 32 << 20 && memory > 16 << 20, "{err}");

    // Without --stats, nothing.
    assert_eq!(stderr(&root.run(&["run", "true"])), "");
}

#[test]
fn twenty_containers_with_limits_in_parallel() {
    let root = TestRoot::new();
    let runners: Vec<_> = (0..20)
        .map(|i| {
            let script = format!("cat /proc/self/cgroup | grep -vc ':/$'; exit {i}");
            let args = [
                "run",
                "-m",
                "64m",
                "--cpus",
                "0.5",
                "--pids-limit",
                "50",
                "--stats",
                "sh",
                "-c",
                &script,
            ];
            (i, spawn(&root, &args))
        })
        .collect();
    for (i, runner) in runners {
        let output = runner.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(i), "stderr: {}", stderr(&output));
        assert_eq!(
            stdout(&output),
            "0\n",
            "the container sees only its own cgroups"
        );
        let err = stderr(&output);
        assert!(err.starts_with("mini-container: stats: "), "{err}");
    }
    assert!(root.state_dirs().is_empty());
}

#[test]
fn ulimits_apply_only_when_asked_for() {
    let root = TestRoot::new();
    let out = ok_stdout(&root.run(&[
        "run",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "core=0",
        "sh",
        "-c",
        "ulimit -Sn; ulimit -Hn; ulimit -c",
    ]));
    assert_eq!(out, "1024\n2048\n0\n");
    // Nobody asked: every limit is the runner's (this test's), untouched.
    let inside = ok_stdout(&root.run(&["run", "cat", "/proc/self/limits"]));
    assert_eq!(inside, fs::read_to_string("/proc/self/limits").unwrap());
}

#[test]
fn a_ulimit_the_host_cannot_grant_is_a_clear_error() {
    let root = TestRoot::new();
    let nr_open: u64 = read(Path::new("/proc/sys/fs/nr_open")).parse().unwrap();
    let over = (nr_open + 1).to_string();
    let line = assert_fails(
        &root.run(&["run", "--ulimit", &format!("nofile={over}"), "true"]),
        125,
    );
    assert_eq!(
        line,
        format!(
            "mini-container: setting ulimit nofile={over}:{over}: the kernel allows at most {nr_open} open files (fs.nr_open)"
        )
    );
    // Above our own hard limit: only CAP_SYS_RESOURCE may raise it.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).unwrap();
    if hard == nix::sys::resource::RLIM_INFINITY {
        return; // nothing above it to ask for
    }
    let status = read(Path::new("/proc/self/status"));
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    let has_sys_resource = effective & (1 << 24) != 0;
    let above = (hard + 1).to_string();
    let output = root.run(&[
        "run",
        "--ulimit",
        &format!("nproc={above}"),
        "grep",
        "Max processes",
        "/proc/self/limits",
    ]);
    if has_sys_resource {
        // Not `ulimit -Hu`: dash, Debian's sh, has no -u.
        let out = ok_stdout(&output);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields[2..4], [above.as_str(), above.as_str()], "{out}");
    } else {
        assert_eq!(
            assert_fails(&output, 125),
            format!(
                "mini-container: setting ulimit nproc={above}:{above}: the hard limit here is {hard} and raising it needs CAP_SYS_RESOURCE"
            )
        );
    }
}

#[test]
fn bad_values_are_one_line_and_125() {
    let root = TestRoot::new();
    let cpus = std::thread::available_parallelism().unwrap().get();
    let too_many = (cpus + 1).to_string();
    let range = format!(
        "the range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
    );
    let cases: &[(&[&str], String)] = &[
        (
            &["-m", "abc"],
            "invalid --memory \"abc\": expected a size such as 512m or 1.5g (units b, k, m, g)".into(),
        ),
        (
            &["-m", "1k"],
            "invalid --memory \"1k\": the minimum memory limit is 6MiB".into(),
        ),
        (&["--cpus", "-1"], format!("invalid --cpus \"-1\": {range}")),
        (&["--cpus", &too_many], format!("invalid --cpus \"{too_many}\": {range}")),
        (
            &["--cpuset-cpus", "99"],
            format!(
                "invalid --cpuset-cpus \"99\": CPU 99 is not available (online: {})",
                read(Path::new("/sys/devices/system/cpu/online"))
            ),
        ),
        (
            &["--ulimit", "nofile=abc"],
            "invalid --ulimit \"nofile=abc\": limits are whole numbers, -1 or unlimited (NAME=SOFT[:HARD])".into(),
        ),
        (
            &["--memory-swap", "1g"],
            "invalid --memory-swap \"1g\": it needs --memory as well".into(),
        ),
        (
            &["-m", "32m", "--memory-swap", "16m"],
            "invalid --memory-swap \"16m\": it counts memory plus swap, so it must be at least --memory (32MiB)".into(),
        ),
        (
            &["--pids-limit", "-5"],
            "invalid --pids-limit \"-5\": expected a number of processes (0 or -1: unlimited)".into(),
        ),
        (
            &["--cpu-shares", "1"],
            "invalid --cpu-shares \"1\": the range is 2 to 262144 (0 for the default)".into(),
        ),
        (
            &["--cgroup-parent", "../escape"],
            "invalid --cgroup-parent \"../escape\": use cgroup names separated by '/', without '.', '..' or empty names".into(),
        ),
        (
            &["--ulimit", "nofiles=1"],
            "invalid --ulimit \"nofiles=1\": unknown name \"nofiles\" (known: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)".into(),
        ),
    ];
    for (flags, why) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.push("true");
        let line = assert_fails(&root.run(&args), 125);
        assert_eq!(line, format!("mini-container: {why}"), "{flags:?}");
    }
    let line = assert_fails(
        &root.run(&["run", "--cgroup-parent", "/mc-no-such-parent", "true"]),
        125,
    );
    assert!(
        line.contains(
            "mc-no-such-parent does not exist (--cgroup-parent must name an existing cgroup)"
        ),
        "{line}"
    );
}

/// A cgroup made by the test in every hierarchy a run with `-m` uses; removed when dropped.
struct ParentCgroup {
    dirs: Vec<PathBuf>,
}

impl ParentCgroup {
    fn new(name: &str) -> ParentCgroup {
        let roots: Vec<PathBuf> = if is_cgroup_v2() {
            vec![PathBuf::from(CGROUP_ROOT)]
        } else {
            ["freezer", "memory"]
                .iter()
                .map(|c| Path::new(CGROUP_ROOT).join(c))
                .collect()
        };
        let dirs: Vec<PathBuf> = roots.iter().map(|r| r.join(name)).collect();
        for dir in &dirs {
            fs::create_dir(dir).unwrap();
        }
        ParentCgroup { dirs }
    }
}

impl Drop for ParentCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

#[test]
fn cgroup_parent_places_the_container_below_it() {
    let root = TestRoot::new();
    let name = format!("mc-test-parent-{}", std::process::id());
    let parent = ParentCgroup::new(&name);
    let output = root
        .command(&[
            "run",
            "--cgroup-parent",
            &format!("/{name}"),
            "-m",
            "64m",
            "true",
        ])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let created = created_cgroups(&stderr(&output));
    assert_eq!(created.len(), parent.dirs.len(), "{}", stderr(&output));
    for dir in &created {
        assert!(
            parent
                .dirs
                .iter()
                .any(|p| dir.parent() == Some(p.as_path())),
            "{} is not below the parent",
            dir.display()
        );
    }
    assert_gone(&created);
    for dir in &parent.dirs {
        assert!(dir.exists(), "the parent itself was removed");
    }
}

#[test]
fn debug_logging_shows_the_cgroup_steps() {
    let root = TestRoot::new();
    let output = root
        .command(&["run", "-m", "64m", "--ulimit", "nofile=512", "true"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success());
    let log = stderr(&output);
    for step in [
        "creating cgroup ",
        "setting ",
        "having the container's init join its cgroup",
        "setup: joining the container's cgroup",
        "setup: entering a new cgroup namespace",
        "setup: setting ulimit nofile=512:512",
    ] {
        assert!(log.contains(step), "missing {step:?} in:\n{log}");
    }
}
