//! Command-line definitions. Flags follow Docker's spelling wherever Docker has one.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A single-binary container runner: `docker run` without a daemon.
#[derive(Debug, Parser)]
#[command(name = "mini-container", version)]
pub struct Cli {
    /// Keep all state, storage and configuration (certs.d) under DIR instead of
    /// /run/mini-container, /var/lib/mini-container and /etc/mini-container
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, start and wait for a container running COMMAND
    Run(Box<RunArgs>),
    /// Import a root filesystem tarball (plain, gzip or zstd; `-` for stdin) as an image
    Import(ImportArgs),
    /// Load images from a docker save or OCI archive, or an OCI image layout directory
    Load(LoadArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// List running containers (-a: all, kept ones too)
    Ps {
        /// Show every container, not only running ones
        #[arg(short, long)]
        all: bool,
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show a container's state and spec as JSON
    Inspect { container: String },
    /// Show what a detached container wrote
    Logs {
        /// Follow the log until the container exits
        #[arg(short, long)]
        follow: bool,
        container: String,
    },
    /// Stop a container: SIGTERM, then SIGKILL after the grace period
    Stop {
        /// Seconds to wait before SIGKILL
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        container: String,
    },
    /// Send a signal to a container's init
    Kill {
        /// The signal: a name (KILL, SIGTERM) or a number
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        container: String,
    },
    /// Remove containers that have ended (-f: kill running ones first)
    Rm {
        /// Kill and remove running containers
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
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

    /// Run an image from the local store: its layers under a writable layer of the
    /// container's own, its config as defaults
    #[arg(long, value_name = "IMAGE", conflicts_with = "rootfs")]
    pub image: Option<String>,

    /// Mount the container's root filesystem read-only (needs --rootfs or --image)
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

    /// Add a capability to Docker's default set (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from Docker's default set (NAME, CAP_NAME or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Every capability, no seccomp filter, no masked or read-only /proc and /sys paths,
    /// every device node of the host and no device rules
    #[arg(long)]
    pub privileged: bool,

    /// Give the container a host device: HOST[:CONTAINER][:PERMS] (PERMS: letters of rwm)
    #[arg(long = "device", value_name = "HOST[:CONTAINER][:PERMS]")]
    pub device: Vec<String>,

    /// Add a device cgroup rule: 'TYPE MAJOR:MINOR ACCESS' (e.g. 'c 10:237 rwm')
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,

    /// Security options: no-new-privileges[=true|false], seccomp=unconfined
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// User namespace: host (the default for root) or auto (root inside is a range of
    /// subordinate ids from /etc/subuid and /etc/subgid); rootless runs always remap
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,

    /// Network: host (share the host's) or none (a new namespace with only lo)
    #[arg(long = "network", visible_alias = "net", default_value = "host")]
    pub network: String,

    /// Run a tiny init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,

    /// Remove the container when it exits (foreground runs always are)
    #[arg(long)]
    pub rm: bool,

    /// Run in the background: print the container's id and return; see `ps`, `logs`
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Give the command a new pseudo-terminal, relayed to yours in raw mode
    #[arg(short = 't', long)]
    pub tty: bool,

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

    /// Bound a detached container's log: max-size=SIZE (per file, default 20m) and
    /// max-file=N (files kept, default 5)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,

    /// The command and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `import FILE|- NAME[:TAG]`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A tarball of a root filesystem, as `docker export` writes it, or `-` for stdin
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// The image's name
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: String,
}

/// `load [-i FILE|DIR] [--tag NAME[:TAG]]`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// A docker save or OCI archive (plain, gzip or zstd), or an OCI image layout directory
    /// (default: an archive on stdin)
    #[arg(short = 'i', long = "input", value_name = "FILE|DIR")]
    pub input: Option<String>,
    /// Name the loaded image NAME[:TAG] instead of what the archive says
    #[arg(long = "tag", short = 't', value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Print nothing but errors
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `pull NAME[:TAG|@DIGEST]`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: `busybox` is docker.io/library/busybox:latest
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
    /// Print nothing but the image's name at the end
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `images [-q] [--no-trunc]`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show whole image ids
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

/// `rmi [-f] IMAGE...`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove the image even if a container uses it, or all of its names when given an id
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Images, by NAME[:TAG] or id
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show images' ids, names, configs and layer directories as JSON
    Inspect {
        /// Images, by NAME[:TAG] or id
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
}

/// `exec [OPTIONS] CONTAINER COMMAND [ARG...]`.
#[derive(Debug, Default, Args)]
pub struct ExecArgs {
    /// Keep stdin open (it always is: stdio is inherited)
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the command a new pseudo-terminal, relayed to yours in raw mode
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Set an environment variable (K=V), or copy K from the caller's environment
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Working directory inside the container (absolute)
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Run as USER[:GROUP] (names or numeric ids, looked up in the container's /etc files)
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// The container: its name, id, or a unique prefix of its id
    pub container: String,

    /// The command and its arguments
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
