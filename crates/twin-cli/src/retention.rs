//! `urbantwin retention`: list, set and delete the retention and downsampling policies of a store, and apply them
//! once (`apply`, for cron on a store no server runs the policies for, or to catch up at once).

use anyhow::{anyhow, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use twin_model::Context;
use twin_store::RetentionPolicy;

#[derive(Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Print the policies (JSON).
    List {
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Create or replace a policy from JSON (text, or @FILE), e.g.
    /// '{"id": "air", "entityType": "AirQualityObserved", "keepRaw": "P30D",
    /// "levels": [{"period": "PT1H", "keep": "P5Y"}, {"period": "P1D"}]}'. Entity types and attributes are
    /// NGSI-LD terms of the core context, or full IRIs.
    Set {
        policy: String,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Delete a policy (the aggregates it made stay).
    Delete {
        id: String,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Apply the policies now: downsample and delete what is past its time.
    Apply {
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
        /// Measure the policies from this time instead of now (RFC 3339).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        /// Raw instances (or buckets) per transaction.
        #[arg(long, default_value_t = twin_store::retention::CHUNK)]
        chunk: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: RetentionArgs) -> Result<()> {
    match args.command {
        RetentionCommand::List { db } => {
            let store = crate::open_store(&db).await?;
            let ctx = Context::core();
            let mut all = store
                .list_retention_policies()
                .await
                .map_err(|e| anyhow!("{e}"))?;
            for p in &mut all {
                p.entity_type = p.entity_type.take().map(|t| ctx.compact(&t));
                p.attribute = p.attribute.take().map(|a| ctx.compact(&a));
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        RetentionCommand::Set { policy, db } => {
            let text = match policy.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
                }
                None => policy,
            };
            let mut p: RetentionPolicy =
                serde_json::from_str(&text).context("invalid retention policy")?;
            let ctx = Context::core();
            p.entity_type = p.entity_type.map(|t| ctx.expand(&t));
            p.attribute = p.attribute.map(|a| ctx.expand(&a));
            p.plan().map_err(|e| anyhow!("{}", e.detail))?;
            let store = crate::open_store(&db).await?;
            let id = p.id.clone();
            let created = store
                .put_retention_policy(p)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!(
                "retention policy {id} {}",
                if created { "created" } else { "replaced" }
            );
        }
        RetentionCommand::Delete { id, db } => {
            let store = crate::open_store(&db).await?;
            if !store
                .delete_retention_policy(&id)
                .await
                .map_err(|e| anyhow!("{e}"))?
            {
                anyhow::bail!("retention policy {id} does not exist");
            }
            println!("retention policy {id} deleted");
        }
        RetentionCommand::Apply {
            db,
            now,
            chunk,
            json,
        } => {
            let store = crate::open_store(&db).await?;
            let r = store
                .apply_retention(now.unwrap_or_else(Utc::now), chunk)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else if r.policies.is_empty() {
                println!("no retention policies: nothing to do");
            } else {
                for p in &r.policies {
                    match &p.error {
                        Some(e) => println!("{}: not applied: {e}", p.policy),
                        None => println!(
                            "{}: {} series, {} raw instances deleted ({} aggregated), {} buckets rolled up, {} expired",
                            p.policy,
                            p.series,
                            p.raw_deleted,
                            p.raw_aggregated,
                            p.buckets_rolled_up,
                            p.buckets_expired
                        ),
                    }
                }
            }
        }
    }
    Ok(())
}
