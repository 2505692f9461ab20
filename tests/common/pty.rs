//! Driving a pty from a test: its output read on a thread, and waiting for a piece of it.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::Duration;

/// Reads the pty's output on a thread; each chunk goes to the channel.
pub fn reader(master: &OwnedFd) -> mpsc::Receiver<Vec<u8>> {
    let mut file = std::fs::File::from(master.try_clone().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 || sender.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Collects output until it contains `needle`.
pub fn wait_for(output: &mpsc::Receiver<Vec<u8>>, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        match output.recv_timeout(Duration::from_secs(10)) {
            Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("never saw {needle:?} in:\n{seen}"),
        }
    }
}
