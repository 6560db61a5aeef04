//! `urbantwin bench hub` (being written).
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    pub what: String,
}

pub async fn run(_a: BenchArgs) -> Result<()> {
    anyhow::bail!("not yet")
}
