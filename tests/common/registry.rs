//! A real registry for pull tests: Debian's docker-registry on 127.0.0.1 with its storage in
//! a test's directory, filled with skopeo, and a proxy in front of it that records how each
//! connection began and can stall a download halfway. Both stop when their values drop.

use super::image::sh;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first byte of a TLS connection: a handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts docker-registry with its data under `dir`, and waits until it answers.
    pub fn start(dir: &Path) -> Registry {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is missing: install it (tests/run-all.sh does)");
        let registry = Registry { child, addr };
        let up = super::wait_until(Duration::from_secs(20), || {
            TcpStream::connect(&registry.addr).ok()
        });
        assert!(
            up.is_some(),
            "docker-registry did not start on {}",
            registry.addr
        );
        registry
    }

    /// `skopeo copy` from an OCI layout (`--all`: an index with every manifest in it).
    pub fn push(&self, layout: &Path, tag: &str, name: &str) {
        sh(&format!(
            "skopeo copy -q --all --dest-tls-verify=false oci:{}:{tag} docker://{}/{name}",
            layout.display(),
            self.addr
        ));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to a registry. It records the first byte each client sent
/// ([`TLS_HANDSHAKE`], or `b'G'` for a plain HTTP GET). While `stall` is set, it stops passing
/// the registry's answers on once `budget` bytes have gone through, and holds the connections
/// open.
pub struct Proxy {
    pub addr: String,
    first_bytes: Arc<Mutex<Vec<u8>>>,
    pub stall: Arc<AtomicBool>,
    pub budget: Arc<AtomicU64>,
    /// Set when an answer was held back.
    pub stalled: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let proxy = Proxy {
            addr,
            first_bytes: Arc::new(Mutex::new(Vec::new())),
            stall: Arc::new(AtomicBool::new(false)),
            budget: Arc::new(AtomicU64::new(u64::MAX)),
            stalled: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let first_bytes = proxy.first_bytes.clone();
        let (stall, budget, stalled, done) = (
            proxy.stall.clone(),
            proxy.budget.clone(),
            proxy.stalled.clone(),
            proxy.done.clone(),
        );
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let first_bytes = first_bytes.clone();
                std::thread::spawn(move || {
                    let mut first = [0u8; 1];
                    if c_in.read_exact(&mut first).is_ok() {
                        first_bytes.lock().unwrap().push(first[0]);
                        if s_out.write_all(&first).is_ok() {
                            let _ = std::io::copy(&mut c_in, &mut s_out);
                        }
                    }
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (stall, budget, stalled, done) =
                    (stall.clone(), budget.clone(), stalled.clone(), done.clone());
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = server.read(&mut buf) {
                        let mut sent = 0;
                        while sent < n {
                            if stall.load(Ordering::SeqCst) && budget.load(Ordering::SeqCst) == 0 {
                                stalled.store(true, Ordering::SeqCst);
                                if done.load(Ordering::SeqCst) {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                            let allowed = if stall.load(Ordering::SeqCst) {
                                (budget.load(Ordering::SeqCst) as usize).min(n - sent)
                            } else {
                                n - sent
                            };
                            if client.write_all(&buf[sent..sent + allowed]).is_err() {
                                return;
                            }
                            if stall.load(Ordering::SeqCst) {
                                budget.fetch_sub(allowed as u64, Ordering::SeqCst);
                            }
                            sent += allowed;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        proxy
    }

    /// The first bytes of the connections so far, and forgets them.
    pub fn take_first_bytes(&self) -> Vec<u8> {
        std::mem::take(&mut self.first_bytes.lock().unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        // Wake the accept loop so that its thread ends.
        let _ = TcpStream::connect(&self.addr);
    }
}
