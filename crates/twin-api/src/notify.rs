//! Notification delivery worker (being written).
use crate::SharedState;

pub async fn run(_state: SharedState) {
    std::future::pending::<()>().await
}
