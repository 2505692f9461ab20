//! TLS for `pull`: rustls, trusting Mozilla's roots (compiled in from webpki-root-certs, so
//! the host's certificate store plays no part) plus, as Docker does with
//! /etc/docker/certs.d, every `*.crt` in `<config>/certs.d/<host[:port]>/`. And what a failed
//! request says about TLS: a server that does not speak it at all (a loopback registry is then
//! asked again over plain HTTP) or a certificate that is not trusted (never a reason to drop
//! TLS).

use anyhow::{Context, Result, bail};
use std::io::ErrorKind;
use std::path::Path;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The extra CAs in `dir` (`<certs.d>/<host[:port]>`): every certificate of every `*.crt`
/// file, in name order. No such directory: none.
pub fn extra_cas(dir: &Path) -> Result<Vec<Certificate<'static>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "crt") {
            files.push(path);
        }
    }
    files.sort();
    let mut cas = Vec::new();
    for file in files {
        let pem = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let before = cas.len();
        for item in ureq::tls::parse_pem(&pem) {
            let item = item.map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?;
            if let PemItem::Certificate(cert) = item {
                // rustls would skip a certificate it cannot use: say so instead.
                rustls::RootCertStore::empty()
                    .add(rustls::pki_types::CertificateDer::from(cert.der()))
                    .with_context(|| format!("{}: not a usable CA certificate", file.display()))?;
                cas.push(cert);
            }
        }
        if cas.len() == before {
            bail!("{}: no PEM certificate in it", file.display());
        }
        log::debug!("trusting the CAs in {}", file.display());
    }
    Ok(cas)
}

/// The TLS settings of a registry's agent: Mozilla's roots and `extra`.
pub fn config(extra: Vec<Certificate<'static>>) -> TlsConfig {
    let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()));
    TlsConfig::builder()
        .root_certs(RootCerts::from(mozilla.chain(extra)))
        .build()
}

/// What a failed request says about TLS.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server answered the handshake with something that is not TLS (a plain HTTP
    /// server's `400 Bad Request`), or hung up on it.
    NotTls,
    /// The server speaks TLS but its certificate does not verify: why.
    Untrusted(String),
}

/// Whether `err`, from a request over HTTPS, was the TLS handshake failing, and how.
pub fn failure(err: &ureq::Error) -> Option<Failure> {
    let rustls = match err {
        ureq::Error::Rustls(err) => Some(err),
        ureq::Error::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match rustls {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            Some(Failure::Untrusted(rustls?.to_string()))
        }
        Some(rustls::Error::InvalidMessage(_)) => Some(Failure::NotTls),
        Some(_) => None,
        None => match err {
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                Some(Failure::NotTls)
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA made with `openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:P-256 -subj /CN=test-ca -days 36500 -nodes`.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBfDCCASGgAwIBAgIUaJvXNtfiplduLqynqwkGnjPb2L8wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjExMjkwNTM1MDdaGA8yMTI2MTEwNTA1
MzUwN1owEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABDhM6l1xdkNLQPB3YNISSHm3j0qu/VTA/zPqnstdnV8y+ugB0yNgoiuNlwL3
MtMKLijGLQNmU1YQ6mcbaw+eEJKjUzBRMB0GA1UdDgQWBBRPxC1HoYCpBRFaE63A
AzK1MBka8TAfBgNVHSMEGDAWgBRPxC1HoYCpBRFaE63AAzK1MBka8TAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQC5NfnUInMOf6n8RwBEvXNtT+dv
ITcnPtI5OaD3Tc4NpgIhANgmky5Ai7MiQUIqQqqTfvQYcyiRDVewDw+jfIxrhmv8
-----END CERTIFICATE-----
";

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mc-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_the_crt_files_of_a_certs_d_directory() {
        let dir = temp_dir("certs");
        assert!(extra_cas(&dir.join("nosuch")).unwrap().is_empty());
        std::fs::write(dir.join("ca.crt"), CA).unwrap();
        std::fs::write(dir.join("client.key"), "not a certificate").unwrap();
        let cas = extra_cas(&dir).unwrap();
        assert_eq!(cas.len(), 1);
        // Mozilla's roots come first, then the extra ones.
        let RootCerts::Specific(roots) = config(cas).root_certs().clone() else {
            panic!("not a specific list of roots");
        };
        assert_eq!(
            roots.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
        );

        std::fs::write(dir.join("more.crt"), "hello\n").unwrap();
        let err = extra_cas(&dir).unwrap_err();
        assert!(
            format!("{err:#}").ends_with("more.crt: no PEM certificate in it"),
            "{err:#}"
        );
        let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.join("more.crt"), garbage).unwrap();
        let err = extra_cas(&dir).unwrap_err();
        assert!(
            format!("{err:#}").contains("more.crt: not a usable CA certificate"),
            "{err:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tells_a_plain_server_from_an_untrusted_certificate() {
        let io = |err: std::io::Error| ureq::Error::Io(err);
        let invalid = |e: rustls::Error| io(std::io::Error::new(ErrorKind::InvalidData, e));
        assert_eq!(
            failure(&invalid(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            ))),
            Some(Failure::NotTls)
        );
        assert_eq!(
            failure(&io(ErrorKind::UnexpectedEof.into())),
            Some(Failure::NotTls)
        );
        let untrusted = failure(&invalid(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(
            matches!(&untrusted, Some(Failure::Untrusted(why)) if why.contains("UnknownIssuer")),
            "{untrusted:?}"
        );
        assert_eq!(failure(&io(ErrorKind::ConnectionRefused.into())), None);
        assert_eq!(failure(&ureq::Error::HostNotFound), None);
    }
}
