//! Scenario validation: everything that can be known before a container exists is checked
//! here, each refusal located at `file:line:column` with the field and what is allowed.

use std::ops::Range;

use toml::Spanned;

use super::Invalid;
use super::etcd::{Line, MAX_SIZE, MIN_SIZE, check_etcd_args, member_index};
use super::expect::parse_duration;
use super::fault::Target;
use super::report::RtoPhase;
use super::scenario::{BackupExpect, MIN_WINDOW_MS, Scenario, Step};
use super::source::Source as BackupSource;
use super::table::parse_sizes;
use super::walk::{Refusal, Walk};

/// `file:line:column` for a byte offset.
pub(super) fn location(path: &str, src: &str, offset: usize) -> String {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    format!("{path}:{line}:{col}")
}

/// Where `key = value` stands in the table of `region` (its header line first): the key's
/// offset and its value's. Sub-tables and the next table end the search.
pub(super) fn key_in(src: &str, region: Range<usize>, key: &str) -> Option<(usize, usize)> {
    let mut offset = region.start;
    for line in src.get(region.clone())?.split_inclusive('\n') {
        let text = line.trim_start();
        if offset > region.start && text.starts_with('[') {
            return None;
        }
        let quoted = format!("\"{key}\"");
        let rest = text
            .strip_prefix(key)
            .or_else(|| text.strip_prefix(&quoted));
        if let Some(value) = rest.and_then(|r| r.trim_start().strip_prefix('=')) {
            let key_at = offset + (line.len() - text.len());
            let value_at = offset + line.len() - value.trim_start().len();
            return Some((key_at, value_at));
        }
        offset += line.len();
    }
    None
}

/// The line and column a refusal of `path` begins with (`path:line:column: …`).
fn position(path: &str, refusal: &str) -> (usize, usize) {
    let mut numbers = refusal
        .strip_prefix(path)
        .unwrap_or_default()
        .split(':')
        .skip(1)
        .map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// The text being validated, to locate refusals in.
#[derive(Clone, Copy)]
struct Source<'a> {
    path: &'a str,
    src: &'a str,
}

impl Source<'_> {
    fn invalid(&self, span: Range<usize>, field: &str, problem: &str, allowed: &str) -> Invalid {
        Invalid::Input(format!(
            "{}: {field}: {problem}; allowed: {allowed}",
            location(self.path, self.src, span.start)
        ))
    }

    fn non_negative(&self, v: &Spanned<f64>, field: &str) -> Result<(), Invalid> {
        let x = *v.get_ref();
        if x.is_finite() && x >= 0.0 {
            return Ok(());
        }
        let problem = format!("{x} is not a duration");
        Err(self.invalid(v.span(), field, &problem, "a number of seconds >= 0"))
    }
}

/// Every problem of the scenario at once, so one `validate` shows them all: the first of
/// each section and of each step.
pub(super) fn check(path: &str, src: &str, s: &Scenario) -> Result<(), Invalid> {
    let at = Source { path, src };
    let mut problems: Vec<Invalid> = [
        check_header(at, s),
        check_gates(at, s),
        check_workload(at, s),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    let size_ok = (MIN_SIZE..=MAX_SIZE).contains(s.cluster.size.get_ref());
    problems.extend(check_steps(at, s, size_ok));
    problems.extend(check_restores_are_verified(at, s).err());
    // In the order they stand in the file, as an editor walks them.
    problems.sort_by_key(|p| position(path, &message(p)));
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        n => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("  {}", message(p)))
                .collect();
            Err(Invalid::Input(format!(
                "{n} problems in {path}:\n{}",
                lines.join("\n")
            )))
        }
    }
}

fn check_header(at: Source<'_>, s: &Scenario) -> Result<(), Invalid> {
    let usable = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if s.name.is_empty() || !s.name.chars().all(usable) {
        let problem = format!("{:?} is not a usable name", s.name);
        return Err(at.invalid(0..0, "name", &problem, "letters, digits, '-' and '_'"));
    }
    let size = *s.cluster.size.get_ref();
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        let problem = format!("{size} is out of range");
        return Err(at.invalid(s.cluster.size.span(), "cluster.size", &problem, "1 to 9"));
    }
    if let Err(e) = check_etcd_args(s.cluster.etcd_args.get_ref()) {
        let span = s.cluster.etcd_args.span();
        let allowed = "your own flags (--quota-backend-bytes=…, --auto-compaction-retention=…), not the harness's";
        return Err(at.invalid(span, "cluster.etcd_args", &message(&e), allowed));
    }
    if let Err(e) = Line::parse(s.cluster.version.get_ref()) {
        let span = s.cluster.version.span();
        let allowed = "\"3.5\", \"3.4\" or a full version";
        return Err(at.invalid(span, "cluster.version", &message(&e), allowed));
    }
    let repeat = *s.repeat.get_ref();
    if !(1..=100).contains(&repeat) {
        let problem = format!("{repeat} is out of range");
        return Err(at.invalid(s.repeat.span(), "repeat", &problem, "1 to 100"));
    }
    if *s.dataset.keys.get_ref() == 0 {
        let span = s.dataset.keys.span();
        return Err(at.invalid(span, "dataset.keys", "0 keys", "1 or more"));
    }
    let vs = *s.dataset.value_size.get_ref();
    if vs == 0 || vs > 1 << 20 {
        let (span, problem) = (s.dataset.value_size.span(), format!("{vs} bytes"));
        return Err(at.invalid(span, "dataset.value_size", &problem, "1 to 1048576"));
    }
    Ok(())
}

fn check_workload(at: Source<'_>, s: &Scenario) -> Result<(), Invalid> {
    let Some(w) = &s.workload else {
        return Ok(());
    };
    let clients = *w.clients.get_ref();
    if !(1..=64).contains(&clients) {
        let problem = format!("{clients} is out of range");
        return Err(at.invalid(w.clients.span(), "workload.clients", &problem, "1 to 64"));
    }
    let keys = *w.keys.get_ref();
    if !(1..=1000).contains(&keys) {
        let problem = format!("{keys} is out of range");
        return Err(at.invalid(w.keys.span(), "workload.keys", &problem, "1 to 1000"));
    }
    let watchers = *w.watchers.get_ref();
    if watchers > 8 {
        let problem = format!("{watchers} is out of range");
        return Err(at.invalid(w.watchers.span(), "workload.watchers", &problem, "0 to 8"));
    }
    let rate = *w.rate.get_ref();
    if !(1.0..=5000.0).contains(&rate) || w.min_rate() > rate || w.min_rate() < 0.0 {
        let problem = format!("rate {rate} with min_rate {}", w.min_rate());
        let allowed = "a rate of 1 to 5000 ops/s, and min_rate from 0 to the rate";
        return Err(at.invalid(w.rate.span(), "workload.rate", &problem, allowed));
    }
    Ok(())
}

fn check_gates(at: Source<'_>, s: &Scenario) -> Result<(), Invalid> {
    if let Some(g) = &s.gates.max_rto_s {
        at.non_negative(g, "gates.max_rto_s")?;
    }
    if let Some(g) = &s.gates.max_write_gap_s {
        at.non_negative(g, "gates.max_write_gap_s")?;
    }
    for (phase, g) in &s.gates.max_phase_s {
        let field = format!("gates.max_phase_s.{phase}");
        if RtoPhase::parse(phase).is_none() {
            let allowed: Vec<&str> = RtoPhase::ALL.iter().map(|p| p.as_str()).collect();
            return Err(at.invalid(g.span(), &field, "unknown phase", &allowed.join(", ")));
        }
        at.non_negative(g, &field)?;
    }
    Ok(())
}

/// What exists at a point of the scenario, as the runner will have it: the members and the
/// states they can be in, and the snapshots taken. A restore before any snapshot or a fault
/// no member is eligible for is refused now rather than mid-drill.
struct Roster {
    walk: Walk,
    snapshots: Vec<Option<String>>,
}

/// The first problem of each step. Once a step that changes the members is refused the
/// walk no longer knows what the run would see, and stops judging members (until a restore
/// names them), so one mistake is not reported again at every step after it.
fn check_steps(at: Source<'_>, s: &Scenario, size_ok: bool) -> Vec<Invalid> {
    if s.steps.is_empty() {
        let allowed = "at least one [[steps]] table";
        return vec![at.invalid(0..0, "steps", "no steps", allowed)];
    }
    let line = Line::parse(s.cluster.version.get_ref()).ok();
    let mut roster = Roster {
        walk: Walk::new(*s.cluster.size.get_ref()),
        snapshots: vec![],
    };
    if !size_ok {
        roster.walk.forget();
    }
    let mut problems = vec![];
    for (i, step) in s.steps.iter().enumerate() {
        let at = StepAt {
            src: at,
            span: step.span(),
            field: step_name(i, step.get_ref()),
        };
        if let Err(e) = check_step(&at, step.get_ref(), &mut roster, line) {
            problems.push(e);
            match step.get_ref() {
                Step::Fault { .. } => roster.walk.forget_states(),
                Step::Restore { .. } | Step::ReplaceMember { .. } => roster.walk.forget(),
                _ => {}
            }
        }
    }
    problems
}

/// A step as messages name it: numbered from 1 as the console counts, with its kind (and a
/// fault's kind), e.g. `step 5 (fault permanent)`.
pub(super) fn step_name(i: usize, step: &Step) -> String {
    match step {
        Step::Fault { fault, .. } => format!("step {} (fault {fault})", i + 1),
        _ => format!("step {} ({})", i + 1, step.kind()),
    }
}

/// One step's place in the text, and its field name for messages.
struct StepAt<'a> {
    src: Source<'a>,
    /// toml's span of a `[[steps]]` table: its header only, so fields are looked for after it.
    span: Range<usize>,
    field: String,
}

impl StepAt<'_> {
    /// A refusal of the step itself (`suffix` "", at its header) or of one of its fields
    /// (".target", at the field's value).
    fn bad(&self, suffix: &str, problem: &str, allowed: &str) -> Invalid {
        let field = format!("{}{suffix}", self.field);
        let key = suffix.trim_start_matches('.').split('.').next();
        let at = key
            .filter(|k| !k.is_empty())
            .and_then(|k| key_in(self.src.src, self.span.start..self.src.src.len(), k))
            .map_or(self.span.start, |(_, value)| value);
        self.src.invalid(at..at, &field, problem, allowed)
    }

    fn refused(&self, suffix: &str, r: Refusal) -> Invalid {
        self.bad(suffix, &r.problem, &r.allowed)
    }
}

fn check_step(
    at: &StepAt<'_>,
    step: &Step,
    roster: &mut Roster,
    line: Option<Line>,
) -> Result<(), Invalid> {
    match step {
        Step::Load { keys: Some(0) } => Err(at.bad(".keys", "keys = 0", "1 or more")),
        Step::Wait { seconds } if !seconds.is_finite() || *seconds < 0.0 => {
            let problem = format!("{seconds} is not a duration");
            Err(at.bad(".seconds", &problem, "a number of seconds >= 0"))
        }
        Step::Expect { .. } => check_expect(at, step, roster.walk.members().map(<[_]>::len)),
        Step::Snapshot {
            name,
            from,
            command,
            timeout_s,
        } => {
            // Recorded first: a later restore of it is not refused for this step's mistake.
            roster.snapshots.push(name.clone());
            if let Some(t) = from {
                let target = parse_target(at, ".from", t)?;
                let walk = &roster.walk;
                walk.snapshot_from(&target)
                    .map_err(|r| at.refused(".from", r))?;
            }
            if from.is_some() && command.is_some() {
                let problem =
                    "from and command both given: a backup command chooses its own endpoint";
                return Err(at.bad(
                    "",
                    problem,
                    "one of from (etcd-drill saves the snapshot) or command (yours does)",
                ));
            }
            check_command(at, command.as_deref(), *timeout_s)
        }
        Step::Exec { command, timeout_s } => check_command(at, Some(command), *timeout_s),
        Step::Fault { fault, target } => {
            let target = parse_target(at, ".target", target.as_deref().unwrap_or("random"))?;
            let walk = &mut roster.walk;
            walk.fault(*fault, &target)
                .map_err(|r| at.refused(".target", r))
        }
        Step::Heal {} => {
            roster.walk.heal();
            Ok(())
        }
        Step::Restore {
            snapshot,
            members,
            bump_revision,
            source,
            backup,
        } => {
            check_source(at, snapshot.as_deref(), source.as_deref(), backup.as_ref())?;
            if source.is_some() {
                // A backup of yours needs no snapshot step before it.
                roster.snapshots.push(None);
            }
            let bumps_on_3_4 = bump_revision.is_some() && line == Some(Line::V3_4);
            check_restore(
                at,
                snapshot.as_deref(),
                bumps_on_3_4,
                members.as_deref(),
                roster,
            )
        }
        Step::ReplaceMember { member } => {
            let Some(i) = member_index(member) else {
                let problem = format!("{member:?} is not a member name");
                return Err(at.bad(".member", &problem, "etcd-<i> with i >= 1"));
            };
            let walk = &mut roster.walk;
            walk.replace(i).map_err(|r| at.refused(".member", r))
        }
        Step::QuorumTable { sizes: Some(sz) } => match parse_sizes(sz) {
            Ok(_) => Ok(()),
            Err(e) => {
                let allowed = "a range like 1-9 or a list like 1,3,5";
                Err(at.bad(".sizes", &message(&e), allowed))
            }
        },
        _ => Ok(()),
    }
}

fn check_source(
    at: &StepAt<'_>,
    snapshot: Option<&str>,
    source: Option<&str>,
    backup: Option<&BackupExpect>,
) -> Result<(), Invalid> {
    match (snapshot, source) {
        (Some(_), Some(_)) => {
            let problem = "snapshot and source both given";
            return Err(at.bad(
                "",
                problem,
                "one of snapshot (taken by this drill) or source (yours)",
            ));
        }
        (_, Some(src)) => {
            BackupSource::parse(src).map_err(|e| {
                at.bad(
                    ".source",
                    &message(&e),
                    "a path, s3://bucket/key or s3://bucket/prefix/",
                )
            })?;
        }
        (_, None) if backup.is_some() => {
            return Err(at.bad(
                ".backup",
                "expectations of a backup the drill took itself",
                "backup only with source",
            ));
        }
        _ => {}
    }
    if let Some(b) = backup {
        if b.min_keys == Some(0) {
            return Err(at.bad(".backup.min_keys", "0 expects nothing", "1 or more"));
        }
        if let Some(age) = &b.max_age {
            parse_duration(age)
                .map_err(|e| at.bad(".backup.max_age", &message(&e), "a duration like 26h"))?;
        }
    }
    Ok(())
}

fn check_command(
    at: &StepAt<'_>,
    command: Option<&str>,
    timeout_s: Option<f64>,
) -> Result<(), Invalid> {
    if command.is_some_and(|c| c.trim().is_empty()) {
        return Err(at.bad(".command", "an empty command", "a shell command line"));
    }
    if let Some(t) = timeout_s
        && !(t.is_finite() && t > 0.0)
    {
        let problem = format!("{t} is not a timeout");
        return Err(at.bad(".timeout_s", &problem, "a number of seconds > 0"));
    }
    Ok(())
}

/// `members`: how many the cluster has at this step, when the walk knows.
fn check_expect(at: &StepAt<'_>, step: &Step, members: Option<usize>) -> Result<(), Invalid> {
    let Step::Expect {
        writable,
        leader,
        serializable_readers,
        members_answering,
        window_ms,
    } = step
    else {
        return Ok(());
    };
    if writable.is_none()
        && leader.is_none()
        && serializable_readers.is_none()
        && members_answering.is_none()
    {
        return Err(at.bad(
            "",
            "expects nothing, so it can observe nothing and prove nothing",
            "at least one of writable, leader, serializable_readers, members_answering",
        ));
    }
    if let Some(w) = window_ms
        && *w < MIN_WINDOW_MS
    {
        let problem = format!(
            "{w} ms is shorter than etcd's election timeout (1000 ms): a cluster that lost its leader cannot elect one inside it, so the window would report unavailability it never observed"
        );
        return Err(at.bad(".window_ms", &problem, &format!("{MIN_WINDOW_MS} or more")));
    }
    let Some(members) = members else {
        return Ok(());
    };
    for n in [serializable_readers, members_answering]
        .into_iter()
        .flatten()
    {
        if *n > members {
            let problem = format!("expects {n} members but the cluster has {members}");
            return Err(at.bad("", &problem, &format!("0 to {members}")));
        }
    }
    Ok(())
}

fn check_restore(
    at: &StepAt<'_>,
    snapshot: Option<&str>,
    bumps_on_3_4: bool,
    names: Option<&[String]>,
    roster: &mut Roster,
) -> Result<(), Invalid> {
    if roster.snapshots.is_empty() {
        let allowed = "a snapshot step earlier in the scenario";
        return Err(at.bad("", "restore before any snapshot step", allowed));
    }
    if let Some(n) = snapshot
        && !roster.snapshots.iter().any(|s| s.as_deref() == Some(n))
    {
        let problem = format!("no earlier snapshot is named {n:?}");
        return Err(at.bad(
            ".snapshot",
            &problem,
            "the name of an earlier snapshot step",
        ));
    }
    if bumps_on_3_4 {
        let problem = "etcd 3.4 cannot bump revisions on restore";
        return Err(at.bad(".bump_revision", problem, "cluster.version 3.5"));
    }
    let Some(names) = names else {
        roster.walk.restore(None);
        return Ok(());
    };
    if names.is_empty() || names.len() > MAX_SIZE {
        let problem = format!("{} members", names.len());
        return Err(at.bad(".members", &problem, "1 to 9 member names"));
    }
    let mut indices = vec![];
    for n in names {
        let Some(i) = member_index(n) else {
            let problem = format!("{n:?} is not a member name");
            return Err(at.bad(".members", &problem, "etcd-<i> with i >= 1"));
        };
        indices.push(i);
    }
    roster.walk.restore(Some(indices));
    Ok(())
}

fn parse_target(at: &StepAt<'_>, suffix: &str, t: &str) -> Result<Target, Invalid> {
    t.parse().map_err(|e: Invalid| {
        let allowed = "leader, follower, random, member:<i>, count:<k>";
        at.bad(suffix, &message(&e), allowed)
    })
}

/// The problem an inner refusal names, without its "invalid input:" prefix (the outer
/// message has one already).
fn message(e: &Invalid) -> String {
    match e {
        Invalid::Input(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A restore that no verify step follows proves nothing about the backup: refused at the
/// restore's location.
fn check_restores_are_verified(at: Source<'_>, s: &Scenario) -> Result<(), Invalid> {
    let kinds: Vec<&Step> = s.steps.iter().map(|st| st.get_ref()).collect();
    match unverified_restore(&kinds) {
        Some(i) => Err(at.invalid(
            s.steps[i].span(),
            &step_name(i, s.steps[i].get_ref()),
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
