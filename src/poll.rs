//! The one way the harness waits for something that only becomes true later (a member that
//! answers, a leader, a reconfiguration etcd accepts, an exec's exit code): try, and until
//! it is ready or the time is up, sleep and try again. Each caller says only what "ready"
//! means and what to report when it never is.

use std::time::Duration;

use tokio::time::Instant;

/// What one attempt found.
#[derive(Debug)]
pub enum Attempt<T, E> {
    Ready(T),
    /// Not yet, and why: the last attempt's reason is what a timeout reports.
    NotYet(E),
    /// Waiting longer cannot help; stop now with this reason.
    Fatal(E),
}

/// Why [`until`] stopped without a result.
#[derive(Debug, PartialEq)]
pub struct GaveUp<E> {
    /// From the start of the first attempt to the end of the last.
    pub waited: Duration,
    /// The last attempt's reason.
    pub reason: E,
    /// An attempt was [`Attempt::Fatal`]; otherwise time ran out.
    pub fatal: bool,
}

/// Runs `attempt` until it is ready, sleeping `every` between attempts. It always attempts
/// at least once, and gives up after the first attempt that ends `timeout` or more after
/// the start, so the reason reported is never older than one attempt.
///
/// `attempt` makes a new future each time rather than being an async closure: the future
/// of a caller awaiting an `AsyncFnMut` is not provably `Send` (a compiler limitation with
/// higher-ranked lifetimes), and the cluster code runs in spawned tasks.
pub async fn until<T, E, F, Fut>(
    timeout: Duration,
    every: Duration,
    mut attempt: F,
) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let t0 = Instant::now();
    loop {
        let (reason, fatal) = match attempt().await {
            Attempt::Ready(v) => return Ok(v),
            Attempt::NotYet(e) => (e, false),
            Attempt::Fatal(e) => (e, true),
        };
        let waited = t0.elapsed();
        if fatal || waited >= timeout {
            return Err(GaveUp {
                waited,
                reason,
                fatal,
            });
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn ready_at_once_is_one_attempt() {
        let mut n = 0;
        let r: Result<_, GaveUp<()>> = until(Duration::from_secs(5), TICK, || {
            n += 1;
            async { Attempt::Ready(7) }
        })
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn ready_after_retries() {
        let mut n = 0;
        let r: Result<_, GaveUp<String>> = until(Duration::from_secs(5), TICK, || {
            n += 1;
            let n = n;
            async move {
                if n < 4 {
                    Attempt::NotYet(format!("try {n}"))
                } else {
                    Attempt::Ready(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(4));
    }

    #[tokio::test]
    async fn a_timeout_keeps_the_last_reason_and_the_time_waited() {
        let mut n = 0;
        let timeout = Duration::from_millis(30);
        let r: Result<(), _> = until(timeout, TICK, || {
            n += 1;
            std::future::ready(Attempt::NotYet(n))
        })
        .await;
        let gave_up = r.unwrap_err();
        assert!(!gave_up.fatal);
        assert!(gave_up.waited >= timeout, "{:?}", gave_up.waited);
        assert!(n > 1, "retried until the time was up");
        assert_eq!(gave_up.reason, n, "the last attempt's reason");
    }

    #[tokio::test]
    async fn a_zero_timeout_still_attempts_once() {
        let mut n = 0;
        let r: Result<(), _> = until(Duration::ZERO, TICK, || {
            n += 1;
            std::future::ready(Attempt::NotYet("no"))
        })
        .await;
        assert_eq!(r.unwrap_err().reason, "no");
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn fatal_stops_at_once() {
        let mut n = 0;
        let timeout = Duration::from_secs(60);
        let r: Result<(), _> = until(timeout, TICK, || {
            n += 1;
            std::future::ready(if n == 1 {
                Attempt::NotYet("transient")
            } else {
                Attempt::Fatal("refused")
            })
        })
        .await;
        let gave_up = r.unwrap_err();
        assert!(gave_up.fatal);
        assert_eq!(gave_up.reason, "refused");
        assert_eq!(n, 2, "no attempt after the fatal one");
        assert!(gave_up.waited < timeout);
    }
}
