//! `pull`: the OCI distribution API (v2) over blocking HTTP(S). A manifest, or an index /
//! manifest list from which this machine's platform is chosen, then the config and each layer
//! not yet in the store, every one checked against its digest. Registries answering 401 get
//! the token handshake (`WWW-Authenticate: Bearer realm=...`, anonymous). Docker's rules for
//! the scheme: a registry is spoken to over HTTPS; one on a loopback address is "insecure":
//! HTTPS is tried first and plain HTTP used when the server does not speak TLS at all, but
//! never when its certificate fails to verify (see [`super::tls`]).

use super::config::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ImageConfig, Index, Manifest, OCI_INDEX, OCI_MANIFEST,
    choose_platform, host_architecture, is_index,
};
use super::digest::{Digest, HashingReader};
use super::reference::{DOCKER_HUB, Reference};
use super::store::Store;
use super::tls;
use crate::time::human_size;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ureq::http::{Response, StatusCode};

/// Manifests and configs larger than this are not what they claim to be.
const MAX_DOCUMENT: u64 = 16 << 20;

/// What `pull` reports as it goes.
pub trait Report {
    fn line(&self, text: &str);
    /// Whether to draw progress (stderr is a terminal).
    fn progress(&self) -> bool;
}

/// A registry client for one repository.
pub struct Client {
    agent: ureq::Agent,
    /// `https`, or `http` once a loopback registry turned out not to speak TLS.
    scheme: &'static str,
    /// `host[:port]`: what the reference names (`registry-1.docker.io` for Docker Hub).
    host: String,
    /// On a loopback address: "insecure", plain HTTP may be used if it does not speak TLS.
    loopback: bool,
    /// It has answered a request: the scheme is settled.
    answered: bool,
    /// `<certs.d>/<host[:port]>`, where a private CA for this registry goes.
    certs_dir: Option<PathBuf>,
    repository: String,
    token: Option<String>,
}

impl Client {
    /// A client for `reference`'s repository, trusting the CAs in `<certs_d>/<host[:port]>/`
    /// besides Mozilla's. Nothing is sent yet.
    pub fn new(reference: &Reference, certs_d: Option<&Path>) -> Result<Client> {
        let host = if reference.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &reference.registry
        };
        let certs_dir = certs_d.map(|dir| dir.join(host));
        let extra = match &certs_dir {
            Some(dir) => tls::extra_cas(dir).context("the registry's certs.d")?,
            None => Vec::new(),
        };
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_connect(Some(Duration::from_secs(30)))
                .tls_config(tls::config(extra))
                .user_agent(concat!("mini-container/", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        Ok(Client {
            agent,
            scheme: "https",
            host: host.to_string(),
            loopback: reference.registry_is_loopback(),
            answered: false,
            certs_dir,
            repository: reference.repository.clone(),
            token: None,
        })
    }

    /// GET `/v2/<repository>/<path>`, with the token handshake on a 401.
    fn get(&mut self, path: &str, accept: Option<&str>) -> Result<Response<ureq::Body>> {
        let mut asked_for_token = false;
        loop {
            let url = format!(
                "{}://{}/v2/{}/{path}",
                self.scheme, self.host, self.repository
            );
            let mut request = self.agent.get(&url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(token) = &self.token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let response = match request.call() {
                Ok(response) => response,
                Err(err) => {
                    self.fall_back(err).with_context(|| format!("GET {url}"))?;
                    continue;
                }
            };
            // No going back to plain HTTP from here on.
            self.answered = true;
            if response.status() == StatusCode::UNAUTHORIZED {
                if asked_for_token {
                    bail!("GET {url}: still unauthorized with the registry's token");
                }
                asked_for_token = true;
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.token = Some(self.fetch_token(&challenge)?);
                continue;
            }
            if !response.status().is_success() {
                let status = response.status();
                let detail = error_detail(response);
                bail!("GET {url}: {status}{detail}");
            }
            return Ok(response);
        }
    }

    /// After a request failed: Ok when a loopback registry that does not speak TLS is to be
    /// asked again over plain HTTP (once), else the error, said plainly.
    fn fall_back(&mut self, err: ureq::Error) -> Result<()> {
        match tls::failure(&err) {
            Some(tls::Failure::Untrusted(why)) => Err(self.untrusted(&why)),
            Some(tls::Failure::NotTls) if !self.answered && self.scheme == "https" => {
                if !self.loopback {
                    return Err(plain_io_error(err).context(
                        "the TLS handshake failed (plain HTTP is tried only for a registry on a loopback address)",
                    ));
                }
                log::info!(
                    "{} does not speak TLS ({}): using plain HTTP, as for any registry on a loopback address",
                    self.host,
                    plain_io_error(err)
                );
                self.scheme = "http";
                Ok(())
            }
            _ => Err(plain_io_error(err)),
        }
    }

    /// A certificate that did not verify, with where a private CA would go.
    fn untrusted(&self, why: &str) -> anyhow::Error {
        match &self.certs_dir {
            Some(dir) => anyhow::anyhow!(
                "the TLS certificate is not trusted: {why} (a private CA for {} goes in {}/ca.crt)",
                self.host,
                dir.display()
            ),
            None => anyhow::anyhow!("the TLS certificate is not trusted: {why}"),
        }
    }

    /// The token handshake: an anonymous token for pulling this repository.
    fn fetch_token(&self, challenge: &str) -> Result<String> {
        let params = parse_challenge(challenge).with_context(|| {
            format!("the registry wants authentication it does not offer as a token: {challenge:?}")
        })?;
        let realm = params
            .get("realm")
            .context("the registry's token challenge has no realm")?;
        let mut request = self.agent.get(realm);
        if let Some(service) = params.get("service") {
            request = request.query("service", service);
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        request = request.query("scope", &scope);
        let response = request
            .call()
            .map_err(|err| match tls::failure(&err) {
                Some(tls::Failure::Untrusted(why)) => self.untrusted(&why),
                _ => plain_io_error(err),
            })
            .with_context(|| format!("getting a token from {realm}"))?;
        if !response.status().is_success() {
            bail!("getting a token from {realm}: {}", response.status());
        }
        let body = read_limited(response)?;
        let json: serde_json::Value = serde_json::from_slice(&body).context("parsing the token")?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .with_context(|| format!("{realm} answered no token"))
    }

    /// A manifest or index by tag or digest: its bytes, media type and digest.
    fn manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let accept = [
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            DOCKER_MANIFEST,
        ]
        .join(", ");
        let response = self.get(&format!("manifests/{reference}"), Some(&accept))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let content_type = header("content-type").unwrap_or_default();
        let announced = header("docker-content-digest");
        let bytes = read_limited(response)?;
        let digest = Digest::of(&bytes);
        let expected = match reference.strip_prefix("sha256:") {
            Some(_) => Some(reference.to_string()),
            None => announced,
        };
        if let Some(expected) = expected
            && expected != digest.as_str()
        {
            bail!("the manifest {reference} does not match its digest {expected}");
        }
        // The mediaType inside the document wins over a generic Content-Type.
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
            .unwrap_or(content_type);
        Ok((bytes, media_type, digest))
    }
}

/// Pulls `reference` into the store, trusting the CAs in `certs_d` for its registry;
/// returns the image id.
pub fn pull(
    store: &Store,
    reference: &Reference,
    certs_d: Option<&Path>,
    report: &dyn Report,
) -> Result<Digest> {
    let mut client = Client::new(reference, certs_d)?;
    let wanted = match (&reference.digest, &reference.tag) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.clone(),
        (None, None) => "latest".to_string(),
    };
    let (mut bytes, mut media_type, mut digest) = client.manifest(&wanted)?;
    report.line(&format!("{wanted}: Pulling from {}", reference.repository));
    if is_index(&media_type) {
        let index: Index = serde_json::from_slice(&bytes).context("parsing the image index")?;
        let chosen = choose_platform(&index).with_context(|| {
            format!(
                "no manifest for linux/{} in the image index",
                host_architecture()
            )
        })?;
        (bytes, media_type, digest) = client.manifest(chosen.digest.as_str())?;
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        bail!("unsupported manifest type {media_type:?}");
    }
    let manifest: Manifest = serde_json::from_slice(&bytes).context("parsing the manifest")?;
    let id = manifest.config.digest.clone();
    let config_bytes = match store.read_blob(&id) {
        Ok(bytes) => bytes,
        Err(_) => {
            let response = client.get(&format!("blobs/{id}"), None)?;
            let bytes = read_limited(response)?;
            store
                .write_blob(&bytes, Some(&id))
                .context("the image config")?;
            bytes
        }
    };
    let config = ImageConfig::parse(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!("the manifest and the config of {id} disagree on the layers");
    }
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let short = layer.digest.short();
        if store.layer(diff_id).is_some() {
            report.line(&format!("{short}: Already exists"));
            continue;
        }
        let response = client.get(&format!("blobs/{}", layer.digest), None)?;
        let body = response.into_body().into_reader();
        let progress = Progress::new(body, short, layer.size, report.progress());
        let mut blob = HashingReader::new(progress);
        store
            .add_layer(&mut blob, Some(diff_id))
            .with_context(|| format!("layer {}", layer.digest))?;
        let (got, _) = blob
            .finish()
            .with_context(|| format!("layer {}", layer.digest))?;
        if got != layer.digest {
            bail!("layer {}: the blob's digest is {got}", layer.digest);
        }
        report.line(&format!("{short}: Pull complete"));
    }
    report.line(&format!("Digest: {digest}"));
    Ok(id)
}

/// The parameters of `Bearer realm="...",service="...",scope="..."`; None for other schemes.
pub fn parse_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(params)
}

/// ureq's I/O errors as plain io::Errors, so that they are shown by their errno's text.
fn plain_io_error(err: ureq::Error) -> anyhow::Error {
    match err {
        ureq::Error::Io(io) => io.into(),
        other => other.into(),
    }
}

fn read_limited(response: Response<ureq::Body>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_DOCUMENT)
        .read_to_end(&mut bytes)
        .context("reading the registry's answer")?;
    Ok(bytes)
}

/// The registry's error message, if its body has one (`{"errors":[{"message":...}]}`).
fn error_detail(response: Response<ureq::Body>) -> String {
    let body = read_limited(response).unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["errors"][0]["message"]
                .as_str()
                .map(|m| format!(" ({m})"))
        })
        .unwrap_or_default()
}

/// Counts a download and, on a terminal, redraws `<layer>: Downloading 1.2MB/4.3MB`.
struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    draw: bool,
    last: Instant,
}

impl<R: Read> Progress<R> {
    fn new(inner: R, label: &str, total: u64, draw: bool) -> Self {
        Progress {
            inner,
            label: label.to_string(),
            total,
            done: 0,
            draw,
            last: Instant::now(),
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.draw && (n == 0 || self.last.elapsed() > Duration::from_millis(100)) {
            self.last = Instant::now();
            let width = 30usize;
            let filled = (self.done.min(self.total) * width as u64)
                .checked_div(self.total)
                .unwrap_or(0) as usize;
            let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(width - filled));
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{}: Downloading [{bar}] {}/{}\x1b[K",
                self.label,
                human_size(self.done),
                human_size(self.total)
            );
            if n == 0 {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = err.flush();
        }
        Ok(n)
    }
}

/// Reports on stderr, with progress when it is a terminal (quiet: nothing).
pub struct Stderr {
    pub quiet: bool,
}

impl Report for Stderr {
    fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let params = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");
        let params =
            parse_challenge(r#"bearer realm="http://x/t?a=b,c", error=insufficient_scope"#)
                .unwrap();
        assert_eq!(params["realm"], "http://x/t?a=b,c");
        assert_eq!(params["error"], "insufficient_scope");
        assert!(parse_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_challenge("").is_none());
    }

    /// A plain HTTP registry that wants a token: 401 with a challenge, a token endpoint, then
    /// the manifest only with `Authorization: Bearer <token>`. Serves `requests` requests, one
    /// per connection; a TLS handshake gets `400 Bad Request`, as Go's HTTP server answers it,
    /// and is listed as "TLS".
    fn token_registry(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let realm = format!("http://{addr}/token");
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while seen.iter().filter(|s| *s != "TLS").count() < requests {
                let (mut stream, _) = listener.accept().unwrap();
                let mut first = [0u8; 1];
                stream.peek(&mut first).unwrap();
                if first[0] == 0x16 {
                    // A TLS handshake record.
                    stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    seen.push("TLS".to_string());
                    continue;
                }
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut authorized = false;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    authorized |= line
                        .to_ascii_lowercase()
                        .starts_with("authorization: bearer t0ken");
                }
                let path = request_line.split(' ').nth(1).unwrap().to_string();
                let (status, headers, body) = if path.starts_with("/token") {
                    ("200 OK", String::new(), r#"{"token":"t0ken"}"#.to_string())
                } else if !authorized {
                    let challenge = format!(
                        r#"Bearer realm="{realm}",service="test-registry",scope="repository:lib/box:pull""#
                    );
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: {challenge}\r\n"),
                        "{}".to_string(),
                    )
                } else {
                    (
                        "200 OK",
                        format!("Content-Type: {OCI_MANIFEST}\r\n"),
                        r#"{"schemaVersion":2}"#.to_string(),
                    )
                };
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                seen.push(path);
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn does_the_token_handshake_over_plain_http_on_loopback() {
        let (addr, server) = token_registry(3);
        let reference = Reference::parse(&format!("{addr}/lib/box:v1")).unwrap();
        let mut client = Client::new(&reference, None).unwrap();
        let (bytes, media_type, digest) = client.manifest("v1").unwrap();
        assert_eq!(bytes, br#"{"schemaVersion":2}"#);
        assert_eq!(media_type, OCI_MANIFEST);
        assert_eq!(digest, Digest::of(&bytes));
        let seen = server.join().unwrap();
        // HTTPS first, once; then plain HTTP for everything.
        assert_eq!(seen[0], "TLS");
        assert_eq!(seen[1], "/v2/lib/box/manifests/v1");
        assert_eq!(
            seen[2],
            "/token?service=test-registry&scope=repository%3Alib%2Fbox%3Apull"
        );
        assert_eq!(seen[3], "/v2/lib/box/manifests/v1");
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn never_falls_back_to_plain_http_off_loopback() {
        // A plain HTTP server, answering one TLS handshake as Go's does.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut hello = [0u8; 5];
            std::io::Read::read_exact(&mut stream, &mut hello).unwrap();
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .unwrap();
            hello[0]
        });
        let reference = Reference::parse(&format!("{addr}/lib/box:v1")).unwrap();
        let mut client = Client::new(&reference, None).unwrap();
        // As if it were not on this machine.
        client.loopback = false;
        let err = client.manifest("v1").unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!(
                "GET https://{addr}/v2/lib/box/manifests/v1: the TLS handshake failed (plain HTTP is tried only for a registry on a loopback address): "
            )),
            "{err:#}"
        );
        assert_eq!(client.scheme, "https");
        assert_eq!(server.join().unwrap(), 0x16, "a TLS handshake record");
    }

    #[test]
    fn other_registries_are_spoken_to_over_https_only() {
        // Nothing is sent: the client is only built.
        let client = Client::new(&Reference::parse("busybox").unwrap(), None).unwrap();
        assert_eq!(
            (client.scheme, client.host.as_str(), client.loopback),
            ("https", "registry-1.docker.io", false)
        );
        let certs_d = Path::new("/nonexistent/certs.d");
        let client = Client::new(
            &Reference::parse("registry.example:5000/a/b").unwrap(),
            Some(certs_d),
        )
        .unwrap();
        assert_eq!((client.scheme, client.loopback), ("https", false));
        assert_eq!(
            client.certs_dir.as_deref(),
            Some(Path::new("/nonexistent/certs.d/registry.example:5000"))
        );
        let loopback = Client::new(&Reference::parse("localhost:5000/a").unwrap(), None).unwrap();
        assert_eq!((loopback.scheme, loopback.loopback), ("https", true));
    }
}
