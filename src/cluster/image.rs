//! Local etcd images, built offline. There is no registry on a typical CI box, so the image
//! is assembled `FROM scratch` out of the etcd binaries plus exactly the shared libraries
//! they link, taken from Debian packages, a directory the user has, or an existing image.

use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;

use crate::docker::{self, OneShot, OneShotOutput};
use crate::error::{Error, Result};

pub const REPO: &str = "etcd-drill/etcd";
const VERSION_LABEL: &str = "etcd-drill.etcd-version";
/// Inside every image: the harness starts members and tools by these paths.
pub const BIN_DIR: &str = "/usr/local/bin";
pub use crate::model::etcd::{DEFAULT_VERSION, Line};

/// A built, locally present etcd image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EtcdImage {
    pub tag: String,
    /// Full etcd version, e.g. "3.5.16".
    pub version: String,
}

impl EtcdImage {
    pub fn line(&self) -> Line {
        Line::parse(&self.version).expect("images are only created for supported lines")
    }
    /// 3.5 ships `etcdutl` for offline snapshot work; 3.4 does it with `etcdctl`.
    pub fn has_etcdutl(&self) -> bool {
        self.line() == Line::V3_5
    }
}

pub fn tag_for(version: &str) -> String {
    format!("{REPO}:{}", version.trim_start_matches('v'))
}

/// Finds the local image for `version` ("3.5", "3.5.16", …) or says how to build it.
pub async fn resolve(docker: &Docker, version: &str) -> Result<EtcdImage> {
    let line = Line::parse(version)?;
    let tag = tag_for(version);
    match docker.inspect_image(&tag).await {
        Ok(img) => {
            let full = img
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(VERSION_LABEL).cloned())
                .unwrap_or_else(|| version.to_string());
            Ok(EtcdImage { tag, version: full })
        }
        // A full version (3.5.99) names one release; the line's build may be another.
        Err(e)
            if docker::is_not_found(&e)
                && version.trim_start_matches('v').matches('.').count() >= 2 =>
        {
            Err(Error::ImageVersionMissing {
                tag,
                version: version.trim_start_matches('v').to_string(),
                line: line.as_str().to_string(),
            })
        }
        Err(e) if docker::is_not_found(&e) => Err(Error::ImageMissing {
            tag,
            version: line.as_str().to_string(),
        }),
        Err(e) => Err(Error::docker(format!("inspecting image {tag}"))(e)),
    }
}

/// Where the binaries for a build come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Debian's `etcd-server` + `etcd-client` for the line, via `apt-get download`.
    Debian(Line),
    /// A directory holding `etcd`, `etcdctl` and (3.5) `etcdutl`.
    Dir(PathBuf),
    /// An existing image (e.g. the official one) with the binaries in /usr/local/bin.
    Existing(String),
}

/// Builds (or re-tags) an image and returns it. Idempotent: an image already present for
/// the requested line is returned as-is unless `force`.
pub async fn build(docker: &Docker, source: Source, force: bool) -> Result<EtcdImage> {
    if let (Source::Debian(line), false) = (&source, force)
        && let Ok(img) = resolve(docker, line.as_str()).await
    {
        tracing::info!(tag = %img.tag, version = %img.version, "image already present, not rebuilding");
        return Ok(img);
    }
    match source {
        Source::Existing(reference) => adopt_existing(docker, &reference).await,
        Source::Dir(dir) => build_from_dir(docker, &dir).await,
        Source::Debian(line) => {
            let work = tempfile::tempdir().map_err(Error::io(
                "creating a scratch directory",
                std::env::temp_dir(),
            ))?;
            let bin = download_debian(line, work.path())?;
            build_from_dir(docker, &bin).await
        }
    }
}

/// `apt-get download` against a throwaway sources list and state directory, so the
/// machine's own apt configuration is neither read for sources nor changed.
fn download_debian(line: Line, work: &Path) -> Result<PathBuf> {
    let suite = line.debian_suite();
    for d in ["lists/partial", "cache/archives/partial", "debs", "root"] {
        std::fs::create_dir_all(work.join(d))
            .map_err(Error::io("creating apt scratch dirs", work))?;
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    if !Path::new(keyring).exists() {
        return Err(Error::ImageBuild(format!(
            "{keyring} is missing; install Debian's `debian-archive-keyring`, or pass `--from-dir DIR` with etcd binaries"
        )));
    }
    let sources = work.join("sources.list");
    std::fs::write(
        &sources,
        format!("deb [signed-by={keyring}] http://deb.debian.org/debian {suite} main\n"),
    )
    .map_err(Error::io("writing the throwaway sources list", &sources))?;
    let opts = [
        format!("Dir::Etc::SourceList={}", sources.display()),
        "Dir::Etc::SourceParts=/nonexistent".to_string(),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
        "Debug::NoLocking=1".to_string(),
        "APT::Sandbox::User=root".to_string(),
    ];
    let apt = |args: &[&str], cwd: &Path| -> Result<()> {
        let mut cmd = Command::new("apt-get");
        for o in &opts {
            cmd.arg("-o").arg(o);
        }
        let out = cmd.args(args).current_dir(cwd).output().map_err(|e| {
            Error::ImageBuild(format!(
                "cannot run apt-get ({e}); on a non-Debian host pass `--from-dir DIR` with etcd binaries or `--image REF`"
            ))
        })?;
        if !out.status.success() {
            return Err(Error::ImageBuild(format!(
                "apt-get {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    };
    tracing::info!(suite, "downloading etcd-server and etcd-client from Debian");
    apt(&["-q", "update"], work)?;
    apt(
        &["-q", "download", "etcd-server", "etcd-client"],
        &work.join("debs"),
    )?;
    for deb in std::fs::read_dir(work.join("debs"))
        .map_err(Error::io("listing downloaded packages", work))?
    {
        let deb = deb
            .map_err(Error::io("listing downloaded packages", work))?
            .path();
        run_checked(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(work.join("root")),
        )?;
    }
    Ok(work.join("root/usr/bin"))
}

fn run_checked(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| Error::ImageBuild(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::ImageBuild(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The shared libraries (and loader) a dynamically linked binary needs, as absolute paths.
pub fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::ImageBuild(format!("cannot run ldd on {}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success()
        || text.contains("not a dynamic executable")
        || text.contains("statically linked")
    {
        return Ok(vec![]); // static binary: nothing to copy
    }
    let mut libs = vec![];
    for line in text.lines() {
        if line.contains("not found") {
            return Err(Error::ImageBuild(format!(
                "{}: {}",
                binary.display(),
                line.trim()
            )));
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = line
            .split("=>")
            .last()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

fn detect_version(etcd: &Path) -> Result<String> {
    let out = run_checked(Command::new(etcd).arg("--version"))?;
    parse_version_output(&out).ok_or_else(|| {
        Error::ImageBuild(format!(
            "cannot read a version from `{} --version`: {out}",
            etcd.display()
        ))
    })
}

fn parse_version_output(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
}

async fn build_from_dir(docker: &Docker, dir: &Path) -> Result<EtcdImage> {
    let etcd = dir.join("etcd");
    if !etcd.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} has no `etcd` binary",
            dir.display()
        )));
    }
    let version = detect_version(&etcd)?;
    let line = Line::parse(&version)?;
    let mut bins = vec!["etcd", "etcdctl"];
    if line == Line::V3_5 {
        bins.push("etcdutl");
    }
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![];
    let mut libs = std::collections::BTreeSet::new();
    for b in &bins {
        let p = dir.join(b);
        let data = std::fs::read(&p).map_err(Error::io(
            format!("reading {b} (is it in the directory?)"),
            &p,
        ))?;
        files.push((format!("rootfs{BIN_DIR}/{b}"), data, 0o755));
        libs.extend(linked_libraries(&p)?);
    }
    for lib in libs {
        // fs::read follows symlinks, so the link name gets the real file's bytes.
        let data = std::fs::read(&lib).map_err(Error::io("reading a linked library", &lib))?;
        files.push((format!("rootfs{}", lib.display()), data, 0o755));
    }
    // etcd's data dir mount point and a writable /tmp for etcdutl's temporary files.
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nLABEL {VERSION_LABEL}=\"{version}\" etcd-drill.image=\"1\"\nENTRYPOINT [\"{BIN_DIR}/etcd\"]\n"
    );
    files.push(("Dockerfile".into(), dockerfile.into_bytes(), 0o644));
    let refs: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, d, m)| (p.as_str(), d.as_slice(), *m))
        .collect();
    let context = docker::tar_of(&refs);

    let tag = tag_for(&version);
    tracing::info!(%tag, "building image");
    let opts = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(opts, None, Some(bollard::body_full(context.into())));
    while let Some(msg) = stream.next().await {
        let info = msg.map_err(Error::docker(format!("building {tag}")))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::ImageBuild(err));
        }
    }
    let image = EtcdImage { tag, version };
    tag_line_alias(docker, &image).await?;
    verify_runs(docker, &image).await?;
    Ok(image)
}

/// `etcd-drill/etcd:3.5` always points at the newest build of the line.
async fn tag_line_alias(docker: &Docker, image: &EtcdImage) -> Result<()> {
    let opts = TagImageOptionsBuilder::default()
        .repo(REPO)
        .tag(image.line().as_str())
        .build();
    docker
        .tag_image(&image.tag, Some(opts))
        .await
        .map_err(Error::docker(format!(
            "tagging {} as {REPO}:{}",
            image.tag,
            image.line().as_str()
        )))
}

/// Runs `etcd --version` in `image`: the one way to learn whether, and which, etcd it runs.
async fn run_etcd_version(docker: &Docker, image: &str) -> Result<OneShotOutput> {
    let labels = docker::labels("image-check", &docker::new_run_id(), &[]);
    let etcd = format!("{BIN_DIR}/etcd");
    OneShot::new(image, &etcd, vec!["--version".into()], labels)
        .run(docker)
        .await
}

/// A user's own local etcd image (`[cluster] image`), used as it is: present (never
/// pulled), running `/usr/local/bin/etcd --version` of a supported line. Unlike
/// `image build --image`, nothing is tagged.
pub async fn user_image(docker: &Docker, reference: &str) -> Result<EtcdImage> {
    match docker.inspect_image(reference).await {
        Err(e) if docker::is_not_found(&e) => {
            return Err(Error::InvalidInput(format!(
                "image {reference} is not present locally (this harness never pulls); load it with `docker load` or `docker pull` it first"
            )));
        }
        Err(e) => return Err(Error::docker(format!("inspecting {reference}"))(e)),
        Ok(_) => {}
    }
    let out = run_etcd_version(docker, reference).await?;
    let version = parse_version_output(&out.output).ok_or_else(|| {
        Error::InvalidInput(format!(
            "{reference} does not run {BIN_DIR}/etcd --version: {}; etcd-drill needs etcd, etcdctl and etcdutl in {BIN_DIR}",
            out.output.trim()
        ))
    })?;
    Line::parse(&version)?;
    Ok(EtcdImage {
        tag: reference.to_string(),
        version,
    })
}

/// The image a spec asks for: the user's own, or etcd-drill's for the version.
pub async fn for_spec(docker: &Docker, version: &str, own: Option<&str>) -> Result<EtcdImage> {
    match own {
        Some(reference) => user_image(docker, reference).await,
        None => resolve(docker, version).await,
    }
}

/// A scratch image with a missing library only fails when run, so run it once now.
async fn verify_runs(docker: &Docker, image: &EtcdImage) -> Result<()> {
    let out = run_etcd_version(docker, &image.tag).await?;
    match parse_version_output(&out.output) {
        Some(v) if out.exit_code == 0 && v == image.version => Ok(()),
        _ => Err(Error::ImageBuild(format!(
            "the built image {} does not run etcd (exit {}): {}",
            image.tag, out.exit_code, out.output
        ))),
    }
}

/// Adopts an existing image: reads its etcd version by running it, then tags it so drills
/// find it by version.
async fn adopt_existing(docker: &Docker, reference: &str) -> Result<EtcdImage> {
    if let Err(e) = docker.inspect_image(reference).await {
        if docker::is_not_found(&e) {
            return Err(Error::InvalidInput(format!(
                "image {reference} is not present locally (this harness never pulls); load it with `docker load` or build one with `etcd-drill image build`"
            )));
        }
        return Err(Error::docker(format!("inspecting {reference}"))(e));
    }
    let out = run_etcd_version(docker, reference).await?;
    let version = parse_version_output(&out.output).ok_or_else(|| {
        Error::InvalidInput(format!(
            "{reference} does not run {BIN_DIR}/etcd --version: {}",
            out.output.trim()
        ))
    })?;
    Line::parse(&version)?;
    let image = EtcdImage {
        tag: tag_for(&version),
        version: version.clone(),
    };
    let opts = TagImageOptionsBuilder::default()
        .repo(REPO)
        .tag(&version)
        .build();
    docker
        .tag_image(reference, Some(opts))
        .await
        .map_err(Error::docker(format!("tagging {reference}")))?;
    tag_line_alias(docker, &image).await?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_refuse_unknown_versions() {
        assert_eq!(Line::parse("3.5").unwrap(), Line::V3_5);
        assert_eq!(Line::parse("v3.4.23").unwrap(), Line::V3_4);
        let err = Line::parse("3.6.0").unwrap_err().to_string();
        assert!(err.contains("supports the 3.4 and 3.5 lines"), "{err}");
    }

    #[test]
    fn version_is_read_from_etcd_output() {
        let out = "etcd Version: 3.5.16\nGit SHA: Not provided\nGo Version: go1.24.0\n";
        assert_eq!(parse_version_output(out).as_deref(), Some("3.5.16"));
        assert_eq!(parse_version_output("garbage"), None);
    }
}
