//! Exit statuses, the errors that choose them, and the one-line rendering of any error.
//!
//! Every failure ends as one line on stderr, `mini-container: <what failed>: <why>`, and an
//! exit status: 125 when mini-container itself fails, 126 when the command cannot be
//! executed, 127 when it is not found. Only errors that need 126 or 127 carry a type.

use nix::errno::Errno;
use std::fmt;

/// mini-container itself failed: a bad flag or value, or a setup step.
pub const EXIT_SETUP_FAILED: i32 = 125;
/// The command exists but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// A failure whose exit status is not 125: the container's command could not be run.
#[derive(Debug)]
pub struct CommandFailed {
    /// 126 or 127.
    pub status: i32,
    /// The whole message, `<what>: <why>`.
    pub message: String,
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandFailed {}

/// The exit status for an error: the command's 126/127, otherwise 125.
pub fn exit_status(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<CommandFailed>()
        .map_or(EXIT_SETUP_FAILED, |failed| failed.status)
}

/// The exit status for a failed `execve` of the command, from its errno.
pub fn exec_failure_status(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => EXIT_NOT_FOUND,
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM => EXIT_CANNOT_EXECUTE,
        _ => EXIT_SETUP_FAILED,
    }
}

/// Renders an error chain as `what: why: ...`, with the C library's description of an errno
/// ("No such file or directory") instead of Rust's "(os error 2)".
pub fn describe(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| match errno_of_cause(cause) {
            Some(errno) => errno.desc().to_string(),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The first errno found in an error chain, if any: sent to the parent with setup failures.
pub fn errno_of(err: &anyhow::Error) -> Option<Errno> {
    err.chain().find_map(errno_of_cause)
}

fn errno_of_cause(cause: &(dyn std::error::Error + 'static)) -> Option<Errno> {
    if let Some(errno) = cause.downcast_ref::<Errno>() {
        return Some(*errno);
    }
    cause
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        .map(Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn describes_io_errors_by_their_errno_text() {
        let err = std::fs::read("/nonexistent/file")
            .context("reading env file /nonexistent/file")
            .unwrap_err();
        assert_eq!(
            describe(&err),
            "reading env file /nonexistent/file: No such file or directory"
        );
        assert_eq!(errno_of(&err), Some(Errno::ENOENT));
        assert_eq!(exit_status(&err), EXIT_SETUP_FAILED);
    }

    #[test]
    fn command_failures_keep_their_status() {
        let err = anyhow::Error::new(CommandFailed {
            status: EXIT_NOT_FOUND,
            message: "executing \"x\": not found".into(),
        });
        assert_eq!(exit_status(&err), EXIT_NOT_FOUND);
        assert_eq!(describe(&err), "executing \"x\": not found");
    }

    #[test]
    fn exec_errnos_map_to_docker_statuses() {
        assert_eq!(exec_failure_status(Errno::ENOENT), 127);
        assert_eq!(exec_failure_status(Errno::EACCES), 126);
        assert_eq!(exec_failure_status(Errno::ENOEXEC), 126);
        assert_eq!(exec_failure_status(Errno::E2BIG), 125);
    }
}
