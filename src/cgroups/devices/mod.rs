//! Device rules (`linux.resources.devices`): which device nodes the container's processes
//! may open and make. The rules are replayed as cgroup v1 reads them ([`rules`]) and applied
//! through the devices hierarchy on v1 ([`v1`]) or a BPF program attached to the
//! container's cgroup on v2 ([`bpf`]). Every process in the cgroup is under them, `exec`'s
//! too (it joins the same cgroup directories).

pub mod bpf;
pub mod rules;
pub mod v1;

pub use rules::Filter;

use anyhow::Result;
use oci_spec::runtime::LinuxResources;

/// The filter the spec's rules come to; `None` when they restrict nothing (no rules, or
/// `--privileged`'s `a rwm`).
pub fn filter_of(resources: Option<&LinuxResources>) -> Result<Option<Filter>> {
    let rules = resources
        .and_then(|r| r.devices().as_deref())
        .unwrap_or_default();
    let filter = Filter::new(rules)?;
    Ok((!filter.allows_all()).then_some(filter))
}
