//! JUnit XML, the one report format every CI system reads.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{gate_actual, gate_value, one_line};
use crate::model::report::{CheckRecord, DrillReport, GateResult, Verdict};

/// JUnit XML: one suite named after the scenario, one test case per check
/// (`step<N> <check>`) and per gate (`gate <name>`), and a `run` case when the run stopped
/// with an error (an error) or its verdict is fail with no failed check or gate to show why
/// (a failure).
pub fn junit_xml(r: &DrillReport) -> Result<String, String> {
    let mut suite = TestSuite::new(r.scenario.as_str());
    suite.set_time(Duration::from_millis(
        r.finished_at_ms.saturating_sub(r.started_at_ms),
    ));
    for (k, v) in [
        ("verdict", r.verdict.as_str().to_string()),
        ("seed", r.seed.to_string()),
        ("repetition", r.repetition.to_string()),
        ("etcd_version", r.etcd_version.clone()),
        ("cluster_size", r.cluster_size.to_string()),
        ("tls", r.tls.to_string()),
        ("file", r.file.clone()),
    ] {
        suite.add_property(Property::new(k, v));
    }
    for c in &r.checks {
        suite.add_test_case(check_case(r, c));
    }
    // An interrupted run measured nothing to hold its gates to: one error, not failures.
    for g in r.gates.iter().filter(|_| r.verdict != Verdict::Interrupted) {
        suite.add_test_case(gate_case(r, g));
    }
    if let Some(tc) = run_case(r) {
        suite.add_test_case(tc);
    }

    let mut report = Report::new("etcd-drill");
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("serializing JUnit XML: {e}"))
}

fn check_case(r: &DrillReport, c: &CheckRecord) -> TestCase {
    let status = if c.passed {
        TestCaseStatus::success()
    } else {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(one_line(&c.detail))
            .set_type("check")
            .set_description(c.detail.as_str());
        st
    };
    // The workload's checks judge the whole run up to the step that stopped it (a restore
    // or a verify), not that step: filing them under it would blame the restore.
    let name = if c.name.starts_with("workload-") {
        format!("workload {}", c.name)
    } else {
        format!("step{} {}", c.step, c.name)
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(r.scenario.as_str());
    if let Some(s) = c.seconds {
        tc.set_time(Duration::from_secs_f64(s.max(0.0)));
    }
    tc
}

fn gate_case(r: &DrillReport, g: &GateResult) -> TestCase {
    let status = if g.passed {
        TestCaseStatus::success()
    } else {
        let msg = format!(
            "limit {}, actual {}",
            gate_value(g.name, g.limit),
            gate_actual(g)
        );
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
        st.set_message(msg).set_type("gate");
        st
    };
    let mut tc = TestCase::new(format!("gate {}", g.name), status);
    tc.set_classname(r.scenario.as_str());
    tc
}

/// The `run` case, so that CI shows a failed run red even when no check or gate failed:
/// the run stopped with an error, or the verdict is fail for a reason no case carries.
fn run_case(r: &DrillReport) -> Option<TestCase> {
    let unexplained_fail =
        !r.passed() && r.checks.iter().all(|c| c.passed) && r.gates.iter().all(|g| g.passed);
    let st = match &r.error {
        _ if r.verdict == Verdict::Interrupted => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            let why = r.error.as_deref().unwrap_or("interrupted by a signal");
            st.set_message(format!("interrupted before it finished: {}", one_line(why)))
                .set_type("interrupted");
            st
        }
        Some(err) => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(one_line(err))
                .set_type("error")
                .set_description(err.as_str());
            st
        }
        None if unexplained_fail => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("verdict is {}", r.verdict))
                .set_type("verdict");
            st
        }
        None => return None,
    };
    let mut tc = TestCase::new("run", st);
    tc.set_classname(r.scenario.as_str());
    Some(tc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::Verdict;
    use crate::render::fixtures::{fixture, passing};

    fn junit_counts(xml: &str) -> (usize, usize, usize, Vec<String>) {
        let report = Report::deserialize_from_str(xml)
            .unwrap_or_else(|e| panic!("not well-formed JUnit: {e}\n{xml}"));
        assert_eq!(report.test_suites.len(), 1);
        let suite = &report.test_suites[0];
        let (mut failures, mut errors) = (0, 0);
        for tc in &suite.test_cases {
            if let TestCaseStatus::NonSuccess { kind, .. } = &tc.status {
                match kind {
                    NonSuccessKind::Failure => failures += 1,
                    NonSuccessKind::Error => errors += 1,
                }
            }
        }
        assert_eq!(
            (suite.tests, suite.failures, suite.errors),
            (suite.test_cases.len(), failures, errors)
        );
        (
            suite.test_cases.len(),
            failures,
            errors,
            suite
                .test_cases
                .iter()
                .map(|t| t.name.to_string())
                .collect(),
        )
    }

    #[test]
    fn a_timed_check_carries_its_seconds_into_junit_and_json() {
        let mut r = fixture();
        r.checks[0].seconds = Some(1.25);
        let name = format!("step{} {}", r.checks[0].step, r.checks[0].name);
        let report = Report::deserialize_from_str(&junit_xml(&r).unwrap()).unwrap();
        let times: Vec<_> = report.test_suites[0]
            .test_cases
            .iter()
            .filter(|t| t.name.as_str().starts_with("step"))
            .map(|t| (t.name.to_string(), t.time))
            .collect();
        for (n, t) in &times {
            let want = (n == &name).then(|| std::time::Duration::from_millis(1250));
            assert_eq!(*t, want, "{n}: {times:?}");
        }
        // Untimed expectations stay out of report.json rather than claiming 0 s.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][0]["seconds"], 1.25);
        assert!(json["checks"][1].get("seconds").is_none(), "{json}");
    }

    #[test]
    fn junit_parses_back_with_one_case_per_check_and_gate() {
        let xml = junit_xml(&fixture()).unwrap();
        let report = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(report.test_suites[0].name.as_str(), "restore-3-quorum-loss");
        let (tests, failures, errors, names) = junit_counts(&xml);
        assert_eq!((tests, failures, errors), (11, 3, 0), "{xml}");
        assert!(
            names.contains(&"step7 revision>=snapshot".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"gate max_write_gap_s".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"run".to_string()), "{names:?}");

        // The failure carries the detail, escaped in the XML and intact once parsed.
        let tc = report.test_suites[0]
            .test_cases
            .iter()
            .find(|t| t.name.as_str() == "step7 revision>=snapshot")
            .unwrap();
        match &tc.status {
            TestCaseStatus::NonSuccess { message, .. } => assert_eq!(
                message.as_deref(),
                Some("revision 998 < snapshot revision 1003 & \"compacted\"")
            ),
            other => panic!("{other:?}"),
        }
        let tc = report.test_suites[0]
            .test_cases
            .iter()
            .find(|t| t.name.as_str() == "gate max_write_gap_s")
            .unwrap();
        match &tc.status {
            TestCaseStatus::NonSuccess { message, .. } => {
                assert_eq!(
                    message.as_deref(),
                    Some("limit 5.00 s, actual not measured")
                )
            }
            other => panic!("{other:?}"),
        }

        // The parser does reject broken XML.
        assert!(Report::deserialize_from_str(&xml.replacen("</testcase>", "", 1)).is_err());
    }

    #[test]
    fn junit_run_case_for_error_and_unexplained_fail() {
        let mut r = fixture();
        r.error = Some("restore: no leader within 30s\ncontainer etcd-2 exited (code 1)".into());
        let (tests, failures, errors, names) = junit_counts(&junit_xml(&r).unwrap());
        assert_eq!((tests, failures, errors), (12, 3, 1));
        assert_eq!(names.last().map(String::as_str), Some("run"));

        let (tests, failures, errors, _) = junit_counts(&junit_xml(&passing()).unwrap());
        assert_eq!((tests, failures, errors), (9, 0, 0));

        let mut r = passing();
        r.verdict = Verdict::Fail;
        let (tests, failures, errors, names) = junit_counts(&junit_xml(&r).unwrap());
        assert_eq!((tests, failures, errors), (10, 1, 0));
        assert_eq!(names.last().map(String::as_str), Some("run"));
    }

    #[test]
    fn an_interrupted_run_is_one_error_and_no_gate_failures() {
        let mut r = fixture();
        r.verdict = Verdict::Interrupted;
        r.error = Some("interrupted by a signal".into());
        let xml = junit_xml(&r).unwrap();
        let (tests, _, errors, names) = junit_counts(&xml);
        assert_eq!(errors, 1, "{xml}");
        assert_eq!(tests, r.checks.len() + 1, "{xml}");
        assert!(!names.iter().any(|n| n.starts_with("gate ")), "{names:?}");
        assert!(xml.contains("type=\"interrupted\""), "{xml}");
    }

    /// The workload's checks judge the run up to the step that stopped it: filed under that
    /// step (a restore) they would read as the restore's failures.
    #[test]
    fn workload_checks_are_their_own_cases_not_the_restores() {
        let mut r = passing();
        r.checks.push(CheckRecord {
            step: 7,
            check: crate::model::report::Check::new("workload-history", false, "not linearizable"),
        });
        let (_, _, _, names) = junit_counts(&junit_xml(&r).unwrap());
        assert!(
            names.contains(&"workload workload-history".to_string()),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n == "step7 workload-history"),
            "{names:?}"
        );
    }
}
