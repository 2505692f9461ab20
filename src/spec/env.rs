//! The container's environment: Docker's defaults, `--env-file` files and `-e` flags.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Adds `K=V` to the environment, replacing an earlier value of K.
pub fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default();
    match env
        .iter_mut()
        .find(|existing| existing.split('=').next() == Some(key))
    {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// `-e K=V` as given; `-e K` copies K from the caller's environment, or is dropped if unset.
pub fn parse_env_flag(
    value: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>> {
    let (name, _) = value.split_once('=').unwrap_or((value, ""));
    if name.is_empty() {
        bail!("invalid environment variable {value:?}: no variable name");
    }
    if value.contains('=') {
        Ok(Some(value.to_string()))
    } else {
        Ok(lookup_env(name).map(|v| format!("{name}={v}")))
    }
}

/// Reads a Docker env file: one `K=V` or `K` per line; blank lines and `#` comments skipped;
/// the value is taken literally, quotes included.
pub fn read_env_file(
    path: &Path,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let what = || format!("reading env file {}", path.display());
    let bytes = std::fs::read(path).with_context(what)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("it is not valid UTF-8"))
        .with_context(what)?;
    parse_env_file(&text, lookup_env).with_context(what)
}

pub fn parse_env_file(
    text: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = number + 1;
        if line.contains('\0') {
            bail!("line {line_no}: contains a NUL byte");
        }
        let name = line.split('=').next().unwrap_or_default();
        if name.is_empty() {
            bail!("line {line_no}: no variable name in {line:?}");
        }
        if name.contains(char::is_whitespace) {
            bail!("line {line_no}: variable {name:?} contains whitespace");
        }
        if line.contains('=') {
            entries.push(line.to_string());
        } else if let Some(value) = lookup_env(name) {
            entries.push(format!("{name}={value}"));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller_env(name: &str) -> Option<String> {
        (name == "FROM_CALLER").then(|| "caller value".to_string())
    }

    #[test]
    fn bad_env_files_are_refused() {
        for text in ["=value", "MY VAR=1", "OK=1\n  =x", "A\0B=1"] {
            assert!(parse_env_file(text, &caller_env).is_err(), "{text:?}");
        }
        assert_eq!(
            parse_env_file("\u{feff}A=1\r\n  B=2", &caller_env).unwrap(),
            ["A=1", "B=2"]
        );
        let err = read_env_file(Path::new("/nonexistent/env"), &caller_env).unwrap_err();
        assert_eq!(
            crate::errors::describe(&err),
            "reading env file /nonexistent/env: No such file or directory"
        );
    }
}
