//! The escape battery's attack programs: small static C programs under
//! `tests/escape/attacks/`, one file per class of attack (crun's tests/init.c is the model),
//! compiled once per test process with the system's C compiler and installed in a busybox
//! root filesystem as `/bin/<name>`. Each program makes one attempt and prints one line: `ok`
//! when the attempt succeeded, else the errno's name (`EPERM`), so that a test asserts what
//! the kernel answered inside a real container.

use super::TestRoot;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the sources are.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escape/attacks")
}

/// Compiles every `tests/escape/attacks/*.c` into a static binary (once per process) and
/// returns their paths.
pub fn attack_programs() -> &'static [PathBuf] {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("attacks-{}", std::process::id()));
        fs::create_dir_all(&out).unwrap();
        let mut built = Vec::new();
        let mut entries: Vec<PathBuf> = fs::read_dir(sources())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "c"))
            .collect();
        entries.sort();
        for source in entries {
            let name = source.file_stem().unwrap().to_str().unwrap().to_string();
            let binary = out.join(&name);
            let output = Command::new("cc")
                .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
                .arg(&binary)
                .arg(&source)
                .arg(sources().join("lib/report.c"))
                .arg(format!("-I{}", sources().join("lib").display()))
                .output()
                .expect("running cc (the escape battery needs a C compiler: gcc)");
            assert!(
                output.status.success(),
                "compiling {}: {}",
                source.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            built.push(binary);
        }
        built
    })
}

impl TestRoot {
    /// A busybox root filesystem with every attack program in `/bin`.
    pub fn attack_rootfs(&self) -> PathBuf {
        let rootfs = self.busybox_rootfs();
        for program in attack_programs() {
            let target = rootfs.join("bin").join(program.file_name().unwrap());
            let _ = fs::remove_file(&target);
            fs::copy(program, &target).unwrap();
        }
        rootfs
    }
}
