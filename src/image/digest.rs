//! sha256 digests (`sha256:<64 hex>`) and a reader that hashes what passes through it.

use anyhow::{Result, bail};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read};

/// A validated `sha256:<64 lowercase hex>` digest; the hex part is safe to use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            bail!("unsupported digest {text:?}: only sha256 is supported");
        };
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            bail!("invalid digest {text:?}");
        }
        Ok(Digest(text.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(hasher: Sha256) -> Digest {
        let mut text = String::with_capacity(71);
        text.push_str("sha256:");
        for byte in hasher.finalize() {
            text.push_str(&format!("{byte:02x}"));
        }
        Digest(text)
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The first 12 hex digits, as Docker shows image ids.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Digests read from JSON are validated, so their hex part can name files.
impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(|err| serde::de::Error::custom(format!("{err:#}")))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes and counts every byte read through it, and remembers how many zero bytes ended the
/// stream so far (a tar archive ends with two 512-byte zero blocks).
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    trailing_zeros: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            trailing_zeros: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn trailing_zeros(&self) -> u64 {
        self.trailing_zeros
    }

    /// Reads the rest of the stream (hashing it) and returns the digest and the byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.hasher.update(data);
        self.count += n as u64;
        let zeros = data.iter().rev().take_while(|&&b| b == 0).count() as u64;
        if zeros == n as u64 {
            self.trailing_zeros += zeros;
        } else {
            self.trailing_zeros = zeros;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_bytes_and_streams_agree() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::of(b"").as_str(), empty);
        let (streamed, n) = HashingReader::new(&b""[..]).finish().unwrap();
        assert_eq!((streamed.as_str(), n), (empty, 0));
        let d = Digest::of(b"abc");
        assert_eq!(HashingReader::new(&b"abc"[..]).finish().unwrap().0, d);
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.short().len(), 12);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "md5:abc",
            "sha256:../../etc",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_trailing_zeros_across_reads() {
        let mut data = vec![1u8; 10];
        data.extend([0u8; 1024]);
        let mut reader = HashingReader::new(&data[..]);
        let mut buf = [0u8; 100];
        while reader.read(&mut buf).unwrap() > 0 {}
        assert_eq!(reader.trailing_zeros(), 1024);
    }
}
