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

    /// Network: host (share the host's) or none (a new namespace with only lo)
    #[arg(long = "network", visible_alias = "net", default_value = "host")]
    pub network: String,

    /// Remove the container when it exits (foreground runs always are)
    #[arg(long)]
    pub rm: bool,

    /// Keep stdin open (it always is: stdio is inherited)
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Memory limit: a number with an optional unit b, k, m or g (e.g. 512m, 1.5g; at least 6m)
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,

    /// Memory plus swap limit; -1 for unlimited swap (default: twice --memory)
    #[arg(
        long = "memory-swap",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub memory_swap: Option<String>,

    /// Number of CPUs the container may use, as a decimal (e.g. 0.5)
    #[arg(long, value_name = "DECIMAL", allow_negative_numbers = true)]
    pub cpus: Option<String>,

    /// CPU shares: the container's weight relative to other cgroups (2 to 262144)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "SHARES",
        allow_negative_numbers = true
    )]
    pub cpu_shares: Option<String>,

    /// CPUs the container may run on (e.g. 0-3 or 0,2)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,

    /// Maximum number of processes and threads (0 or -1: unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,

    /// Create the container's cgroup below this one instead of below the runner's own
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,

    /// Set a resource limit of the container's process (e.g. nofile=1024:2048)
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,

    /// Print what the container used (time, CPU, peak memory and pids) when it ends
    #[arg(long)]
    pub stats: bool,

    /// The command and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
