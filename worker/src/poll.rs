//! How an idle apalis worker is woken to look at its queue again.
//!
//! apalis 1.0's `poll_with_interval` replaces its timer when it fires but does not poll the new
//! one, so the new timer holds no waker. When the fetch that follows completes within the same
//! poll (an empty queue answers in microseconds on loopback), the worker parks with nothing
//! left to wake it but its heartbeat: it looks at its queue once per heartbeat interval instead
//! of every few hundred milliseconds. With two worker processes on one queue, the other process
//! then takes every job (issue #5). [`WakeEvery`] always leaves a registered timer behind.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use tokio::time::{Instant, Sleep};

/// Wakes the worker every `period`, whatever happened in between.
#[derive(Debug)]
pub struct WakeEvery {
    period: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl WakeEvery {
    pub fn new(period: Duration) -> Self {
        Self { period, timer: None }
    }
}

/// A copy starts its own timer (apalis clones the backend for every worker run).
impl Clone for WakeEvery {
    fn clone(&self) -> Self {
        Self::new(self.period)
    }
}

impl PollStrategy for WakeEvery {
    /// `Ready` when the period has elapsed since the last tick; in both cases the next tick
    /// is armed with this context's waker before returning.
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(period)));
        let mut ticked = false;
        while timer.as_mut().poll(cx).is_ready() {
            ticked = true;
            timer.as_mut().reset(Instant::now() + period);
        }
        if ticked { Poll::Ready(Some(())) } else { Poll::Pending }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `strategy` with a waker that counts its wakeups.
    struct Driver<S> {
        wakeups: Arc<CountingWaker>,
        waker: Waker,
        strategy: S,
    }

    impl<S: PollStrategy> Driver<S> {
        fn new(strategy: S) -> Self {
            let wakeups = Arc::new(CountingWaker(AtomicUsize::new(0)));
            let waker = Waker::from(wakeups.clone());
            Self {
                wakeups,
                waker,
                strategy,
            }
        }

        fn poll(&mut self) -> Poll<Option<()>> {
            let mut cx = Context::from_waker(&self.waker);
            self.strategy.poll_drive(&mut cx, &PollSnapshot::default())
        }

        fn wakeups(&self) -> usize {
            self.wakeups.0.load(Ordering::SeqCst)
        }
    }

    /// The apalis contract broken by `IntervalStrategy`: after a tick, nobody polls the strategy
    /// again (the fetch completed in the same poll and the worker parked), and the worker must
    /// still be woken one period later.
    #[tokio::test(start_paused = true)]
    async fn a_tick_leaves_the_next_one_armed() {
        let mut d = Driver::new(WakeEvery::new(Duration::from_millis(250)));
        assert!(d.poll().is_pending());
        for n in 1..=5 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(d.wakeups(), n, "tick {n} woke the worker");
            assert!(d.poll().is_ready());
        }
    }

    /// Why this module exists: apalis's own interval strategy, polled once at a tick, never
    /// wakes the worker again. If this starts failing, apalis has fixed it upstream.
    #[tokio::test]
    async fn apalis_interval_strategy_loses_its_wakeup_after_a_tick() {
        let mut d = Driver::new(apalis::prelude::IntervalStrategy::new(Duration::from_millis(20)));
        assert!(d.poll().is_pending());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(d.wakeups(), 1);
        assert!(d.poll().is_ready());
        tokio::time::sleep(Duration::from_millis(200)).await; // ten periods
        assert_eq!(d.wakeups(), 1, "no wakeup after the tick");
    }

    #[tokio::test(start_paused = true)]
    async fn no_tick_before_the_period() {
        let mut d = Driver::new(WakeEvery::new(Duration::from_secs(1)));
        assert!(d.poll().is_pending());
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(d.poll().is_pending());
        assert_eq!(d.wakeups(), 0);
    }
}
