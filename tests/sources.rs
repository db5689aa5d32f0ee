//! Users' own backups: a directory's newest snapshot, gzip and zip, objects (and the newest
//! under a prefix) in a real S3-compatible server on loopback, what the user expects of a
//! backup, the backend quota both ways, and the report set — each through the binary, as
//! a user runs `verify-snapshot`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{S3Server, etcd_drill};
use etcd_drill::backup::dataset::{self, Dataset};
use etcd_drill::backup::snapshot;
use etcd_drill::model::report::DrillReport;
use serde_json::Value;

/// A one-member cluster loaded with `keys` dataset keys of `value_size` bytes, snapshotted
/// with the Maintenance API into `dir/name`; the cluster is gone afterwards.
async fn snapshot_of(
    test: &str,
    keys: usize,
    value_size: usize,
    dir: &Path,
    name: &str,
) -> PathBuf {
    let docker = common::docker().await;
    let c = common::start(&docker, common::spec(test, 1)).await;
    if keys > 0 {
        let client = c.client(&c.members[0]).await.unwrap();
        let ds = Dataset {
            keys,
            value_size,
            seed: 7,
        };
        dataset::load(&client, "etcd-1", &ds, 0..keys, 8)
            .await
            .unwrap();
    }
    let f = snapshot::save(&c, &c.members[0].clone(), dir)
        .await
        .unwrap();
    c.destroy().await.unwrap();
    let to = dir.join(name);
    std::fs::rename(&f.path, &to).unwrap();
    to
}

fn gzip(from: &Path, to: &Path) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::copy(&mut std::fs::File::open(from).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
}

fn zip(from: &Path, to: &Path, entry: &str) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    z.start_file(entry, zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::copy(&mut std::fs::File::open(from).unwrap(), &mut z).unwrap();
    z.finish().unwrap();
}

/// `verify-snapshot SOURCE --members 1 --json EXTRA…`: exit code, the JSON report (when
/// there is one) and stderr.
fn verify(source: &str, extra: &[&str], env: &[(&str, String)]) -> (i32, Value, String) {
    let mut args = vec!["verify-snapshot", source, "--members", "1", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = etcd_drill(&args, env);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

fn check<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {r:#}"))
}

/// A `DOCKER_HOST` nothing answers at: what is refused with it was refused before any
/// container could exist.
fn no_docker() -> Vec<(&'static str, String)> {
    vec![(
        "DOCKER_HOST",
        "unix:///nonexistent/etcd-drill-test.sock".into(),
    )]
}

#[tokio::test]
async fn the_newest_snapshot_of_a_directory_is_verified_packed_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("srcdir", 200, 64, tmp.path(), "20240101_000000_snapshot.db").await;
    // The RKE/k3s layout: older snapshots, the newest gzipped, a newer upload still in
    // progress, an empty file and a stray note.
    let dir = tmp.path().join("etcd-snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&snap, dir.join("20240101_000000_snapshot.db")).unwrap();
    gzip(&snap, &dir.join("20240301_000000_snapshot.db.gz"));
    std::fs::copy(&snap, dir.join("20240401_000000_snapshot.db.part")).unwrap();
    std::fs::File::create(dir.join("20240402_000000_snapshot.db")).unwrap();
    std::fs::write(dir.join("README"), "backups of prod\n").unwrap();

    let (code, r, err) = verify(dir.to_str().unwrap(), &[], &[]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let origin = &r["backup"]["origin"];
    assert_eq!(origin["object"], "20240301_000000_snapshot.db.gz", "{r:#}");
    assert_eq!(origin["packing"], "gzip");
    let skipped: Vec<&str> = origin["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "20240401_000000_snapshot.db.part",
            "20240402_000000_snapshot.db",
            "README"
        ]
    );
    assert_eq!(r["keys"], 200);
    assert_eq!(
        r["backup"]["keys_per_prefix"]["/registry/pods/"], 40,
        "{r:#}"
    );

    // A zip as k3s writes with --etcd-snapshot-compress, named anything: known by content.
    let z = tmp.path().join("etcd-snapshot-node1-1700000000");
    zip(&snap, &z, "etcd-snapshot-node1-1700000000");
    let (code, r, err) = verify(z.to_str().unwrap(), &[], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["backup"]["origin"]["packing"], "zip");
    assert_eq!(r["backup"]["origin"]["taken_at_ms"], 1_700_000_000_000u64);

    // A directory with nothing usable is bad input, refused before Docker is even asked
    // for (the daemon named here does not exist).
    let empty = tmp.path().join("nothing");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("x.part"), "partial").unwrap();
    let (code, _, err) = verify(empty.to_str().unwrap(), &[], &no_docker());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no etcd snapshot in") && err.contains("x.part (a partial file"),
        "{err}"
    );
}

#[tokio::test]
async fn backups_in_s3_are_fetched_and_every_bad_source_is_refused_before_anything_starts() {
    let s3 = S3Server::start();
    s3.bucket("backups");
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("srcs3", 150, 64, tmp.path(), "snap.db").await;
    for name in ["20240101_000000_snapshot.db", "20240301_000000_snapshot.db"] {
        s3.put("backups", &format!("etcd/{name}"), &snap).await;
    }
    s3.put("backups", "etcd/20240401_000000_snapshot.db.part", &snap)
        .await;
    let empty = tmp.path().join("empty");
    std::fs::File::create(&empty).unwrap();
    s3.put("backups", "empty/20240501_000000_snapshot.db", &empty)
        .await;
    let env = s3.env();

    let (code, r, err) = verify("s3://backups/etcd/", &[], &env);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(
        r["backup"]["origin"]["object"], "etcd/20240301_000000_snapshot.db",
        "{r:#}"
    );
    assert_eq!(
        r["backup"]["origin"]["skipped"][0]["name"],
        "etcd/20240401_000000_snapshot.db.part"
    );
    assert_eq!(r["keys"], 150);

    // Each is refused before Docker is asked for anything: the daemon named does not exist.
    let env: Vec<_> = env.into_iter().chain(no_docker()).collect();
    let mut wrong = env.clone();
    wrong[2].1 = "not-the-secret".into();
    type Env<'a> = &'a [(&'a str, String)];
    let cases: [(&str, Env, &str); 5] = [
        (
            "s3://backups/etcd/20240301_000000_snapshot.db",
            &wrong,
            "refused the credentials",
        ),
        (
            "s3://backups/etcd/20990101_000000_snapshot.db",
            &env,
            "no such object",
        ),
        ("s3://no-such-bucket/etcd/", &env, "bucket"),
        (
            "s3://backups/empty/20240501_000000_snapshot.db",
            &env,
            "the object is empty",
        ),
        ("s3://backups/nothing-here/", &env, "no etcd snapshot in"),
    ];
    for (source, env, why) in cases {
        let (code, _, err) = verify(source, &[], env);
        assert_eq!(code, 2, "{source}: {err}");
        assert!(err.contains(why), "{source}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
    }
}

#[tokio::test]
async fn a_large_object_streams_from_s3_and_restores() {
    let s3 = S3Server::start();
    s3.bucket("big");
    let tmp = tempfile::tempdir().unwrap();
    // 110 values of 1 MiB: a snapshot over 100 MB.
    let snap = snapshot_of("srcbig", 110, 1 << 20, tmp.path(), "big.db").await;
    let size = std::fs::metadata(&snap).unwrap().len();
    assert!(size >= 100 << 20, "{size}");
    s3.put("big", "etcd/20240101_000000_snapshot.db", &snap)
        .await;
    let (code, r, err) = verify("s3://big/etcd/20240101_000000_snapshot.db", &[], &s3.env());
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert_eq!(r["backup"]["size"], size);
    assert_eq!(r["keys"], 110);
}

#[tokio::test]
async fn what_the_user_expects_passes_when_it_holds_and_fails_when_it_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("expect", 100, 64, tmp.path(), "20240101_000000_snapshot.db").await;
    let s = snap.to_str().unwrap();
    let (code, first, err) = verify(s, &[], &[]);
    assert_eq!(code, 0, "{err}");
    let rev = first["status"]["revision"].as_i64().unwrap();
    let prev = tmp.path().join("previous.json");
    std::fs::write(&prev, first.to_string()).unwrap();

    let holds = [
        "--min-keys",
        "100",
        "--require-prefix",
        "/registry/pods/",
        "--require-key",
        "/registry/pods/ns-00/pod-0000000",
        "--max-age",
        "100000d",
        "--previous",
        prev.to_str().unwrap(),
    ];
    let (code, r, err) = verify(s, &holds, &[]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    for name in [
        "min-keys",
        "require-prefix",
        "require-key",
        "max-age",
        "not-older-than-previous",
    ] {
        assert_eq!(check(&r, name)["passed"], true, "{name}: {r:#}");
    }

    // The same backup against expectations it does not meet: each one fails, exit 1.
    let newer = tmp.path().join("newer.json");
    let mut ahead = first.clone();
    ahead["status"]["revision"] = (rev + 1000).into();
    ahead["backup"]["revision"] = (rev + 1000).into();
    std::fs::write(&newer, ahead.to_string()).unwrap();
    let fails = [
        "--min-keys",
        "101",
        "--require-prefix",
        "/registry/namespaces/",
        "--require-key",
        "/registry/pods/ns-00/pod-9999999",
        "--max-age",
        "1h",
        "--previous",
        newer.to_str().unwrap(),
    ];
    let (code, r, err) = verify(s, &fails, &[]);
    assert_eq!(code, 1, "{err}\n{r:#}");
    assert_eq!(r["verdict"], "fail");
    for name in [
        "min-keys",
        "require-prefix",
        "require-key",
        "max-age",
        "not-older-than-previous",
    ] {
        assert_eq!(check(&r, name)["passed"], false, "{name}: {r:#}");
    }
    assert!(
        check(&r, "not-older-than-previous")["detail"]
            .as_str()
            .unwrap()
            .contains("is behind")
    );

    // Bad expectations are bad input.
    for (args, why) in [
        (vec!["--min-keys", "0"], "--min-keys 0"),
        (vec!["--max-age", "soon"], "invalid duration"),
        (
            vec!["--previous", "/nonexistent/report.json"],
            "reading the previous report",
        ),
    ] {
        let (code, _, err) = verify(s, &args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn an_empty_snapshot_says_so_and_fails_any_min_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("empty", 0, 1, tmp.path(), "empty.db").await;
    let (code, out, err) = etcd_drill(
        &["verify-snapshot", snap.to_str().unwrap(), "--members", "1"],
        &[],
    );
    assert_eq!(code, 0, "an empty cluster's snapshot restores: {err}");
    assert!(out.contains("0 keys: the snapshot is EMPTY"), "{out}");
    let (code, r, _) = verify(snap.to_str().unwrap(), &["--min-keys", "1"], &[]);
    assert_eq!(code, 1);
    assert!(
        check(&r, "min-keys")["detail"]
            .as_str()
            .unwrap()
            .starts_with("0 keys")
    );
}

#[tokio::test]
async fn the_quota_is_sized_from_the_snapshot_and_a_too_small_one_fails_loudly() {
    let tmp = tempfile::tempdir().unwrap();
    // About 3 MB of values: more than a 1 MiB quota holds.
    let snap = snapshot_of("quota", 3000, 1024, tmp.path(), "snap.db").await;
    let s = snap.to_str().unwrap();
    let (code, r, err) = verify(s, &[], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["backup"]["quota_from"], "snapshot");
    assert_eq!(r["backup"]["quota_backend_bytes"], 2u64 << 30);
    assert_eq!(check(&r, "writable")["passed"], true);

    let (code, r, err) = verify(s, &["--quota-backend-bytes", "1048576"], &[]);
    assert_eq!(code, 1, "{err}\n{r:#}");
    assert_eq!(r["backup"]["quota_from"], "user");
    let w = check(&r, "writable");
    assert_eq!(w["passed"], false);
    assert!(w["detail"].as_str().unwrap().contains("NOSPACE"), "{w}");
}

#[tokio::test]
async fn verify_snapshot_writes_the_report_set_and_report_compare_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("reports", 50, 64, tmp.path(), "20240101_000000_snapshot.db").await;
    let reports = tmp.path().join("reports");
    let mut dirs = vec![];
    for _ in 0..2 {
        let args = [
            "verify-snapshot",
            snap.to_str().unwrap(),
            "--members",
            "1",
            "--report-dir",
            reports.to_str().unwrap(),
        ];
        let (code, _, err) = etcd_drill(&args, &[]);
        assert_eq!(code, 0, "{err}");
        let dir = err
            .lines()
            .find_map(|l| l.strip_prefix("reports written to "))
            .expect("report dir");
        dirs.push(PathBuf::from(dir));
        // Report directories are named by the second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let d = &dirs[1];
    for f in [
        "report.json",
        "summary.md",
        "junit.xml",
        "report.html",
        "metrics.prom",
    ] {
        assert!(d.join(f).is_file(), "{f} in {}", d.display());
    }
    let r: DrillReport =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert!(r.passed());
    let b = r.backup.as_ref().expect("backup facts");
    assert_eq!(b.keys, 50);
    assert!(b.age_s.is_some_and(|a| a > 0.0));
    let prom = std::fs::read_to_string(d.join("metrics.prom")).unwrap();
    for m in [
        "etcd_drill_backup_verified{",
        "etcd_drill_backup_revision{",
        "etcd_drill_backup_keys{",
        "etcd_drill_backup_size_bytes{",
        "etcd_drill_backup_age_seconds{",
        "etcd_drill_backup_restore_seconds{",
        "etcd_drill_backup_verified_timestamp_seconds{",
    ] {
        assert!(prom.contains(m), "{m} missing:\n{prom}");
    }
    let md = std::fs::read_to_string(d.join("summary.md")).unwrap();
    assert!(md.contains("### Backup"), "{md}");
    let junit = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    assert!(
        junit.contains("keys-readable") && junit.contains("writable"),
        "{junit}"
    );
    let (code, out, err) = etcd_drill(
        &[
            "report",
            "compare",
            dirs[0].to_str().unwrap(),
            d.to_str().unwrap(),
        ],
        &[],
    );
    assert!(code == 0 || code == 1, "compare ran: {out}{err}");
    assert!(out.contains("rto_s"), "{out}");
    let _ = std::io::stderr().flush();
}

/// A scenario's restore from a backup of the user's: fetched (here from S3), restored into
/// the drill's cluster through the one restore procedure, checked by the verify step
/// against itself and against what the step expects of it; the facts reach the report.
#[tokio::test]
async fn a_drill_restores_a_users_backup_from_s3_and_judges_it() {
    let s3 = S3Server::start();
    s3.bucket("nightly");
    let tmp = tempfile::tempdir().unwrap();
    let snap = snapshot_of("drillsrc", 120, 64, tmp.path(), "s.db").await;
    s3.put("nightly", "etcd/20240101_000000_snapshot.db", &snap)
        .await;
    let scenario = |min_keys: usize| {
        format!(
            "name = \"nightly\"\n[cluster]\nsize = 3\n\
             [[steps]]\nkind = \"restore\"\nsource = \"s3://nightly/etcd/\"\n\
             backup = {{ min_keys = {min_keys}, require_prefix = [\"/registry/pods/\"] }}\n\
             [[steps]]\nkind = \"verify\"\n"
        )
    };
    for (min_keys, want) in [(120, 0), (121, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, scenario(min_keys)).unwrap();
        let reports = dir.path().join("reports");
        let (code, out, err) = etcd_drill(
            &[
                "drill",
                file.to_str().unwrap(),
                "--report-dir",
                reports.to_str().unwrap(),
            ],
            &s3.env(),
        );
        assert_eq!(code, want, "min_keys {min_keys}: {out}{err}");
        let d = std::fs::read_dir(&reports)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let r: DrillReport =
            serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
        let b = r.backup.as_ref().expect("the backup's facts are reported");
        assert_eq!(b.keys, 120);
        assert_eq!(b.origin.object, "etcd/20240101_000000_snapshot.db");
        let min = r.checks.iter().find(|c| c.name == "min-keys").unwrap();
        assert_eq!(min.passed, want == 0, "{min:?}");
        assert!(r.checks.iter().any(|c| c.name == "hashkv" && c.passed));
        assert!(
            r.rto.as_ref().is_some_and(|rto| rto.phases.len() == 7),
            "{:?}",
            r.rto
        );
    }
}
