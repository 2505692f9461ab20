//! Device rules on cgroup v1: the container's cgroup in the devices hierarchy gets the
//! filter's default (`a` written to `devices.deny` or `devices.allow`, which empties the
//! list it inherited) and then one line per exception.

use super::rules::Filter;
use crate::cgroups::Setting;

/// The writes, in order, that give a new devices cgroup `filter`.
pub(in crate::cgroups) fn settings(filter: &Filter) -> Vec<Setting> {
    let (reset, exception) = if filter.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    std::iter::once(Setting::new(reset, "a"))
        .chain(filter.exceptions.iter().map(|e| Setting::new(exception, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::rules::{Filter, rule};
    use super::*;
    use oci_spec::runtime::LinuxDeviceType::{A, C};

    #[test]
    fn an_allow_list_is_deny_all_then_allow_lines() {
        let filter = Filter::new(&[
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(true, C, Some(136), None, "rw"),
        ])
        .unwrap();
        let writes: Vec<(&str, String)> = settings(&filter)
            .into_iter()
            .map(|s| (s.file, s.value))
            .collect();
        assert_eq!(
            writes,
            [
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string()),
                ("devices.allow", "c 136:* rw".to_string()),
            ]
        );
        let deny_list = Filter::new(&[rule(false, C, Some(10), Some(232), "rwm")]).unwrap();
        let files: Vec<&str> = settings(&deny_list).iter().map(|s| s.file).collect();
        assert_eq!(files, ["devices.allow", "devices.deny"]);
    }
}
