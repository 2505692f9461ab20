//! Compression detected by magic bytes: plain, gzip or zstd streams all read as plain bytes.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read};

/// Wraps `input` in the decoder its first bytes call for.
pub fn decompress<'a, R: Read + 'a>(input: R) -> Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let head = input.fill_buf().context("reading the archive")?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::Decoder::with_buffer(input).context("starting the zstd decoder")?)
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => bail!("xz-compressed archives are not supported"),
        [b'B', b'Z', b'h', ..] => bail!("bzip2-compressed archives are not supported"),
        _ => Box::new(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress(data).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn detects_plain_gzip_and_zstd() {
        let text = b"hello, layers".repeat(100);
        assert_eq!(read_all(&text), text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        assert_eq!(read_all(&gz.finish().unwrap()), text);
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(read_all(&zst), text);
        assert_eq!(read_all(b""), b"");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 10000]).unwrap();
        let data = gz.finish().unwrap();
        let mut out = Vec::new();
        assert!(
            decompress(&data[..data.len() / 2])
                .unwrap()
                .read_to_end(&mut out)
                .is_err()
        );
    }
}
