//! `/subscriptions` (being written).
use axum::Router;

use crate::SharedState;

pub fn routes() -> Router<SharedState> {
    Router::new()
}
