//! Command-line definitions. Flags follow Docker's spelling wherever Docker has one.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A single-binary container runner: `docker run` without a daemon.
#[derive(Debug, Parser)]
#[command(name = "mini-container", version)]
pub struct Cli {
    /// Keep all state and storage under DIR instead of /run/mini-container and
    /// /var/lib/mini-container
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, start and wait for a container running COMMAND
    Run(Box<RunArgs>),
    /// The container's init, re-executed by `run` inside the new namespaces (internal)
    #[command(hide = true)]
    Child,
}

/// `run [OPTIONS] COMMAND [ARG...]`: everything after COMMAND belongs to the command.
#[derive(Debug, Default, Args)]
pub struct RunArgs {
    /// Name the container (unique among running containers)
    #[arg(long)]
    pub name: Option<String>,

    /// Container hostname (default: the first 12 hex digits of the container id)
    #[arg(long)]
    pub hostname: Option<String>,

    /// Set an environment variable (K=V), or copy K from the caller's environment
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Read environment variables from a file, one K=V per line
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container (absolute)
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Run in this root filesystem (pivot_root into it); without it the container sees the
    /// host's filesystem
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Mount the container's root filesystem read-only (needs --rootfs)
    #[arg(long)]
    pub read_only: bool,

    /// Bind mount a host path: SRC:DST[:ro|rw]
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volume: Vec<String>,

    /// Mount a tmpfs: DST[:size=..,mode=..]
    #[arg(long, value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// Run as USER[:GROUP] (names or numeric ids, looked up in the container's /etc files)
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Network: host (share the host's) or none (a new namespace with only lo)
    #[arg(long = "network", visible_alias = "net", default_value = "host")]
    pub network: String,

    /// Security options: seccomp=unconfined (no filter), seccomp=FILE (a profile in Docker's
    /// JSON format); the default is Docker's default profile
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Remove the container when it exits (foreground runs always are)
    #[arg(long)]
    pub rm: bool,

    /// Keep stdin open (it always is: stdio is inherited)
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// The command and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
