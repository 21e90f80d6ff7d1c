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

    /// The apalis contract broken by `IntervalStrategy`: after a tick, nobody polls the strategy
    /// again (the fetch completed in the same poll and the worker parked), and the worker must
    /// still be woken one period later.
    #[tokio::test(start_paused = true)]
    async fn a_tick_leaves_the_next_one_armed() {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut strategy = WakeEvery::new(Duration::from_millis(250));
        let snapshot = PollSnapshot::default();

        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        for n in 1..=5 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(counter.0.load(Ordering::SeqCst), n, "tick {n} woke the worker");
            assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        }
    }

    /// Why this module exists: apalis's own interval strategy, polled once at a tick, never
    /// wakes the worker again. If this starts failing, apalis has fixed it upstream.
    #[tokio::test]
    async fn apalis_interval_strategy_loses_its_wakeup_after_a_tick() {
        use apalis::prelude::IntervalStrategy;
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut strategy = IntervalStrategy::new(Duration::from_millis(20));
        let snapshot = PollSnapshot::default();
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_ready());
        tokio::time::sleep(Duration::from_millis(200)).await; // ten periods
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "no wakeup after the tick");
    }

    #[tokio::test(start_paused = true)]
    async fn no_tick_before_the_period() {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut strategy = WakeEvery::new(Duration::from_secs(1));
        let snapshot = PollSnapshot::default();
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(strategy.poll_drive(&mut cx, &snapshot).is_pending());
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    }
}
