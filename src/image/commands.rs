//! The image commands as the CLI calls them: each parses its arguments, works on the store
//! and prints what Docker prints.

use super::archive;
use super::config::{ImageConfig, RootFs, host_architecture};
use super::reference::Reference;
use super::registry::{self, Report};
use super::store::Store;
use super::{containers_using, find};
use crate::cli::{ImagesArgs, ImportArgs, LoadArgs, PullArgs, RmiArgs};
use crate::container::state::Paths;
use crate::time;
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{Read, Write};

/// Prints a line on stdout; a reader that went away (`images | head -1`) is not an error.
fn emit(line: &str) -> Result<()> {
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("writing to stdout")
        }
        _ => Ok(()),
    }
}

/// `import FILE|- NAME[:TAG]`: a root filesystem tarball (plain, gzip or zstd) as a one-layer
/// image with an empty config.
pub fn import(paths: &Paths, args: &ImportArgs) -> Result<i32> {
    let reference = Reference::parse(&args.reference).context("import")?;
    if reference.digest.is_some() {
        bail!(
            "import: {}: a digest cannot be given to an imported image",
            args.reference
        );
    }
    let store = Store::open(&paths.storage)?;
    let source = args.file.as_str();
    let input: Box<dyn Read> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(source).with_context(|| format!("import: opening {source}"))?)
    };
    let layer = store
        .add_layer(input, None)
        .with_context(|| format!("import: {}", if source == "-" { "stdin" } else { source }))?;
    let created = time::now_rfc3339();
    let config = ImageConfig {
        created: Some(created.clone()),
        architecture: host_architecture().to_string(),
        os: "linux".to_string(),
        config: Default::default(),
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: vec![layer.diff_id],
        },
        history: vec![serde_json::json!({
            "created": created,
            "created_by": "mini-container import",
            "comment": format!("Imported from {source}"),
        })],
    };
    let json = serde_json::to_vec(&config).context("import: serializing the image config")?;
    let id = store.write_blob(&json, None).context("import")?;
    store
        .lock()?
        .tag(&[reference.to_string()], &id)
        .context("import")?;
    emit(id.as_str())?;
    Ok(0)
}

/// `images`: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE, newest first.
pub fn images(paths: &Paths, args: &ImagesArgs) -> Result<i32> {
    let store = Store::open(&paths.storage)?;
    let now = time::now();
    let mut rows = Vec::new();
    for (name, id) in store.index()? {
        let config = store
            .image_config(&id)
            .with_context(|| format!("images: {name}"))?;
        let created = config.created.as_deref().and_then(time::parse_rfc3339);
        let size: u64 = config
            .rootfs
            .diff_ids
            .iter()
            .filter_map(|diff_id| store.layer(diff_id))
            .map(|layer| layer.size)
            .sum();
        let reference =
            Reference::parse(&name).with_context(|| format!("images: the index names {name:?}"))?;
        let id_text = if args.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        };
        rows.push((
            created.unwrap_or(0),
            [
                reference.familiar_name(),
                reference
                    .tag
                    .clone()
                    .unwrap_or_else(|| "<none>".to_string()),
                id_text,
                created.map_or("N/A".to_string(), |t| {
                    format!("{} ago", time::human_duration(now - t))
                }),
                time::human_size(size),
            ],
        ));
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for (_, row) in &rows {
            if seen.insert(row[2].clone()) {
                emit(&row[2])?;
            }
        }
        return Ok(0);
    }
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from);
    let mut widths = header.each_ref().map(String::len);
    for (_, row) in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter().map(|(_, row)| row)) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        emit(&line)?;
    }
    Ok(0)
}

/// `rmi [-f] IMAGE...`: untags each image and removes what no remaining image uses.
pub fn rmi(paths: &Paths, args: &RmiArgs) -> Result<i32> {
    let store = Store::open(&paths.storage)?;
    let lock = store.lock()?;
    for image in &args.images {
        let mut index = store.index()?;
        let found = find(&index, image).context("rmi")?;
        if found.by_id && found.names.len() > 1 && !args.force {
            bail!(
                "rmi: conflict: unable to delete {} (must be forced): the image is referenced in multiple repositories",
                found.id.short()
            );
        }
        let last_name = found.names.len() == index.values().filter(|id| **id == found.id).count();
        if last_name && !args.force {
            let users = containers_using(paths, &found.id);
            if !users.is_empty() {
                bail!(
                    "rmi: conflict: unable to remove {image} (must be forced): the image is used by container {}",
                    users.join(", ")
                );
            }
        }
        for name in &found.names {
            index.remove(name);
            let reference = Reference::parse(name)?;
            let tag = reference.tag.clone().unwrap_or_default();
            emit(&format!("Untagged: {}:{tag}", reference.familiar_name()))?;
        }
        lock.write_index(&index).context("rmi")?;
        if last_name {
            lock.collect_garbage(std::slice::from_ref(&found.id))
                .context("rmi")?;
            emit(&format!("Deleted: {}", found.id))?;
        }
    }
    Ok(0)
}

/// `image inspect IMAGE...`: a JSON array with each image's id, names, config and layers.
pub fn inspect(paths: &Paths, images: &[String]) -> Result<i32> {
    let index = Store::open(&paths.storage)?.index()?;
    let mut out = Vec::new();
    for image in images {
        let resolved = super::resolve(paths, image).context("image inspect")?;
        let repo_tags: Vec<String> = index
            .iter()
            .filter(|(_, id)| **id == resolved.id)
            .filter_map(|(name, _)| Reference::parse(name).ok())
            .map(|r| format!("{}:{}", r.familiar_name(), r.tag.unwrap_or_default()))
            .collect();
        let config = &resolved.config;
        out.push(serde_json::json!({
            "Id": resolved.id,
            "RepoTags": repo_tags,
            "Created": config.created,
            "Architecture": config.architecture,
            "Os": config.os,
            "Config": config.config,
            "RootFS": {"Type": config.rootfs.kind, "Layers": config.rootfs.diff_ids},
            "LowerDirs": resolved.lower_dirs,
        }));
    }
    let json = serde_json::to_string_pretty(&out).context("serializing")?;
    emit(&json)?;
    Ok(0)
}

/// `load [-i FILE|DIR] [--tag NAME[:TAG]]`: prints `Loaded image: NAME:TAG` for each name.
pub fn load(paths: &Paths, args: &LoadArgs) -> Result<i32> {
    let tag = match &args.tag {
        Some(tag) => Some(Reference::parse(tag).context("load: --tag")?.to_string()),
        None => None,
    };
    let store = Store::open(&paths.storage)?;
    let input = args.input.as_deref().unwrap_or("-");
    let shown = if input == "-" { "stdin" } else { input };
    let mut loaded = archive::load(&store, input).with_context(|| format!("load: {shown}"))?;
    if loaded.is_empty() {
        bail!("load: {shown}: no image in it");
    }
    if let Some(tag) = tag {
        if loaded.len() > 1 {
            bail!(
                "load: --tag: {shown} holds {} images, --tag names one",
                loaded.len()
            );
        }
        loaded[0].names = vec![tag];
    }
    let lock = store.lock()?;
    for image in &loaded {
        if image.names.is_empty() {
            bail!(
                "load: {shown}: the image {} has no name: give it one with --tag NAME[:TAG]",
                image.id.short()
            );
        }
        lock.tag(&image.names, &image.id)
            .with_context(|| format!("load: {shown}"))?;
        for name in &image.names {
            if !args.quiet {
                let reference = Reference::parse(name)?;
                let tag = reference.tag.clone().unwrap_or_default();
                emit(&format!(
                    "Loaded image: {}:{tag}",
                    reference.familiar_name()
                ))?;
            }
        }
    }
    Ok(0)
}

/// `pull NAME[:TAG|@DIGEST]`: progress on stderr, the image's full name on stdout.
pub fn pull(paths: &Paths, args: &PullArgs) -> Result<i32> {
    let reference = Reference::parse(&args.reference).context("pull")?;
    let store = Store::open(&paths.storage)?;
    let report = registry::Stderr { quiet: args.quiet };
    let id = registry::pull(&store, &reference, paths.certs_d().as_deref(), &report)
        .with_context(|| format!("pull {}", args.reference))?;
    store
        .lock()?
        .tag(&[reference.to_string()], &id)
        .with_context(|| format!("pull {}", args.reference))?;
    report.line(&format!("Status: Downloaded image for {reference}"));
    emit(&reference.to_string())?;
    Ok(0)
}
