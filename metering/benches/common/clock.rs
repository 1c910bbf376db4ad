//! The benches' clock: wall time (criterion's default), or with `TOLLGATE_BENCH_CLOCK=cpu`
//! the bench thread's CPU time, so that figures per core stay meaningful on a machine
//! shared with other work (time spent descheduled is not counted).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use nix::time::{ClockId, clock_gettime};

/// Wall time or the thread's CPU time, chosen once from `TOLLGATE_BENCH_CLOCK`.
pub struct BenchClock {
    thread_cpu: bool,
    wall: WallTime,
}

impl BenchClock {
    pub fn from_env() -> Self {
        let thread_cpu = std::env::var("TOLLGATE_BENCH_CLOCK").is_ok_and(|value| value == "cpu");
        Self {
            thread_cpu,
            wall: WallTime,
        }
    }

    fn thread_cpu_now() -> Duration {
        clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
            .map(Duration::from)
            .unwrap_or_default()
    }
}

/// A reading: the wall clock's instant, or the thread's CPU time so far.
pub enum Reading {
    Wall(std::time::Instant),
    ThreadCpu(Duration),
}

impl Measurement for BenchClock {
    type Intermediate = Reading;
    type Value = Duration;

    fn start(&self) -> Reading {
        if self.thread_cpu {
            Reading::ThreadCpu(Self::thread_cpu_now())
        } else {
            Reading::Wall(std::time::Instant::now())
        }
    }
    fn end(&self, start: Reading) -> Duration {
        match start {
            Reading::Wall(instant) => instant.elapsed(),
            Reading::ThreadCpu(before) => Self::thread_cpu_now().saturating_sub(before),
        }
    }
    fn add(&self, first: &Duration, second: &Duration) -> Duration {
        *first + *second
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

/// Criterion with [`BenchClock`].
pub fn criterion() -> criterion::Criterion<BenchClock> {
    criterion::Criterion::default().with_measurement(BenchClock::from_env())
}
