//! The test harness: runs the real `mini-container` binary, as root, on real containers,
//! each test with its own `--root` directory that must be empty of state when it ends, and
//! no container cgroup left on the host once no test runs.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub mod attack;
pub mod image;
pub mod pty;
pub mod registry;

pub const BIN: &str = env!("CARGO_BIN_EXE_mini-container");

/// Where the host's cgroups are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The `TestRoot`s alive in this process, and while there are some, a shared lock on a file
/// every test process of the host shares. Tests run in parallel (and test binaries may too),
/// so a container cgroup may exist while any test lives: the last `TestRoot` of a process
/// takes the lock exclusively, so that no test anywhere runs, and checks that no container
/// cgroup is left. Held while checking, so that no test of this process starts meanwhile.
struct Live {
    count: usize,
    shared: Option<fs::File>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    count: 0,
    shared: None,
});

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn tests_lock() -> fs::File {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("mini-container-tests.lock"))
        .unwrap()
}

/// Every container cgroup on the host: directories named `mini-container-*` anywhere below
/// /sys/fs/cgroup, in every hierarchy.
pub fn container_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            // Symbolic links (`cpu` -> `cpu,cpuacct`) are not followed: no double counting.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("mini-container-")
            {
                found.push(entry.path());
            }
            walk(&entry.path(), found);
        }
    }
    let mut found = Vec::new();
    walk(Path::new(CGROUP_ROOT), &mut found);
    found
}

/// Fails the test, with the reason, unless it runs as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts real containers and needs root: run it with sudo (see README.md)"
    );
}

/// A private `--root` for one test; removed at the end, after checking nothing was left:
/// no state, no name links, and the host's mount table as it was.
pub struct TestRoot {
    pub path: PathBuf,
    mounts_before: Vec<String>,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        require_root();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        let mut live = live();
        if live.count == 0 {
            let lock = tests_lock();
            lock.lock_shared().unwrap();
            live.shared = Some(lock);
        }
        live.count += 1;
        drop(live);
        TestRoot {
            path,
            mounts_before: host_mounts(),
        }
    }

    /// A busybox root filesystem in this test's directory: every applet, /etc/passwd with
    /// root, app (1000) and nobody, /etc/group with a supplementary group for app.
    pub fn busybox_rootfs(&self) -> PathBuf {
        let rootfs = self.path.join("rootfs");
        for dir in ["bin", "etc", "root", "tmp"] {
            fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
        for applet in busybox_applets() {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             app:x:1000:1000:app:/home/app:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
        )
        .unwrap();
        rootfs
    }

    /// `mini-container --root <this> ARGS...`, with a clean log environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.arg("--root").arg(&self.path).args(args);
        command.env_remove("RUST_LOG").env_remove("RUST_BACKTRACE");
        command.stdin(Stdio::null());
        command
    }

    /// Runs to completion and returns what it printed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        output
    }

    /// The state directories of containers under this root.
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        match fs::read_dir(self.path.join("run")) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().unwrap() != "names")
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until exactly one container runs and returns its state.json.
    pub fn wait_for_running_state(&self) -> serde_json::Value {
        wait_until(Duration::from_secs(10), || {
            let dirs = self.state_dirs();
            let [dir] = dirs.as_slice() else { return None };
            let json: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join("state.json")).ok()?).ok()?;
            (json["status"] == "running").then_some(json)
        })
        .expect("the container never showed up as running in its state directory")
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let left = self.state_dirs();
        let names: Vec<_> = fs::read_dir(self.path.join("run/names"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let mounts_after = host_mounts();
        if !left.is_empty() {
            // A test that failed midway: end its containers (killing them, and so their
            // cgroups and layers with them) before its directory goes.
            let ids: Vec<String> = left
                .iter()
                .filter_map(|dir| Some(dir.file_name()?.to_string_lossy().into_owned()))
                .collect();
            let _ = self.command(&["rm", "-f"]).args(&ids).output();
        }
        let _ = fs::remove_dir_all(&self.path);
        let mut live = live();
        live.count -= 1;
        let mut cgroups = Vec::new();
        if live.count == 0 {
            live.shared = None;
            let exclusive = tests_lock();
            exclusive.lock().unwrap();
            cgroups = container_cgroups();
            // Not on the host after the tests, whatever they say.
            for dir in cgroups.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
        drop(live);
        if !std::thread::panicking() {
            assert!(left.is_empty(), "state left behind: {left:?}");
            assert!(names.is_empty(), "name links left behind: {names:?}");
            assert_eq!(
                mounts_after, self.mounts_before,
                "the host's mount table changed"
            );
            assert!(
                cgroups.is_empty(),
                "container cgroups left behind: {cgroups:?}"
            );
        }
    }
}

/// The static busybox of Debian's busybox-static package.
pub fn busybox() -> &'static Path {
    let path = Path::new("/bin/busybox");
    assert!(
        path.exists(),
        "tests need a static busybox: apt-get install busybox-static (tests/run-all.sh does)"
    );
    path
}

fn busybox_applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let output = Command::new(busybox()).arg("--list").output().unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|applet| *applet != "busybox")
            .map(String::from)
            .collect()
    })
}

/// Polls `check` until it returns Some, or gives up after `timeout`.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a clean success and returns stdout.
pub fn ok_stdout(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts mini-container's own failure: the status, and exactly one line on stderr,
/// `mini-container: ...`, with no panic. Returns that line.
pub fn assert_fails(output: &Output, status: i32) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(status), "stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("mini-container: "), "{err}");
    err.trim_end().to_string()
}

/// True while `pid` is a live process (not gone, not a zombie waiting to be reaped).
pub fn is_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// The host's mount table as (mount point, source) pairs: mount ids change across mount
/// namespaces, so they are left out.
pub fn host_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            format!("{} {}", fields[4], fields[fields.len() - 2])
        })
        .collect()
}

/// Spawns a runner in the background, with stdout and stderr captured.
pub fn spawn(root: &TestRoot, args: &[&str]) -> Child {
    root.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn temp_file(root: &TestRoot, name: &str, contents: &[u8]) -> PathBuf {
    let path = root.path.join(name);
    fs::write(&path, contents).unwrap();
    path
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The container's cgroup directories, as its state records them.
pub fn cgroups_of(state: &serde_json::Value) -> Vec<PathBuf> {
    state["cgroups"]
        .as_array()
        .expect("state.json has no cgroups")
        .iter()
        .map(|path| PathBuf::from(path.as_str().unwrap()))
        .collect()
}

/// The first of `dirs` that has `file`: finds the hierarchy of a controller on cgroup v1.
pub fn cgroup_with(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().find(|dir| dir.join(file).exists()).cloned()
}

/// The cgroups a run created, from its debug log (`creating cgroup <path>`).
pub fn created_cgroups(log: &str) -> Vec<PathBuf> {
    log.lines()
        .filter_map(|line| line.split("creating cgroup ").nth(1))
        .map(|path| PathBuf::from(path.trim()))
        .collect()
}

/// True when the host mounts cgroup v2 alone at /sys/fs/cgroup.
pub fn is_cgroup_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}
