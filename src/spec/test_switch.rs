//! Test-only switches that turn one protection off, so that the escape battery
//! (`tests/escape/`) can show each of its attacks succeeding without the protection, and so
//! that the battery can fail. Only debug builds read them: in a release build
//! [`disabled`] is always false and the environment variable is never looked at.
//!
//! The runner reads `MINI_CONTAINER_TEST_DISABLE` (a comma-separated list of protection
//! names, e.g. `close-fds,new-session`) once, into the spec's [`ANNOTATION`], so that the
//! container's init learns it from the spec like everything else (no side channel into the
//! child). A protection that a real flag already turns off (`--privileged`, `--cap-add`,
//! `--security-opt seccomp=unconfined`) has no switch here: the tests use the flag.

use oci_spec::runtime::Spec;

/// The variable the test harness sets (debug builds only).
pub const VARIABLE: &str = "MINI_CONTAINER_TEST_DISABLE";

/// The spec annotation that carries the list into the container's init.
pub const ANNOTATION: &str = "org.mini-container.test.disable";

/// The list the caller asked for, to be stored under [`ANNOTATION`]; `None` in release
/// builds or when the variable is unset.
pub fn requested(lookup_env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if cfg!(debug_assertions) {
        lookup_env(VARIABLE).filter(|list| !list.is_empty())
    } else {
        None
    }
}

/// True when `protection` is switched off for this container (debug builds only).
pub fn disabled(spec: &Spec, protection: &str) -> bool {
    cfg!(debug_assertions)
        && spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .is_some_and(|list| list.split(',').any(|name| name.trim() == protection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_protection_is_disabled_in_debug_builds_only() {
        let mut spec = Spec::default();
        let list = requested(&|key| (key == VARIABLE).then(|| "close-fds,devices".into()));
        assert_eq!(list.is_some(), cfg!(debug_assertions));
        spec.set_annotations(list.map(|list| [(ANNOTATION.to_string(), list)].into()));
        assert_eq!(disabled(&spec, "devices"), cfg!(debug_assertions));
        assert!(!disabled(&spec, "dev"));
        assert!(!disabled(&Spec::default(), "devices"));
    }
}
