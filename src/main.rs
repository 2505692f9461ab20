//! mini-container: a single-binary container runner, `docker run` without a daemon.
//!
//! `main` only dispatches: it parses the command line, runs the subcommand and turns its result
//! into an exit status, printing failures as one line, `mini-container: <what>: <why>`.

mod cgroupfs;
mod cgroups;
mod cli;
mod container;
mod errors;
mod exec;
mod image;
mod init;
mod launch;
mod mount_api;
mod mounts;
mod net;
mod pidfd;
mod reaper;
mod relay;
mod rlimits;
mod rootfs;
mod security;
mod session;
mod spawn;
mod spec;
mod sync;
mod time;
mod tty;
mod user;

use clap::Parser;
use clap::error::ErrorKind;
use std::ffi::OsString;

fn main() {
    let status = run_main();
    std::process::exit(status);
}

fn run_main() -> i32 {
    init_logging();
    let args: Vec<OsString> = std::env::args_os().collect();

    // The re-exec'd init skips argument parsing: it is on every container's start path.
    if args.len() == 2 && args[1] == "child" {
        return init::main();
    }

    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => return report_usage_error(err),
    };
    let result =
        container::state::Paths::new(cli.root.as_deref()).and_then(|paths| match cli.command {
            cli::Command::Run(run_args) => container::run(&paths, *run_args),
            cli::Command::Import(args) => image::commands::import(&paths, &args),
            cli::Command::Load(args) => image::commands::load(&paths, &args),
            cli::Command::Pull(args) => image::commands::pull(&paths, &args),
            cli::Command::Images(args) => image::commands::images(&paths, &args),
            cli::Command::Rmi(args) => image::commands::rmi(&paths, &args),
            cli::Command::Image(cli::ImageCommand::Inspect { images }) => {
                image::commands::inspect(&paths, &images)
            }
            cli::Command::Exec(args) => container::join::exec(
                &paths,
                &args.container,
                &spec::exec::ExecRequest {
                    command: args.command,
                    env: args.env,
                    workdir: args.workdir,
                    user: args.user,
                    tty: args.tty,
                },
            ),
            cli::Command::Ps { all, quiet } => container::manage::ps(&paths, all, quiet),
            cli::Command::Inspect { container } => container::manage::inspect(&paths, &container),
            cli::Command::Logs { follow, container } => {
                container::manage::logs(&paths, &container, follow)
            }
            cli::Command::Stop { time, container } => {
                container::manage::stop(&paths, &container, time)
            }
            cli::Command::Kill { signal, container } => {
                container::manage::kill_container(&paths, &container, &signal)
            }
            cli::Command::Rm { force, containers } => {
                container::manage::rm(&paths, &containers, force)
            }
            cli::Command::Child => Ok(init::main()),
        });
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("mini-container: {}", errors::describe(&err));
            errors::exit_status(&err)
        }
    }
}

/// `RUST_LOG=debug` shows each setup step; without it only errors are printed.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .format_timestamp_micros()
        .init();
}

/// Help and version go to stdout with status 0; any other parse error is one line and 125.
fn report_usage_error(err: clap::Error) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            0
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let reason = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("mini-container: invalid arguments: {reason} (see 'mini-container --help')");
            errors::EXIT_SETUP_FAILED
        }
    }
}
