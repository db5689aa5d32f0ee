//! Progress on a terminal (a spinner) or as plain lines for CI logs.

use std::time::Duration;

/// Progress on a terminal (indicatif spinner) or plain lines for CI logs.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    scenario: String,
    total: usize,
}

impl Progress {
    pub(super) fn new(scenario: &str, total: usize, interactive: bool) -> Self {
        let bar = interactive.then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {prefix} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.set_prefix(scenario.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            scenario: scenario.into(),
            total,
        }
    }
    pub(super) fn step(&self, i: usize, title: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(i.saturating_sub(1) as u64);
                b.set_message(title.to_string());
            }
            None => eprintln!("[{}] step {i}/{}: {title}", self.scenario, self.total),
        }
    }
    pub(super) fn done(&self, i: usize, title: &str, ok: bool, secs: f64, detail: &str) {
        let line = format!(
            "[{}] step {}/{} {} {title} ({secs:.2}s): {detail}",
            self.scenario,
            i,
            self.total,
            if ok { "ok" } else { "FAILED" }
        );
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
