//! `--security-opt` values, in Docker's spelling: `no-new-privileges[=true|false]`,
//! `seccomp=unconfined`, `seccomp=FILE` (the legacy `key:value` spelling too).

use crate::security::seccomp;
use anyhow::{Result, bail};

/// What the `--security-opt` flags ask for; the last of a kind wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    pub seccomp: seccomp::Choice,
    pub no_new_privileges: bool,
}

impl SecurityOptions {
    pub fn parse(values: &[String]) -> Result<SecurityOptions> {
        let mut options = SecurityOptions::default();
        for value in values {
            let split = value.split_once('=').or_else(|| value.split_once(':'));
            match split {
                Some(("seccomp", choice)) => options.seccomp = seccomp::Choice::parse(choice)?,
                None if value == "no-new-privileges" => options.no_new_privileges = true,
                Some(("no-new-privileges", "true")) => options.no_new_privileges = true,
                Some(("no-new-privileges", "false")) => options.no_new_privileges = false,
                _ => bail!(
                    "invalid --security-opt {value:?} (supported: no-new-privileges[=true|false], \
                     seccomp=unconfined, seccomp=FILE)"
                ),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(values: &[&str]) -> Result<SecurityOptions> {
        SecurityOptions::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn seccomp_choices_parse_as_in_docker() {
        assert_eq!(parse(&[]).unwrap().seccomp, seccomp::Choice::Default);
        assert_eq!(
            parse(&["seccomp=unconfined"]).unwrap().seccomp,
            seccomp::Choice::Unconfined
        );
        assert_eq!(
            parse(&["seccomp:./p.json"]).unwrap().seccomp,
            seccomp::Choice::Profile(PathBuf::from("./p.json"))
        );
        assert_eq!(
            parse(&["seccomp=unconfined", "seccomp=/p.json"])
                .unwrap()
                .seccomp,
            seccomp::Choice::Profile(PathBuf::from("/p.json"))
        );
        assert!(parse(&["no-new-privileges"]).unwrap().no_new_privileges);
        assert!(
            parse(&["no-new-privileges:true"])
                .unwrap()
                .no_new_privileges
        );
        assert!(
            !parse(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        for bad in [
            "seccomp=",
            "seccomp",
            "apparmor=x",
            "label:disable",
            "no-new-privileges=maybe",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }
}
