//! Scenario files (`scenarios/*.toml`): a cluster, a dataset, a seed, ordered steps and
//! gates. Parsing is strict — unknown fields, wrong types and out-of-range values are
//! refused with `file:line:column`, the field, and what is allowed — and everything is
//! checked before anything starts. The JSON Schema (`etcd-drill schema`) is derived from
//! these types.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::chaos::fault::{FaultKind, Target};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier, used in report directory names.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed for every random choice (victims, data); `--seed` overrides; a random one is
    /// chosen and reported when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// How many times to run the scenario (1..=100).
    #[serde(default = "one")]
    #[schemars(with = "u32")]
    pub repeat: Spanned<u32>,
    pub cluster: ClusterSection,
    #[serde(default)]
    pub dataset: DatasetSection,
    #[serde(default)]
    pub gates: Gates,
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Members, 1..=9.
    #[schemars(with = "usize")]
    pub size: Spanned<usize>,
    /// etcd line or version with a local image: "3.5", "3.4", "3.5.16".
    #[serde(default = "default_version")]
    #[schemars(with = "String")]
    pub version: Spanned<String>,
    #[serde(default)]
    pub tls: bool,
}

fn default_version() -> Spanned<String> {
    Spanned::new(0..0, crate::cluster::image::DEFAULT_VERSION.to_string())
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// Keys a `load` step writes unless it says otherwise.
    #[schemars(with = "usize")]
    pub keys: Spanned<usize>,
    /// Bytes per value, 1..=1048576.
    #[schemars(with = "usize")]
    pub value_size: Spanned<usize>,
}

impl Default for DatasetSection {
    fn default() -> Self {
        DatasetSection {
            keys: Spanned::new(0..0, 1000),
            value_size: Spanned::new(0..0, 256),
        }
    }
}

/// Limits the run must stay within; a gate that could not be measured fails.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Total RTO: from the restore step (disaster declared) to verified.
    #[schemars(with = "Option<f64>")]
    pub max_rto_s: Option<Spanned<f64>>,
    /// Per RTO phase: stop-survivors, snapshot-checked, restore, started, leader-elected,
    /// first-write, verified.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub max_phase_s: BTreeMap<String, Spanned<f64>>,
    /// Acknowledged writes the restore may lose.
    pub max_rpo_writes: Option<usize>,
    /// Longest stretch without an acknowledged write while faults are injected.
    #[schemars(with = "Option<f64>")]
    pub max_write_gap_s: Option<Spanned<f64>>,
}

/// The shortest `expect` window: etcd's default election timeout. A shorter window cannot see
/// a cluster elect a leader, so it would report unavailability it never observed.
pub const MIN_WINDOW_MS: u64 = 1000;

pub const PHASES: [&str; 7] = [
    "stop-survivors",
    "snapshot-checked",
    "restore",
    "started",
    "leader-elected",
    "first-write",
    "verified",
];

/// One step. `kind` selects it; unknown fields are errors.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Write the next `keys` keys of the dataset (default: dataset.keys).
    Load { keys: Option<usize> },
    /// Save a snapshot through the Maintenance API from `from` (a target; default: a follower).
    Snapshot {
        name: Option<String>,
        from: Option<String>,
    },
    /// Inject a fault: permanent, kill, stop, restart, pause, unpause, partition, heal, wipe-data.
    /// `target`: leader, follower, random, member:<i>, count:<k> (default random).
    Fault {
        fault: FaultKind,
        target: Option<String>,
    },
    /// Observe availability and compare: writable, leader present, how many members serve
    /// serializable reads, how many answer at all.
    Expect {
        writable: Option<bool>,
        leader: Option<bool>,
        serializable_readers: Option<usize>,
        members_answering: Option<usize>,
        /// Observation window in ms (default 3000: covers a 1–2 s randomised election).
        window_ms: Option<u64>,
    },
    /// Undo transient faults: unpause, heal partitions, restart killed/stopped members.
    Heal {},
    /// Pause the scenario.
    Wait { seconds: f64 },
    /// Declare the disaster: stop survivors, check the snapshot, restore every member
    /// (`members`, default the current names) from the same snapshot under a new token, start.
    Restore {
        snapshot: Option<String>,
        members: Option<Vec<String>>,
        bump_revision: Option<u64>,
    },
    /// etcd runtime reconfiguration: remove a lost member, add `etcd-<next>` in its place.
    ReplaceMember { member: String },
    /// Verify the data: after a restore, against the snapshot; otherwise every acknowledged write.
    Verify {},
    /// Fill the fault-tolerance table for `sizes` (default 1-9) in clusters of its own.
    QuorumTable { sizes: Option<String> },
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Load { .. } => "load",
            Step::Snapshot { .. } => "snapshot",
            Step::Fault { .. } => "fault",
            Step::Expect { .. } => "expect",
            Step::Heal {} => "heal",
            Step::Wait { .. } => "wait",
            Step::Restore { .. } => "restore",
            Step::ReplaceMember { .. } => "replace-member",
            Step::Verify {} => "verify",
            Step::QuorumTable { .. } => "quorum-table",
        }
    }

    pub fn title(&self) -> String {
        match self {
            Step::Load { keys } => format!(
                "load {}",
                keys.map(|k| k.to_string())
                    .unwrap_or_else(|| "dataset".into())
            ),
            Step::Snapshot { name, .. } => format!("snapshot {}", name.as_deref().unwrap_or(""))
                .trim()
                .to_string(),
            Step::Fault { fault, target } => format!(
                "fault {} {}",
                serde_json::to_value(fault)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                target.as_deref().unwrap_or("random")
            ),
            Step::Expect { writable, .. } => match writable {
                Some(true) => "expect writable".into(),
                Some(false) => "expect not writable".into(),
                None => "expect".into(),
            },
            Step::Heal {} => "heal".into(),
            Step::Wait { seconds } => format!("wait {seconds}s"),
            Step::Restore { snapshot, .. } => format!(
                "restore from {}",
                snapshot.as_deref().unwrap_or("latest snapshot")
            ),
            Step::ReplaceMember { member } => format!("replace {member}"),
            Step::Verify {} => "verify".into(),
            Step::QuorumTable { sizes } => {
                format!("quorum table {}", sizes.as_deref().unwrap_or("1-9"))
            }
        }
    }
}

/// A parsed and checked scenario with its origin, ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: String,
    pub scenario: Scenario,
}

/// `file:line:column` for a byte offset.
fn location(path: &str, src: &str, offset: usize) -> String {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    format!("{path}:{line}:{col}")
}

fn invalid(
    path: &str,
    src: &str,
    span: std::ops::Range<usize>,
    field: &str,
    problem: &str,
    allowed: &str,
) -> Error {
    Error::InvalidInput(format!(
        "{}: {field}: {problem}; allowed: {allowed}",
        location(path, src, span.start)
    ))
}

/// Parses and checks a scenario from text. `path` is only used in messages.
pub fn parse(path: &str, src: &str) -> Result<Scenario> {
    let s: Scenario = toml::from_str(src).map_err(|e| {
        let at = e
            .span()
            .map(|sp| location(path, src, sp.start))
            .unwrap_or_else(|| path.to_string());
        Error::InvalidInput(format!("{at}: {}", e.message().trim()))
    })?;
    check(path, src, &s)?;
    Ok(s)
}

pub fn load(path: &Path) -> Result<Loaded> {
    let src = std::fs::read_to_string(path).map_err(Error::io("reading the scenario", path))?;
    let p = path.display().to_string();
    Ok(Loaded {
        scenario: parse(&p, &src)?,
        path: p,
    })
}

fn check(path: &str, src: &str, s: &Scenario) -> Result<()> {
    let bad = |span: std::ops::Range<usize>, field: &str, problem: String, allowed: &str| {
        Err(invalid(path, src, span, field, &problem, allowed))
    };
    if s.name.is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(
            0..0,
            "name",
            format!("{:?} is not a usable name", s.name),
            "letters, digits, '-' and '_'",
        );
    }
    let size = *s.cluster.size.get_ref();
    if !(crate::cluster::MIN_SIZE..=crate::cluster::MAX_SIZE).contains(&size) {
        return bad(
            s.cluster.size.span(),
            "cluster.size",
            format!("{size} is out of range"),
            "1 to 9",
        );
    }
    if let Err(e) = crate::cluster::image::Line::parse(s.cluster.version.get_ref()) {
        return bad(
            s.cluster.version.span(),
            "cluster.version",
            e.to_string(),
            "\"3.5\", \"3.4\" or a full version",
        );
    }
    let repeat = *s.repeat.get_ref();
    if !(1..=100).contains(&repeat) {
        return bad(
            s.repeat.span(),
            "repeat",
            format!("{repeat} is out of range"),
            "1 to 100",
        );
    }
    if *s.dataset.keys.get_ref() == 0 {
        return bad(
            s.dataset.keys.span(),
            "dataset.keys",
            "0 keys".into(),
            "1 or more",
        );
    }
    let vs = *s.dataset.value_size.get_ref();
    if vs == 0 || vs > 1 << 20 {
        return bad(
            s.dataset.value_size.span(),
            "dataset.value_size",
            format!("{vs} bytes"),
            "1 to 1048576",
        );
    }
    let nonneg = |v: &Spanned<f64>, field: &str| -> Result<()> {
        let x = *v.get_ref();
        if x.is_finite() && x >= 0.0 {
            Ok(())
        } else {
            Err(invalid(
                path,
                src,
                v.span(),
                field,
                &format!("{x} is not a duration"),
                "a number of seconds >= 0",
            ))
        }
    };
    if let Some(g) = &s.gates.max_rto_s {
        nonneg(g, "gates.max_rto_s")?;
    }
    if let Some(g) = &s.gates.max_write_gap_s {
        nonneg(g, "gates.max_write_gap_s")?;
    }
    for (phase, g) in &s.gates.max_phase_s {
        if !PHASES.contains(&phase.as_str()) {
            return bad(
                g.span(),
                &format!("gates.max_phase_s.{phase}"),
                "unknown phase".into(),
                &PHASES.join(", "),
            );
        }
        nonneg(g, &format!("gates.max_phase_s.{phase}"))?;
    }
    if s.steps.is_empty() {
        return bad(
            0..0,
            "steps",
            "no steps".into(),
            "at least one [[steps]] table",
        );
    }
    // Walk the steps as the runner will, tracking what exists, so a restore before any
    // snapshot or a target beyond the cluster is refused now rather than mid-drill.
    let mut members = size;
    let mut max_index = size;
    let mut snapshots: Vec<Option<String>> = vec![];
    for (i, step) in s.steps.iter().enumerate() {
        let sp = step.span();
        let field = format!("steps[{i}] ({})", step.get_ref().kind());
        match step.get_ref() {
            Step::Load { keys: Some(0) } => return bad(sp, &field, "keys = 0".into(), "1 or more"),
            Step::Wait { seconds } if !seconds.is_finite() || *seconds < 0.0 => {
                return bad(
                    sp,
                    &format!("{field}.seconds"),
                    format!("{seconds} is not a duration"),
                    "a number of seconds >= 0",
                );
            }
            Step::Expect {
                writable: None,
                leader: None,
                serializable_readers: None,
                members_answering: None,
                ..
            } => {
                return bad(
                    sp,
                    &field,
                    "expects nothing, so it can observe nothing and prove nothing".into(),
                    "at least one of writable, leader, serializable_readers, members_answering",
                );
            }
            Step::Expect {
                window_ms: Some(w), ..
            } if *w < MIN_WINDOW_MS => {
                return bad(
                    sp,
                    &format!("{field}.window_ms"),
                    format!(
                        "{w} ms is shorter than etcd's election timeout (1000 ms): a cluster that lost its leader cannot elect one inside it, so the window would report unavailability it never observed"
                    ),
                    &format!("{MIN_WINDOW_MS} or more"),
                );
            }
            Step::Expect {
                serializable_readers: Some(n),
                ..
            }
            | Step::Expect {
                members_answering: Some(n),
                ..
            } if *n > members => {
                return bad(
                    sp,
                    &field,
                    format!("expects {n} members but the cluster has {members}"),
                    &format!("0 to {members}"),
                );
            }
            Step::Snapshot { name, from } => {
                if let Some(t) = from {
                    check_target(
                        path,
                        src,
                        sp.clone(),
                        &format!("{field}.from"),
                        t,
                        members,
                        max_index,
                    )?;
                }
                snapshots.push(name.clone());
            }
            Step::Fault {
                target: Some(t), ..
            } => {
                check_target(
                    path,
                    src,
                    sp.clone(),
                    &format!("{field}.target"),
                    t,
                    members,
                    max_index,
                )?;
            }
            Step::Restore {
                snapshot,
                members: names,
                bump_revision,
            } => {
                if snapshots.is_empty() {
                    return bad(
                        sp,
                        &field,
                        "restore before any snapshot step".into(),
                        "a snapshot step earlier in the scenario",
                    );
                }
                if let Some(n) = snapshot
                    && !snapshots.iter().any(|s| s.as_deref() == Some(n.as_str()))
                {
                    return bad(
                        sp,
                        &format!("{field}.snapshot"),
                        format!("no earlier snapshot is named {n:?}"),
                        "the name of an earlier snapshot step",
                    );
                }
                if bump_revision.is_some()
                    && crate::cluster::image::Line::parse(s.cluster.version.get_ref()).ok()
                        == Some(crate::cluster::image::Line::V3_4)
                {
                    return bad(
                        sp,
                        &format!("{field}.bump_revision"),
                        "etcd 3.4 cannot bump revisions on restore".into(),
                        "cluster.version 3.5",
                    );
                }
                if let Some(names) = names {
                    if names.is_empty() || names.len() > crate::cluster::MAX_SIZE {
                        return bad(
                            sp,
                            &format!("{field}.members"),
                            format!("{} members", names.len()),
                            "1 to 9 member names",
                        );
                    }
                    for n in names {
                        let idx = n
                            .strip_prefix("etcd-")
                            .and_then(|i| i.parse::<usize>().ok())
                            .filter(|i| *i >= 1);
                        match idx {
                            Some(i) => max_index = max_index.max(i),
                            None => {
                                return bad(
                                    sp,
                                    &format!("{field}.members"),
                                    format!("{n:?} is not a member name"),
                                    "etcd-<i> with i >= 1",
                                );
                            }
                        }
                    }
                    members = names.len();
                }
            }
            Step::ReplaceMember { member } => {
                if member
                    .strip_prefix("etcd-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| (1..=max_index).contains(i))
                    .is_none()
                {
                    return bad(
                        sp,
                        &format!("{field}.member"),
                        format!("{member:?} is not a member"),
                        &format!("etcd-1 to etcd-{max_index}"),
                    );
                }
                max_index += 1;
            }
            Step::QuorumTable { sizes: Some(sz) } => {
                if let Err(e) = crate::chaos::observe::parse_sizes(sz) {
                    return bad(
                        sp,
                        &format!("{field}.sizes"),
                        e.to_string(),
                        "a range like 1-9 or a list like 1,3,5",
                    );
                }
            }
            _ => {}
        }
    }
    check_restores_are_verified(path, src, s)
}

/// A restore that no verify step follows proves nothing about the backup: refused at the
/// restore's location.
fn check_restores_are_verified(path: &str, src: &str, s: &Scenario) -> Result<()> {
    let kinds: Vec<&Step> = s.steps.iter().map(|st| st.get_ref()).collect();
    match unverified_restore(&kinds) {
        Some(i) => Err(invalid(
            path,
            src,
            s.steps[i].span(),
            &format!("steps[{i}] (restore)"),
            "no verify step follows this restore, so the drill would pass without checking what it restored",
            "a `kind = \"verify\"` step after every restore",
        )),
        None => Ok(()),
    }
}

/// The first restore step with no verify step after it (before the next restore).
pub fn unverified_restore(steps: &[&Step]) -> Option<usize> {
    let mut pending = None;
    for (i, st) in steps.iter().enumerate() {
        match st {
            Step::Restore { .. } => {
                if pending.is_some() {
                    return pending;
                }
                pending = Some(i);
            }
            Step::Verify {} => pending = None,
            _ => {}
        }
    }
    pending
}

fn check_target(
    path: &str,
    src: &str,
    sp: std::ops::Range<usize>,
    field: &str,
    t: &str,
    members: usize,
    max_index: usize,
) -> Result<()> {
    let target: Target = t.parse().map_err(|e: Error| {
        invalid(
            path,
            src,
            sp.clone(),
            field,
            &e.to_string(),
            "leader, follower, random, member:<i>, count:<k>",
        )
    })?;
    match target {
        Target::Count(k) if k == 0 || k > members => Err(invalid(
            path,
            src,
            sp,
            field,
            &format!("count:{k} but the cluster has {members} members"),
            &format!("count:1 to count:{members}"),
        )),
        Target::Member(i) if i == 0 || i > max_index => Err(invalid(
            path,
            src,
            sp,
            field,
            &format!("member:{i} does not exist"),
            &format!("member:1 to member:{max_index}"),
        )),
        _ => Ok(()),
    }
}

/// The JSON Schema of the scenario format.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).expect("schema serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "ok"
[cluster]
size = 3
[[steps]]
kind = "load"
[[steps]]
kind = "snapshot"
name = "s1"
[[steps]]
kind = "restore"
snapshot = "s1"
[[steps]]
kind = "verify"
"#;

    fn err(src: &str) -> String {
        parse("scenarios/bad.toml", src).unwrap_err().to_string()
    }

    #[test]
    fn every_restore_needs_its_own_verify() {
        let r = Step::Restore {
            snapshot: None,
            members: None,
            bump_revision: None,
        };
        let v = Step::Verify {};
        let w = Step::Wait { seconds: 1.0 };
        assert_eq!(unverified_restore(&[&r, &v]), None);
        assert_eq!(unverified_restore(&[&w, &r, &w, &v, &r, &v]), None);
        assert_eq!(unverified_restore(&[&r]), Some(0));
        assert_eq!(unverified_restore(&[&r, &v, &r, &w]), Some(2));
        // One verify after two restores checks only the second.
        assert_eq!(unverified_restore(&[&r, &r, &v]), Some(0));
    }

    #[test]
    fn a_good_scenario_parses() {
        let s = parse("good.toml", GOOD).unwrap();
        assert_eq!(*s.cluster.size.get_ref(), 3);
        assert_eq!(s.steps.len(), 4);
        assert_eq!(*s.repeat.get_ref(), 1);
    }

    #[test]
    fn every_kind_of_bad_input_is_refused_with_its_location() {
        let cases = [
            (
                "malformed",
                "name = \"x\"\n[cluster\nsize = 3\n".to_string(),
            ),
            (
                "unknown field",
                GOOD.replace("size = 3", "size = 3\ncolour = \"red\""),
            ),
            ("wrong type", GOOD.replace("size = 3", "size = \"three\"")),
            ("size 0", GOOD.replace("size = 3", "size = 0")),
            ("size 10", GOOD.replace("size = 3", "size = 10")),
            (
                "k > N",
                GOOD.replace(
                    "kind = \"load\"",
                    "kind = \"fault\"\nfault = \"permanent\"\ntarget = \"count:4\"",
                ),
            ),
            (
                "restore before snapshot",
                GOOD.replace("kind = \"snapshot\"\nname = \"s1\"", "kind = \"load\""),
            ),
            (
                "unknown snapshot",
                GOOD.replace("snapshot = \"s1\"", "snapshot = \"nightly\""),
            ),
            (
                "negative duration",
                GOOD.replace("kind = \"verify\"", "kind = \"wait\"\nseconds = -1.5"),
            ),
            (
                "negative gate",
                format!("{GOOD}\n[gates]\nmax_rto_s = -3\n"),
            ),
            (
                "unknown phase gate",
                format!("{GOOD}\n[gates.max_phase_s]\nteleport = 1.0\n"),
            ),
            (
                "unknown step kind",
                GOOD.replace("kind = \"verify\"", "kind = \"pray\""),
            ),
            (
                "unknown fault",
                GOOD.replace("kind = \"load\"", "kind = \"fault\"\nfault = \"meteor\""),
            ),
            (
                "expect nothing",
                GOOD.replace("kind = \"load\"", "kind = \"expect\"\nwindow_ms = 2000"),
            ),
            (
                "window shorter than an election",
                GOOD.replace(
                    "kind = \"load\"",
                    "kind = \"expect\"\nwritable = true\nwindow_ms = 200",
                ),
            ),
            (
                "restore never verified",
                GOOD.replace("kind = \"verify\"", "kind = \"wait\"\nseconds = 1"),
            ),
            (
                "bad target",
                GOOD.replace(
                    "kind = \"load\"",
                    "kind = \"fault\"\nfault = \"kill\"\ntarget = \"the-big-one\"",
                ),
            ),
        ];
        let mut all = String::new();
        for (what, src) in cases {
            let e = err(&src);
            assert!(
                e.starts_with("invalid input: scenarios/bad.toml:"),
                "{what}: {e}"
            );
            all.push_str(&format!("{what}:\n  {e}\n"));
        }
        insta::assert_snapshot!(all);
    }

    #[test]
    fn the_schema_names_every_step_kind() {
        let schema = json_schema().to_string();
        for k in [
            "load",
            "snapshot",
            "fault",
            "expect",
            "heal",
            "wait",
            "restore",
            "replace-member",
            "verify",
            "quorum-table",
        ] {
            assert!(schema.contains(&format!("\"{k}\"")), "schema lacks {k}");
        }
    }
}
