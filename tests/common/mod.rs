//! Shared helpers for the Docker-backed tests. These tests need a Docker daemon and the
//! locally built image (`make image`); without them they fail loudly, never pass silently.
#![allow(dead_code)]

pub mod browser;

use bollard::Docker;
use etcd_drill::cluster::{Cluster, ClusterSpec};
use etcd_drill::docker::{self, Selector};

pub async fn docker() -> Docker {
    match docker::connect().await {
        Ok(d) => d,
        Err(e) => panic!("these tests need a reachable Docker daemon: {e}"),
    }
}

/// A spec whose name says which test made it, so a leak points at its test.
pub fn spec(test: &str, size: usize) -> ClusterSpec {
    let mut s = ClusterSpec::new(size);
    s.name = format!("t-{test}-{:04x}", rand::random::<u16>());
    s
}

pub async fn start(docker: &Docker, spec: ClusterSpec) -> Cluster {
    match Cluster::start(docker, spec).await {
        Ok(c) => c,
        Err(e) => panic!("cluster did not start: {e}"),
    }
}

/// Asserts that nothing labelled with this cluster's name is left in Docker.
pub async fn assert_no_leftovers(docker: &Docker, cluster: &str) {
    let left = docker::list_objects(docker, &Selector::cluster(cluster))
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "cluster {cluster} left objects behind: {left:?}"
    );
}

/// `etcd-drill drill FILE --report-dir REPORTS` through the binary, as a user runs it:
/// the exit code and everything it printed.
pub fn run_drill(file: &std::path::Path, reports: &std::path::Path) -> (i32, String) {
    run_drill_with(file, reports, &[])
}

/// `etcd-drill drill FILE --report-dir REPORTS ARGS…`: exit code and all output.
pub fn run_drill_with(
    file: &std::path::Path,
    reports: &std::path::Path,
    args: &[&str],
) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .arg("drill")
        .arg(file)
        .arg("--report-dir")
        .arg(reports)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A real S3-compatible server (s3s-fs, SigV4 enforced) on a free loopback port, with a
/// data directory of its own; stopped when dropped. `make test` and `.ci/run` install it
/// (`.ci/s3-server install`); without it these tests fail, never pass.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub root: tempfile::TempDir,
}

pub const S3_KEY: &str = "etcd-drill-test";
pub const S3_SECRET: &str = "etcd-drill-test-secret-not-for-production";

impl S3Server {
    pub fn start() -> S3Server {
        let bin = std::env::var_os("ETCD_DRILL_S3S_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/s3s-fs")
            });
        assert!(
            bin.exists(),
            "no S3 test server at {}: run `.ci/s3-server install` (make test does)",
            bin.display()
        );
        let root = tempfile::tempdir().unwrap();
        let log = root.path().join("server.log");
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let mut child = std::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(&data)
            .env("RUST_LOG", "s3s_fs=info,s3s=warn")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let marker = "server is running at http://127.0.0.1:";
        for _ in 0..200 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(i) = text.find(marker) {
                let port: String = text[i + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return S3Server {
                    child,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    root,
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "s3s-fs did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A bucket is a directory of the server's data root.
    pub fn bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.path().join("data").join(name)).unwrap();
    }

    /// The environment a user sets for an S3-compatible server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Uploads a local file as `bucket/key` (multipart, so large files stream).
    pub async fn put(&self, bucket: &str, key: &str, file: &std::path::Path) {
        use object_store::ObjectStoreExt;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(S3_KEY)
            .with_secret_access_key(S3_SECRET)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .build()
            .unwrap();
        let mut up = object_store::WriteMultipart::new(
            store
                .put_multipart(&object_store::path::Path::from(key))
                .await
                .unwrap(),
        );
        let mut f = std::fs::File::open(file).unwrap();
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = std::io::Read::read(&mut f, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            up.write(&buf[..n]);
        }
        up.finish().await.unwrap();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `etcd-drill ARGS` through the binary with extra environment: exit code, stdout, stderr.
pub fn etcd_drill(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
