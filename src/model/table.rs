//! etcd's fault-tolerance table, as a claim to check: N members have majority ⌊N/2⌋+1 and
//! tolerate ⌊(N−1)/2⌋ permanent failures; and the table as observed, cell by cell.

use serde::Serialize;

use super::Invalid;
use super::etcd::validate_size;

pub fn majority(size: usize) -> usize {
    size / 2 + 1
}

pub fn tolerance(size: usize) -> usize {
    (size - 1) / 2
}

/// What the table predicts: writes succeed while the survivors still form a majority.
pub fn predicted_writable(size: usize, failed: usize) -> bool {
    failed <= size && size - failed >= majority(size)
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub failed: usize,
    pub predicted_writable: bool,
    pub observed_writable: bool,
    /// Which members were permanently failed to reach this cell.
    pub failed_members: Vec<String>,
}

impl Cell {
    pub fn agrees(&self) -> bool {
        self.predicted_writable == self.observed_writable
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub size: usize,
    pub majority: usize,
    pub tolerance: usize,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableResult {
    pub seed: u64,
    pub etcd_version: String,
    pub sizes: Vec<SizeResult>,
    pub elapsed_s: f64,
}

impl TableResult {
    /// Cells where what happened is not what the table says; a write acknowledged without
    /// quorum is one of these.
    pub fn disagreements(&self) -> Vec<(usize, &Cell)> {
        self.sizes
            .iter()
            .flat_map(|s| {
                s.cells
                    .iter()
                    .filter(|c| !c.agrees())
                    .map(move |c| (s.size, c))
            })
            .collect()
    }
}

/// Parses `1-9`, `3`, or `1,3,5`.
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, Invalid> {
    let bad = || {
        Invalid::Input(format!(
            "invalid --sizes {s:?}: use a range like 1-9 or a list like 1,3,5"
        ))
    };
    let mut out = vec![];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    for &n in &out {
        validate_size(n)?;
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_seed() {
        // cluster size, MAJORITY, failure tolerance — from the seed document.
        let seed = [
            (1, 1, 0),
            (2, 2, 0),
            (3, 2, 1),
            (4, 3, 1),
            (5, 3, 2),
            (6, 4, 2),
            (7, 4, 3),
            (8, 5, 3),
            (9, 5, 4),
        ];
        for (n, m, t) in seed {
            assert_eq!((majority(n), tolerance(n)), (m, t), "size {n}");
            for k in 0..=n {
                assert_eq!(predicted_writable(n, k), k <= t, "size {n}, {k} failed");
            }
        }
    }

    #[test]
    fn sizes_parse_and_are_range_checked() {
        assert_eq!(parse_sizes("1-9").unwrap(), (1..=9).collect::<Vec<_>>());
        assert_eq!(parse_sizes("5,3,3").unwrap(), vec![3, 5]);
        assert!(
            parse_sizes("0-3")
                .unwrap_err()
                .to_string()
                .contains("invalid cluster size 0")
        );
        assert!(parse_sizes("x").is_err());
    }
}

#[cfg(test)]
mod checker_bites {
    use super::*;

    fn cell(size: usize, failed: usize, observed_writable: bool) -> Cell {
        Cell {
            failed,
            predicted_writable: predicted_writable(size, failed),
            observed_writable,
            failed_members: (1..=failed).map(|i| format!("etcd-{i}")).collect(),
        }
    }

    fn table(cells: Vec<Cell>) -> TableResult {
        TableResult {
            seed: 0,
            etcd_version: "3.5.16".into(),
            sizes: vec![SizeResult {
                size: 3,
                majority: 2,
                tolerance: 1,
                cells,
            }],
            elapsed_s: 0.0,
        }
    }

    #[test]
    fn an_acknowledged_write_without_quorum_is_a_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, true),
            cell(3, 2, true),
            cell(3, 3, false),
        ]);
        let bad = t.disagreements();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].1.failed, 2);
        insta::assert_snapshot!(crate::render::render_table(&t.sizes));
    }

    #[test]
    fn a_lost_write_while_quorum_held_is_a_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, false),
            cell(3, 2, false),
            cell(3, 3, false),
        ]);
        assert_eq!(t.disagreements().len(), 1);
        assert_eq!(
            serde_json::to_value(&t).unwrap()["sizes"][0]["cells"][1]["observed_writable"],
            false
        );
    }

    #[test]
    fn an_agreeing_table_has_no_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, true),
            cell(3, 2, false),
            cell(3, 3, false),
        ]);
        assert!(t.disagreements().is_empty());
    }
}
