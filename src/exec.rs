//! The container init's last step: exec the user's command with the container's environment,
//! found in the container's PATH (not the runner's), with default signal handling and no
//! file descriptors but stdin, stdout and stderr.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::SigSet;
use oci_spec::runtime::Process;
use std::ffi::CString;

/// PATH for the lookup when the container's environment has none (as execvp's default).
const FALLBACK_PATH: &str = "/bin:/usr/bin";

/// The command, ready for execve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

/// Why the command could not be executed.
#[derive(Debug)]
pub struct ExecError {
    pub errno: Errno,
    pub what: String,
}

impl Command {
    pub fn from_process(process: &Process) -> Result<Command> {
        let to_cstrings = |strings: &[String]| -> Result<Vec<CString>> {
            strings
                .iter()
                .map(|s| {
                    CString::new(s.as_bytes()).with_context(|| format!("{s:?} contains a NUL byte"))
                })
                .collect()
        };
        let args = to_cstrings(process.args().as_deref().unwrap_or_default())
            .context("reading the command")?;
        if args.is_empty() {
            anyhow::bail!("reading the command: it is empty");
        }
        let env = to_cstrings(process.env().as_deref().unwrap_or_default())
            .context("reading the environment")?;
        Ok(Command { args, env })
    }

    /// Adds HOME unless the environment has it already (as runc does).
    pub fn set_default_home(&mut self, home: &str) {
        let has_home = self.env.iter().any(|e| e.as_bytes().starts_with(b"HOME="));
        if let (false, Ok(entry)) = (has_home, CString::new(format!("HOME={home}"))) {
            self.env.push(entry);
        }
    }

    /// Replaces this process with the command; returns only if that failed.
    pub fn exec(&self) -> ExecError {
        reset_signals();
        close_inherited_fds();
        let name = self.args[0].as_bytes();
        let shown = String::from_utf8_lossy(name);
        if name.contains(&b'/') {
            let errno = execve(&self.args[0], self);
            return ExecError {
                errno,
                what: format!("executing {shown:?}: {}", errno.desc()),
            };
        }
        // As execvp: try each PATH entry; a permission error is kept unless a later entry works.
        let mut denied = None;
        for dir in self.path().split(|&b| b == b':') {
            let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
            let mut candidate = dir.to_vec();
            candidate.push(b'/');
            candidate.extend_from_slice(name);
            let Ok(candidate) = CString::new(candidate) else {
                continue;
            };
            match execve(&candidate, self) {
                Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => {}
                Errno::EACCES => denied = Some(Errno::EACCES),
                errno => {
                    return ExecError {
                        errno,
                        what: format!("executing {shown:?}: {}", errno.desc()),
                    };
                }
            }
        }
        match denied {
            Some(errno) => ExecError {
                errno,
                what: format!("executing {shown:?}: {}", errno.desc()),
            },
            None => ExecError {
                errno: Errno::ENOENT,
                what: format!("executing {shown:?}: executable file not found in $PATH"),
            },
        }
    }

    /// The container's PATH, from its environment.
    fn path(&self) -> &[u8] {
        self.env
            .iter()
            .find_map(|entry| entry.as_bytes().strip_prefix(b"PATH="))
            .unwrap_or(FALLBACK_PATH.as_bytes())
    }
}

fn execve(path: &CString, command: &Command) -> Errno {
    match nix::unistd::execve(path, &command.args, &command.env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

/// Default dispositions and an empty mask: the runner blocked signals before the clone and
/// Rust ignores SIGPIPE, and both would otherwise pass through exec to the command.
fn reset_signals() {
    for signo in 1..libc::SIGRTMIN() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting a disposition to SIG_DFL installs no handler, so there is no code
        // that could run in signal context; invalid numbers just fail with EINVAL.
        unsafe { libc::signal(signo, libc::SIG_DFL) };
    }
    let _ = SigSet::empty().thread_set_mask();
}

/// Marks every fd above stderr close-on-exec, so nothing the runner inherited leaks in.
fn close_inherited_fds() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on this process's fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == 0 {
        return;
    }
    // Kernels before 5.11: one fcntl per open fd.
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD only changes the close-on-exec flag; a stale fd fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str], env: &[&str]) -> Command {
        let mut process = Process::default();
        process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        process.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        Command::from_process(&process).unwrap()
    }

    #[test]
    fn path_comes_from_the_container_environment() {
        assert_eq!(command(&["ls"], &["A=1", "PATH=/x:/y"]).path(), b"/x:/y");
        assert_eq!(command(&["ls"], &[]).path(), FALLBACK_PATH.as_bytes());
    }

    #[test]
    fn nul_bytes_and_empty_commands_are_refused() {
        let mut process = Process::default();
        process.set_args(Some(vec!["a\0b".into()]));
        assert!(Command::from_process(&process).is_err());
        process.set_args(Some(vec![]));
        assert!(Command::from_process(&process).is_err());
    }
}
