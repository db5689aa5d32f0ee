//! One error type for the library. Every variant says what went wrong, where, and — when
//! the user can do something about it — what to do. The binary maps every `Error` to exit
//! code 2 ("could not run"); a drill whose checks ran but failed is a verdict, not an error.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Docker daemon at {host}: {source}. Start Docker (e.g. `systemctl start docker`) or point DOCKER_HOST at a running daemon"
    )]
    DockerUnavailable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "cannot use the Docker endpoint {endpoint}: {reason}. Set DOCKER_HOST to unix:///path/to/docker.sock or tcp://HOST:PORT (plain, without TLS)"
    )]
    DockerEndpoint { endpoint: String, reason: String },

    #[error(
        "cluster name {name} is in use ({found}); pick another --name, or remove it first with `etcd-drill cluster down {name}`"
    )]
    ClusterNameInUse { name: String, found: String },

    #[error(
        "cluster name {name} would reuse Docker objects etcd-drill did not make ({found}); pick another --name"
    )]
    ClusterNamesTaken { name: String, found: String },

    #[error(
        "the exit code of {what} in container {container} could not be read, so its result is unknown; check the Docker daemon (`docker info`, its logs) and run again"
    )]
    ExitCodeUnknown { what: String, container: String },

    #[error(transparent)]
    NotComparable(#[from] crate::model::compare::NotComparable),

    #[error("Docker call failed while {context}: {source}")]
    Docker {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "etcd image {tag} is not present locally; build it with `etcd-drill image build --version {version}`"
    )]
    ImageMissing { tag: String, version: String },

    #[error(
        "etcd image {tag} is not present locally; `image build --version {line}` builds Debian's {line} release, not {version}: for {version} exactly, build from your binaries (`etcd-drill image build --from-dir DIR`) or adopt an image you have (`etcd-drill image build --image REF`)"
    )]
    ImageVersionMissing {
        tag: String,
        version: String,
        line: String,
    },

    #[error("building the etcd image failed: {0}")]
    ImageBuild(String),

    #[error(
        "invalid cluster size {size}: a cluster has 1 to 9 members (etcd's fault-tolerance table covers 1..=9)"
    )]
    InvalidSize { size: usize },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error(
        "cluster {cluster} did not become healthy within {waited_s:.1}s: {reason}\n--- last log lines ---\n{logs}"
    )]
    Unhealthy {
        cluster: String,
        waited_s: f64,
        reason: String,
        logs: String,
    },

    #[error("etcd request to member {member} failed while {context}: {source}")]
    Etcd {
        member: String,
        context: String,
        #[source]
        source: etcd_client::Error,
    },

    #[error("{context} ({path}): {source}")]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("snapshot {path} is not usable: {reason}")]
    BadSnapshot { path: PathBuf, reason: String },

    #[error("generating TLS certificates failed: {0}")]
    Tls(String),

    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub(crate) fn docker(
        context: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> Error {
        let context = context.into();
        move |source| Error::Docker { context, source }
    }

    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let (context, path) = (context.into(), path.into());
        move |source| Error::Io {
            context,
            path,
            source,
        }
    }

    pub(crate) fn etcd(
        member: &str,
        context: impl Into<String>,
    ) -> impl FnOnce(etcd_client::Error) -> Error {
        let (member, context) = (member.to_string(), context.into());
        move |source| Error::Etcd {
            member,
            context,
            source,
        }
    }
}

impl From<crate::model::Invalid> for Error {
    fn from(e: crate::model::Invalid) -> Self {
        match e {
            crate::model::Invalid::Input(m) => Error::InvalidInput(m),
            crate::model::Invalid::Size { size } => Error::InvalidSize { size },
        }
    }
}

impl From<crate::model::scenario::LoadError> for Error {
    fn from(e: crate::model::scenario::LoadError) -> Self {
        match e {
            crate::model::scenario::LoadError::Read { path, source } => Error::Io {
                context: "reading the scenario".into(),
                path,
                source,
            },
            crate::model::scenario::LoadError::Invalid(i) => i.into(),
        }
    }
}
