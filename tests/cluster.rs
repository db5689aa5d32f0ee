//! Clusters of every size start for real, replicate, and leave nothing behind.

mod common;

use std::time::Duration;

use etcd_drill::Error;
use etcd_drill::cluster::Cluster;
use etcd_drill::docker::{self, Selector};

/// Start → every member lists all members and agrees on one leader → a write through one
/// member is readable (linearizably) through every other → destroy → no trace.
async fn cluster_of(size: usize) {
    let docker = common::docker().await;
    let cluster = common::start(&docker, common::spec(&format!("size{size}"), size)).await;
    let name = cluster.name().to_string();

    let mut leaders = std::collections::BTreeSet::new();
    for m in &cluster.members {
        let mut c = cluster.client(m).await.unwrap();
        let list = c.member_list().await.unwrap();
        assert_eq!(
            list.members().len(),
            size,
            "{} lists the wrong member count",
            m.name
        );
        leaders.insert(c.status().await.unwrap().leader());
    }
    assert_eq!(
        leaders.len(),
        1,
        "members disagree on the leader: {leaders:?}"
    );

    let writer = cluster.members.last().unwrap();
    let value = format!("written-through-{}", writer.name);
    cluster
        .client(writer)
        .await
        .unwrap()
        .put("/registry/check", value.as_str(), None)
        .await
        .unwrap();
    for m in &cluster.members {
        let got = cluster
            .client(m)
            .await
            .unwrap()
            .get("/registry/check", None)
            .await
            .unwrap();
        assert_eq!(
            got.kvs().first().map(|kv| kv.value()),
            Some(value.as_bytes()),
            "read through {}",
            m.name
        );
    }

    cluster.destroy().await.unwrap();
    common::assert_no_leftovers(&docker, &name).await;
}

#[tokio::test]
async fn one_member() {
    cluster_of(1).await;
}
#[tokio::test]
async fn three_members() {
    cluster_of(3).await;
}
#[tokio::test]
async fn five_members() {
    cluster_of(5).await;
}
#[tokio::test]
async fn seven_members() {
    cluster_of(7).await;
}
#[tokio::test]
async fn nine_members() {
    cluster_of(9).await;
}

#[tokio::test]
async fn sizes_zero_and_ten_are_refused_before_anything_is_created() {
    let docker = common::docker().await;
    for size in [0, 10] {
        let spec = common::spec("badsize", size);
        let name = spec.name.clone();
        let err = Cluster::start(&docker, spec)
            .await
            .err()
            .expect("size must be refused");
        assert!(matches!(err, Error::InvalidSize { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid cluster size {size}: a cluster has 1 to 9 members (etcd's fault-tolerance table covers 1..=9)"
            )
        );
        common::assert_no_leftovers(&docker, &name).await;
    }
}

#[tokio::test]
async fn a_missing_image_names_the_command_that_builds_it() {
    let docker = common::docker().await;
    let mut spec = common::spec("noimage", 1);
    spec.version = "3.4.0".into();
    let name = spec.name.clone();
    let err = Cluster::start(&docker, spec)
        .await
        .err()
        .expect("no such image");
    // A full version names one release: the line's build (3.4.23 from Debian) is not it.
    assert_eq!(
        err.to_string(),
        "etcd image etcd-drill/etcd:3.4.0 is not present locally; `image build --version 3.4` builds Debian's 3.4 release, not 3.4.0: for 3.4.0 exactly, build from your binaries (`etcd-drill image build --from-dir DIR`) or adopt an image you have (`etcd-drill image build --image REF`)"
    );
    common::assert_no_leftovers(&docker, &name).await;
}

#[tokio::test]
async fn dropping_a_cluster_tears_it_down() {
    let docker = common::docker().await;
    let cluster = common::start(&docker, common::spec("drop", 1)).await;
    let name = cluster.name().to_string();
    assert!(
        !docker::list_objects(&docker, &Selector::cluster(&name))
            .await
            .unwrap()
            .is_empty()
    );
    drop(cluster);
    common::assert_no_leftovers(&docker, &name).await;
}

#[tokio::test]
async fn a_panicking_test_still_tears_its_cluster_down() {
    let docker = common::docker().await;
    let spec = common::spec("panic", 1);
    let name = spec.name.clone();
    let d2 = docker.clone();
    let joined = tokio::spawn(async move {
        let _cluster = common::start(&d2, spec).await;
        panic!("a test assertion failed while the cluster was up");
    })
    .await;
    assert!(joined.is_err(), "the task was meant to panic");
    common::assert_no_leftovers(&docker, &name).await;
}

#[tokio::test]
async fn tls_cluster_refuses_clients_without_a_certificate() {
    use etcd_client::{Certificate, Client, ConnectOptions, TlsOptions};
    let docker = common::docker().await;
    let mut spec = common::spec("tls", 3);
    spec.tls = true;
    let cluster = common::start(&docker, spec).await;
    let pki = cluster.pki.clone().expect("a TLS cluster has a PKI");
    let m = &cluster.members[0];
    assert!(m.client_url.starts_with("https://127.0.0.1:"));

    // Key files are private, as etcdctl users expect.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pki.client_key_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // Trusting the CA but presenting no client certificate: the handshake is refused.
    let anonymous = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(2))
        .with_tls(TlsOptions::new().ca_certificate(Certificate::from_pem(pki.ca_pem())));
    let refused = async {
        let mut c = Client::connect([m.client_url.as_str()], Some(anonymous)).await?;
        c.get("k", None).await
    }
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );

    // With the client certificate from the run directory, it works.
    let mut c = cluster.client(m).await.unwrap();
    c.put("/registry/tls", "yes", None).await.unwrap();
    assert_eq!(
        c.get("/registry/tls", None).await.unwrap().kvs()[0].value(),
        b"yes"
    );

    // Plain HTTP is not served at all.
    let plain = m.client_url.replace("https://", "http://");
    let plain_result = async {
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(2));
        let mut c = Client::connect([plain.as_str()], Some(opts)).await?;
        c.get("k", None).await
    }
    .await;
    assert!(
        plain_result.is_err(),
        "plain HTTP was served by a TLS cluster"
    );

    let name = cluster.name().to_string();
    let run_dir = cluster.run_dir.clone();
    cluster.destroy().await.unwrap();
    common::assert_no_leftovers(&docker, &name).await;
    assert!(!run_dir.exists(), "certificates outlived the cluster");
}
