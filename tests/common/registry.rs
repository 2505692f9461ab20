//! A real registry for pull tests: Debian's docker-registry on 127.0.0.1 with its storage in
//! a test's directory, filled with skopeo, over plain HTTP or over TLS with a CA and a server
//! certificate made by openssl; and a proxy in front of it that records how each connection
//! began and can stall a download halfway. Both stop when their values drop.

use super::image::sh;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first byte of a TLS connection: a handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// A test CA, and a server certificate it signed for the IP address 127.0.0.1, made with
/// openssl in `dir` (which goes with the test's directory).
pub struct TestCerts {
    /// `ca.crt` alone in its directory: what `--dest-cert-dir` and certs.d take.
    pub ca_dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    pub fn make(dir: &Path) -> TestCerts {
        let ca_dir = dir.join("ca");
        fs::create_dir_all(&ca_dir).unwrap();
        let certs = TestCerts {
            ca: ca_dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            ca_dir,
        };
        let d = dir.display();
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh(&format!(
            "set -e; cd '{d}'
             openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                 -subj /CN=mini-container-test-ca -keyout ca.key -out ca/ca.crt 2>/dev/null
             openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                 -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
             openssl x509 -req -in server.csr -CA ca/ca.crt -CAkey ca.key -CAcreateserial \
                 -days 2 -extfile server.ext -out server.crt 2>/dev/null"
        ));
        certs
    }
}

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its log (info level), for a registry started with TLS.
    pub log: Option<PathBuf>,
    /// The directory holding its CA (for skopeo), for a registry started with TLS.
    ca_dir: Option<PathBuf>,
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
    /// Starts docker-registry with its data under `dir`, over plain HTTP, and waits until it
    /// answers.
    pub fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, None)
    }

    /// The same over TLS only, with the server certificate of `certs`; its log is kept in
    /// `dir`.
    pub fn start_tls(dir: &Path, certs: &TestCerts) -> Registry {
        Registry::start_with(dir, Some(certs))
    }

    fn start_with(dir: &Path, certs: Option<&TestCerts>) -> Registry {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.yml");
        let (level, tls) = match certs {
            None => ("error", String::new()),
            Some(certs) => (
                "info",
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    certs.cert.display(),
                    certs.key.display()
                ),
            ),
        };
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{tls}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let log = certs.map(|_| dir.join("registry.log"));
        let stderr = match &log {
            Some(log) => Stdio::from(fs::File::create(log).unwrap()),
            None => Stdio::null(),
        };
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("docker-registry is missing: install it (tests/run-all.sh does)");
        let registry = Registry {
            child,
            addr,
            log,
            ca_dir: certs.map(|certs| certs.ca_dir.clone()),
        };
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

    /// `skopeo copy` from an OCI layout (`--all`: an index with every manifest in it); over
    /// TLS, verifying the registry's certificate with the test CA.
    pub fn push(&self, layout: &Path, tag: &str, name: &str) {
        let tls = match &self.ca_dir {
            Some(dir) => format!("--dest-cert-dir '{}'", dir.display()),
            None => "--dest-tls-verify=false".to_string(),
        };
        sh(&format!(
            "skopeo copy -q --all {tls} oci:{}:{tag} docker://{}/{name}",
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

/// What a client that speaks only plain HTTP gets from `addr` for `GET /v2/`.
pub fn plain_http_get(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
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
