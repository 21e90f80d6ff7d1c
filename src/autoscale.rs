//! `autodevops autoscale`: sizes the worker pool on queue depth.
//!
//! desired = clamp(ceil(pending / jobs_per_worker), min, max). Scaling up happens at once;
//! scaling down waits until `cooldown` has passed since the last change, so a queue that
//! drains and refills does not make the pool flap. The change is applied by a pluggable
//! command (`kubectl scale …`, `railway …`) with `{replicas}` substituted.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shared::db::Db;

#[derive(Debug, clap::Args)]
pub struct AutoscaleArgs {
    /// Fewest workers.
    #[arg(long, env = "AUTOSCALE_MIN", default_value_t = 1)]
    min: u32,
    /// Most workers.
    #[arg(long, env = "AUTOSCALE_MAX", default_value_t = 10)]
    max: u32,
    /// Pending jobs one worker is expected to absorb.
    #[arg(long, env = "JOBS_PER_WORKER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    jobs_per_worker: u32,
    /// Seconds after a change before the pool may shrink.
    #[arg(long, env = "AUTOSCALE_COOLDOWN_SECS", default_value_t = 300)]
    cooldown_secs: u64,
    /// Seconds between decisions (without --once).
    #[arg(long, env = "AUTOSCALE_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    interval_secs: u64,
    /// Shell command that applies a size; `{replicas}` is replaced by the number, e.g.
    /// "kubectl scale deployment/autodevops-worker --replicas={replicas}".
    #[arg(long, env = "AUTOSCALE_COMMAND", required_unless_present = "dry_run")]
    command: Option<String>,
    /// Remembers the last size and when it changed, across `--once` runs (cron).
    #[arg(long, env = "AUTOSCALE_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Print decisions without applying them.
    #[arg(long)]
    dry_run: bool,
    /// Decide once and exit.
    #[arg(long)]
    once: bool,
}

/// The last applied size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ScaleState {
    replicas: Option<u32>,
    changed_at: u64,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Scale,
    Hold,
    Cooldown,
}

#[derive(Debug, Serialize)]
struct Decision {
    pending: u64,
    desired: u32,
    current: Option<u32>,
    action: Action,
    applied: bool,
}

fn desired(pending: u64, a: &AutoscaleArgs) -> u32 {
    let wanted = pending.div_ceil(u64::from(a.jobs_per_worker));
    u32::try_from(wanted).unwrap_or(u32::MAX).clamp(a.min, a.max)
}

fn decide(desired: u32, state: ScaleState, now: u64, cooldown: u64) -> Action {
    match state.replicas {
        Some(current) if current == desired => Action::Hold,
        Some(current) if desired < current && now.saturating_sub(state.changed_at) < cooldown => Action::Cooldown,
        _ => Action::Scale,
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn load_state(path: Option<&PathBuf>) -> anyhow::Result<ScaleState> {
    match path {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not an autoscale state file", p.display()))
        }
        _ => Ok(ScaleState::default()),
    }
}

fn apply(command: &str, replicas: u32) -> anyhow::Result<()> {
    let cmd = command.replace("{replicas}", &replicas.to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(status.success(), "scale command {cmd:?} failed with {status}");
    Ok(())
}

/// Runs the autoscaler (once, or every interval until SIGINT/SIGTERM).
pub async fn run(args: AutoscaleArgs, db: &Db, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min <= args.max,
        "--min ({}) is larger than --max ({})",
        args.min,
        args.max
    );
    let mut state = load_state(args.state_file.as_ref())?;
    loop {
        let depth = shared::db::jobs::depth(&db.conn).await.context("reading queue depth")?;
        let pending: u64 = depth.values().map(|d| d.pending).sum();
        let want = desired(pending, &args);
        let now = unix_now();
        let action = decide(want, state, now, args.cooldown_secs);
        let mut applied = false;
        if action == Action::Scale && !args.dry_run {
            apply(args.command.as_deref().unwrap_or_default(), want)?;
            state = ScaleState {
                replicas: Some(want),
                changed_at: now,
            };
            if let Some(p) = &args.state_file {
                std::fs::write(p, serde_json::to_string(&state)?)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            applied = true;
        }
        let decision = Decision {
            pending,
            desired: want,
            current: state.replicas,
            action,
            applied,
        };
        println!("{}", serde_json::to_string(&decision)?);
        if args.once {
            return Ok(());
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(args.interval_secs)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(min: u32, max: u32, per: u32) -> AutoscaleArgs {
        AutoscaleArgs {
            min,
            max,
            jobs_per_worker: per,
            cooldown_secs: 60,
            interval_secs: 30,
            command: None,
            state_file: None,
            dry_run: true,
            once: true,
        }
    }

    #[test]
    fn desired_is_clamped_ceiling_of_pending_per_worker() {
        assert_eq!(desired(0, &args(1, 10, 20)), 1);
        assert_eq!(desired(1, &args(0, 10, 20)), 1);
        assert_eq!(desired(0, &args(0, 10, 20)), 0);
        assert_eq!(desired(500, &args(1, 30, 20)), 25);
        assert_eq!(desired(501, &args(1, 30, 20)), 26);
        assert_eq!(desired(500, &args(1, 10, 20)), 10);
        assert_eq!(desired(u64::MAX, &args(1, 10, 1)), 10);
    }

    #[test]
    fn scaling_down_waits_for_the_cooldown_scaling_up_does_not() {
        let s = ScaleState {
            replicas: Some(10),
            changed_at: 1_000,
        };
        assert_eq!(decide(10, s, 1_010, 60), Action::Hold);
        assert_eq!(decide(20, s, 1_010, 60), Action::Scale);
        assert_eq!(decide(5, s, 1_010, 60), Action::Cooldown);
        assert_eq!(decide(5, s, 1_060, 60), Action::Scale);
        assert_eq!(decide(5, ScaleState::default(), 0, 60), Action::Scale);
    }
}
