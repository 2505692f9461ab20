//! The attacker's battery: from inside a default container, every known way out is tried by
//! a small static program (`attacks/*.c`, see `tests/common/attack.rs`), and must fail. Each
//! attack is also made with its protection turned off (`--privileged`, `--cap-add`,
//! `--security-opt seccomp=unconfined`, or, where no flag turns it off, the debug-only
//! `MINI_CONTAINER_TEST_DISABLE` switch of `src/spec/test_switch.rs`) and must then succeed,
//! so that the battery can fail. One module per class of attack.

#[path = "../common/mod.rs"]
mod common;

mod battery;
mod devices;
mod known;
mod lifecycle;
mod mounts;
mod seccomp;
mod session;
