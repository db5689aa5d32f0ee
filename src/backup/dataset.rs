//! The deterministic dataset a drill loads: keys under `/registry/` shaped like a Kubernetes
//! apiserver's, values derived from (seed, index) so any value can be regenerated and
//! compared byte for byte, and a log of every acknowledged write with its revision.

use std::time::Duration;

use etcd_client::{Client, Txn, TxnOp};
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};

pub const PREFIX: &str = "/registry/";
const RESOURCES: [(&str, &str); 5] = [
    ("pods", "pod"),
    ("services", "svc"),
    ("configmaps", "cm"),
    ("secrets", "secret"),
    ("deployments", "deploy"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Dataset {
    pub keys: usize,
    pub value_size: usize,
    pub seed: u64,
}

impl Dataset {
    pub fn key(&self, i: usize) -> String {
        let (plural, singular) = RESOURCES[i % RESOURCES.len()];
        format!(
            "{PREFIX}{plural}/ns-{:02}/{singular}-{i:07}",
            (i / RESOURCES.len()) % 20
        )
    }

    /// The index of a key this dataset writes (the inverse of [`Dataset::key`]), or `None`
    /// for any other key.
    pub fn index_of(&self, key: &[u8]) -> Option<usize> {
        let key = std::str::from_utf8(key).ok()?;
        let digits = key.rsplit_once('-')?.1;
        if digits.len() < 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i: usize = digits.parse().ok()?;
        (self.key(i) == key).then_some(i)
    }

    pub fn value(&self, i: usize) -> Vec<u8> {
        let mut v = vec![0u8; self.value_size];
        self.value_into(i, &mut v);
        v
    }

    /// Regenerates value `i` into `buf` (`value_size` bytes), without allocating.
    pub fn value_into(&self, i: usize, buf: &mut [u8]) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        rng.fill_bytes(buf);
    }

    /// Puts per transaction: as many as fit well under etcd's 1.5 MiB request limit, and
    /// at most 128 (etcd's default `--max-txn-ops`).
    fn batch(&self) -> usize {
        (1024 * 1024 / self.value_size.max(1)).clamp(1, 128)
    }
}

/// One acknowledged write. The key and the value (hence its digest) follow from the index
/// and the dataset's seed, so they are not stored: 16 bytes a write keeps a million-key
/// log at 16 MB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Ack {
    pub index: u32,
    /// The revision etcd acknowledged it at.
    pub revision: i64,
}

/// Every write the harness saw acknowledged, in no particular order.
#[derive(Debug, Clone, Default)]
pub struct AckLog {
    pub acks: Vec<Ack>,
}

impl AckLog {
    pub fn max_revision(&self) -> i64 {
        self.acks.iter().map(|a| a.revision).max().unwrap_or(0)
    }
    pub fn merge(&mut self, other: AckLog) {
        self.acks.extend(other.acks);
    }
}

/// Loads `dataset` indexes `range` through `client`, `concurrency` transactions in flight.
/// Returns the acknowledged writes; the first failure stops the load with an error naming
/// the key.
pub async fn load(
    client: &Client,
    member: &str,
    dataset: &Dataset,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<AckLog> {
    let batch = dataset.batch();
    let starts: Vec<usize> = range.clone().step_by(batch).collect();
    let end = range.end;
    let mut batches = futures_util::stream::iter(starts.into_iter().map(|start| {
        let mut c = client.clone();
        async move {
            let idx: Vec<usize> = (start..(start + batch).min(end)).collect();
            let ops: Vec<TxnOp> = idx
                .iter()
                .map(|&i| TxnOp::put(dataset.key(i), dataset.value(i), None))
                .collect();
            let resp =
                tokio::time::timeout(Duration::from_secs(30), c.txn(Txn::new().and_then(ops)))
                    .await
                    .map_err(|_| {
                        Error::Failed(format!(
                            "loading {}: no answer from {member} within 30 s",
                            dataset.key(start)
                        ))
                    })?
                    .map_err(Error::etcd(
                        member,
                        format!("loading keys from {}", dataset.key(start)),
                    ))?;
            let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            Ok::<_, Error>(idx.into_iter().map(move |i| Ack {
                index: i as u32,
                revision,
            }))
        }
    }))
    .buffer_unordered(concurrency.max(1));
    // Appended as batches complete, so the log is the only copy of the acks.
    let mut log = AckLog {
        acks: Vec::with_capacity(range.len()),
    };
    while let Some(batch) = batches.next().await {
        log.acks.extend(batch?);
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_deterministic() {
        let d = Dataset {
            keys: 10,
            value_size: 16,
            seed: 7,
        };
        assert_eq!(d.key(0), "/registry/pods/ns-00/pod-0000000");
        assert_eq!(d.key(6), "/registry/services/ns-01/svc-0000006");
        assert_eq!(d.value(3), d.value(3));
        assert_ne!(d.value(3), d.value(4));
        assert_ne!(d.value(3), Dataset { seed: 8, ..d }.value(3));
        assert_eq!(d.value(3).len(), 16);
    }

    #[test]
    fn index_of_inverts_key_and_refuses_anything_else() {
        let d = Dataset {
            keys: 10,
            value_size: 16,
            seed: 7,
        };
        for i in [0, 6, 12_345, 1_234_567] {
            assert_eq!(d.index_of(d.key(i).as_bytes()), Some(i));
        }
        for other in [
            "/registry/pods/ns-00/pod-0000001", // index 1 is a service, not a pod
            "/registry/pods/ns-00/pod-000000",
            "/registry/pods/ns-00/pod-0000000x",
            "/etcd-drill/after-restore",
            "",
        ] {
            assert_eq!(d.index_of(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn batches_respect_the_request_limit() {
        assert_eq!(
            Dataset {
                keys: 1,
                value_size: 1024,
                seed: 0
            }
            .batch(),
            128
        );
        assert_eq!(
            Dataset {
                keys: 1,
                value_size: 512 * 1024,
                seed: 0
            }
            .batch(),
            2
        );
        assert_eq!(
            Dataset {
                keys: 1,
                value_size: 4 * 1024 * 1024,
                seed: 0
            }
            .batch(),
            1
        );
    }
}
