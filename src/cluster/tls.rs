//! Per-cluster PKI for TLS clusters, shaped like the seed's etcdctl procedure: one CA, a
//! server and a peer certificate per member, and one client certificate for etcdctl and the
//! harness. Files live in the cluster's run directory so `etcdctl --cacert --cert --key`
//! works from the host; private keys are mode 0600.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// Where certificates are placed inside member and tool containers.
pub const CONTAINER_PKI_DIR: &str = "/etc/etcd/pki";

#[derive(Debug, Clone)]
struct Pem {
    cert: String,
    key: String,
}

#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    ca: Pem,
    client: Pem,
    server: BTreeMap<String, Pem>,
    peer: BTreeMap<String, Pem>,
}

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Tls(format!("{what}: {e}"))
}

fn leaf(
    cn: &str,
    sans: &[String],
    usages: &[ExtendedKeyUsagePurpose],
    issuer: &Issuer<'_, KeyPair>,
) -> Result<Pem> {
    let mut params = CertificateParams::new(sans.to_vec()).map_err(tls_err("certificate names"))?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages.to_vec();
    let key = KeyPair::generate().map_err(tls_err("generating a key"))?;
    let cert = params.signed_by(&key, issuer).map_err(tls_err(cn))?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

impl Pki {
    /// `members`: (member name, names it is reached by). 127.0.0.1 and localhost are added
    /// to every server certificate because the harness talks to published ports on loopback.
    pub fn generate(dir: &Path, members: &[(String, Vec<String>)]) -> Result<Pki> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "etcd-drill CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(tls_err("generating the CA key"))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(tls_err("self-signing the CA"))?;
        let ca = Pem {
            cert: ca_cert.pem(),
            key: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);

        let client = leaf(
            "etcd-drill-client",
            &["localhost".to_string()],
            &[ExtendedKeyUsagePurpose::ClientAuth],
            &issuer,
        )?;
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca,
            client,
            server: BTreeMap::new(),
            peer: BTreeMap::new(),
        };
        for (name, names) in members {
            pki.issue_member(&issuer, name, names)?;
        }
        pki.write()?;
        Ok(pki)
    }

    fn issue_member(
        &mut self,
        issuer: &Issuer<'_, KeyPair>,
        name: &str,
        names: &[String],
    ) -> Result<()> {
        // Members are both servers and clients: to peers, and to themselves through the
        // grpc-gateway, which presents the server certificate under --client-cert-auth.
        let both = [
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let mut sans = names.to_vec();
        sans.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
        self.server
            .insert(name.to_string(), leaf(name, &sans, &both, issuer)?);
        self.peer
            .insert(name.to_string(), leaf(name, &sans, &both, issuer)?);
        Ok(())
    }

    fn write(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(Error::io("creating the PKI directory", &self.dir))?;
        let mut files = vec![
            ("ca.pem".to_string(), self.ca.cert.clone(), 0o644),
            ("ca-key.pem".to_string(), self.ca.key.clone(), 0o600),
            ("client.pem".to_string(), self.client.cert.clone(), 0o644),
            ("client-key.pem".to_string(), self.client.key.clone(), 0o600),
        ];
        for (name, p) in &self.server {
            files.push((format!("{name}-server.pem"), p.cert.clone(), 0o644));
            files.push((format!("{name}-server-key.pem"), p.key.clone(), 0o600));
        }
        for (name, p) in &self.peer {
            files.push((format!("{name}-peer.pem"), p.cert.clone(), 0o644));
            files.push((format!("{name}-peer-key.pem"), p.key.clone(), 0o600));
        }
        for (file, body, mode) in files {
            let path = self.dir.join(file);
            write_with_mode(&path, body.as_bytes(), mode)?;
        }
        Ok(())
    }

    /// Reads back a PKI written by [`Pki::generate`] (for commands that attach to a
    /// running cluster).
    pub fn load(dir: &Path, members: &[String]) -> Result<Pki> {
        let read = |f: &str| {
            let p = dir.join(f);
            std::fs::read_to_string(&p).map_err(Error::io("reading the cluster's certificates", &p))
        };
        let pair = |c: &str, k: &str| -> Result<Pem> {
            Ok(Pem {
                cert: read(c)?,
                key: read(k)?,
            })
        };
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca: pair("ca.pem", "ca-key.pem")?,
            client: pair("client.pem", "client-key.pem")?,
            server: BTreeMap::new(),
            peer: BTreeMap::new(),
        };
        for m in members {
            pki.server.insert(
                m.clone(),
                pair(&format!("{m}-server.pem"), &format!("{m}-server-key.pem"))?,
            );
            pki.peer.insert(
                m.clone(),
                pair(&format!("{m}-peer.pem"), &format!("{m}-peer-key.pem"))?,
            );
        }
        Ok(pki)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
    pub fn ca_pem(&self) -> &str {
        &self.ca.cert
    }
    pub fn client_pem(&self) -> (&str, &str) {
        (&self.client.cert, &self.client.key)
    }

    /// The tar archive uploaded into `member`'s container at [`CONTAINER_PKI_DIR`]: its own
    /// server and peer pairs under fixed names, the CA, and the client pair for etcdctl.
    pub fn member_archive(&self, member: &str) -> Result<Vec<u8>> {
        let (s, p) = match (self.server.get(member), self.peer.get(member)) {
            (Some(s), Some(p)) => (s, p),
            _ => {
                return Err(Error::Tls(format!(
                    "no certificates were generated for member {member}"
                )));
            }
        };
        Ok(crate::docker::tar_of(&[
            ("ca.pem", self.ca.cert.as_bytes(), 0o644),
            ("server.pem", s.cert.as_bytes(), 0o644),
            ("server-key.pem", s.key.as_bytes(), 0o600),
            ("peer.pem", p.cert.as_bytes(), 0o644),
            ("peer-key.pem", p.key.as_bytes(), 0o600),
            ("client.pem", self.client.cert.as_bytes(), 0o644),
            ("client-key.pem", self.client.key.as_bytes(), 0o600),
        ]))
    }

    /// Issues certificates for a member that joins later (member replacement).
    pub fn add_member(&mut self, name: &str, names: &[String]) -> Result<()> {
        let key = KeyPair::from_pem(&self.ca.key).map_err(tls_err("reading the CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca.cert, key)
            .map_err(tls_err("reading the CA certificate"))?;
        self.issue_member(&issuer, name, names)?;
        self.write()
    }
}

fn write_with_mode(path: &Path, body: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io("writing a certificate file", path))?;
    f.write_all(body)
        .map_err(Error::io("writing a certificate file", path))
}
