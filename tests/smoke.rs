//! Each Docker client library we depend on must work against this daemon (API 1.41):
//! one container through bollard directly and one through testcontainers.

mod common;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

#[tokio::test]
async fn bollard_negotiates_and_runs_a_container() {
    let docker = common::docker().await;
    let version = docker.version().await.unwrap();
    assert!(
        version.api_version.is_some(),
        "daemon reported no API version"
    );
    let name = format!("etcd-drill-smoke-{:x}", rand::random::<u32>());
    let labels = etcd_drill::docker::labels("smoke", "smoke", &[]);
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            ContainerCreateBody {
                image: Some("etcd-drill/etcd:3.5".into()),
                cmd: Some(vec!["--version".into()]),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .expect("create through bollard (is the image built? `make image`)");
    docker
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    let mut wait =
        docker.wait_container(&name, Some(WaitContainerOptionsBuilder::default().build()));
    let status = wait
        .next()
        .await
        .expect("a wait result")
        .expect("etcd --version exits 0");
    assert_eq!(status.status_code, 0);
    let logs = etcd_drill::docker::tail_logs(&docker, &name, 10).await;
    assert!(
        logs.contains("etcd Version: 3.5"),
        "unexpected output: {logs}"
    );
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn testcontainers_starts_an_etcd_member() {
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};

    let container = GenericImage::new("etcd-drill/etcd", "3.5")
        .with_exposed_port(2379.tcp())
        .with_wait_for(WaitFor::message_on_stderr("ready to serve client requests"))
        .with_label("etcd-drill", "1")
        .with_label("etcd-drill.cluster", "smoke-testcontainers")
        .with_cmd([
            "--listen-client-urls=http://0.0.0.0:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
        ])
        .start()
        .await
        .expect("testcontainers could not start the image (is it built? `make image`)");
    let port = container.get_host_port_ipv4(2379.tcp()).await.unwrap();
    let mut client = etcd_client::Client::connect([format!("http://127.0.0.1:{port}")], None)
        .await
        .unwrap();
    client.put("smoke", "ok", None).await.unwrap();
    let got = client.get("smoke", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"ok");
    container.rm().await.unwrap();
}
