//! What every reader of a consultation sees alike (its view with counts and indicators, its pages of comments and
//! proposals, its results), computed once per node and served from memory for [`TTL`], so that a crowd reading one consultation
//! costs the store one query per page a second, whatever the crowd's size.
//!
//! A value is computed by one request while the others wanting it wait (single flight). It is at most [`TTL`] old,
//! except to a participant who wrote in the consultation after it was computed: their reads skip it, so that they
//! see their own comment, vote or support at once.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// How long a shared value is served from memory.
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// Past this many keys (a key is a consultation and what of it, e.g. a page), stale ones are dropped when a key is
/// added.
const PRUNE_AT: usize = 256;
/// Keys kept at most: past this, a value is computed for its request alone (so that a client walking through
/// thousands of pages within a second cannot fill the memory).
const MAX_KEYS: usize = 2_000;

/// A shared value and when its computation started, behind the lock its computing request holds.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Arc<dyn Any + Send + Sync>)>>>;

#[derive(Default)]
pub(crate) struct SharedReads {
    /// By consultation, then by what of it.
    slots: Mutex<HashMap<String, HashMap<String, Slot>>>,
    /// When each participant last wrote in each consultation: (consultation, account) → time.
    wrote: Mutex<HashMap<(String, String), Instant>>,
}

impl SharedReads {
    /// The value `what` of consultation `consultation` as `reader` may see it: the shared one if it is fresh, else
    /// `compute`'s (which becomes the shared one).
    pub(crate) async fn get<T, F, Fut>(
        &self,
        consultation: &str,
        what: &str,
        reader: Option<&str>,
        compute: F,
    ) -> Result<Arc<T>, ApiError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let slot = self.slot(consultation, what);
        let mut held = slot.lock().await;
        if let Some((at, v)) = held.as_ref() {
            if at.elapsed() < TTL && !self.wrote_since(consultation, reader, *at) {
                if let Ok(v) = v.clone().downcast::<T>() {
                    return Ok(v);
                }
            }
        }
        let started = Instant::now();
        let v = Arc::new(compute().await?);
        *held = Some((started, v.clone() as Arc<dyn Any + Send + Sync>));
        Ok(v)
    }

    /// `account` wrote in `consultation`: its next reads there skip the shared values computed before.
    pub(crate) fn wrote(&self, consultation: &str, account: &str) {
        let mut w = self.wrote.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() >= MAX_KEYS {
            // only writes younger than the values they must skip matter
            w.retain(|_, at| at.elapsed() < TTL);
        }
        w.insert(
            (consultation.to_string(), account.to_string()),
            Instant::now(),
        );
    }

    /// Drops a consultation's shared values (after a change to the consultation itself).
    pub(crate) fn forget(&self, consultation: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(consultation);
    }

    fn wrote_since(&self, consultation: &str, reader: Option<&str>, at: Instant) -> bool {
        let Some(reader) = reader else {
            return false;
        };
        self.wrote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(consultation.to_string(), reader.to_string()))
            .is_some_and(|w| *w >= at)
    }

    fn slot(&self, consultation: &str, what: &str) -> Slot {
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = s.get(consultation).and_then(|w| w.get(what)) {
            return slot.clone();
        }
        let keys = |s: &HashMap<String, HashMap<String, Slot>>| {
            s.values().map(HashMap::len).sum::<usize>()
        };
        if keys(&s) >= PRUNE_AT {
            // a slot whose lock is taken is being computed: keep it; the others are dropped once stale
            s.retain(|_, whats| {
                whats.retain(|_, slot| match slot.try_lock() {
                    Ok(v) => v.as_ref().is_some_and(|(at, _)| at.elapsed() < TTL),
                    Err(_) => true,
                });
                !whats.is_empty()
            });
            if keys(&s) >= MAX_KEYS {
                return Slot::default();
            }
        }
        s.entry(consultation.to_string())
            .or_default()
            .entry(what.to_string())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn count(
        s: &SharedReads,
        n: &AtomicUsize,
        c: &str,
        what: &str,
        reader: Option<&str>,
    ) -> usize {
        *s.get(c, what, reader, || async {
            Ok::<_, ApiError>(n.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_value_is_computed_once_a_ttl_and_afresh_for_who_wrote() {
        let s = SharedReads::default();
        let n = AtomicUsize::new(0);
        assert_eq!(count(&s, &n, "k", "page", Some("ana")).await, 1);
        assert_eq!(count(&s, &n, "k", "page", Some("ben")).await, 1);
        assert_eq!(count(&s, &n, "k", "page", None).await, 1);
        // another page, another consultation: their own values
        assert_eq!(count(&s, &n, "k", "other", None).await, 2);
        assert_eq!(count(&s, &n, "k2", "page", None).await, 3);
        // ana writes in k: her next read of k is fresh, and becomes everyone's; writing in k2 changes nothing in k
        s.wrote("k", "ana");
        s.wrote("k2", "ben");
        assert_eq!(count(&s, &n, "k", "page", Some("ben")).await, 1);
        assert_eq!(count(&s, &n, "k", "page", Some("ana")).await, 4);
        assert_eq!(count(&s, &n, "k", "page", Some("ana")).await, 4);
        assert_eq!(count(&s, &n, "k", "page", Some("ben")).await, 4);
        // forgotten: computed again
        s.forget("k");
        assert_eq!(count(&s, &n, "k", "page", None).await, 5);
        // and after the TTL
        tokio::time::sleep(TTL + Duration::from_millis(50)).await;
        assert_eq!(count(&s, &n, "k", "page", None).await, 6);
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_computation() {
        let s = Arc::new(SharedReads::default());
        let n = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (s, n) = (s.clone(), n.clone());
            tasks.push(tokio::spawn(async move {
                *s.get("k", "page", None, || async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ApiError>(n.fetch_add(1, Ordering::SeqCst))
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 0);
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn memory_is_bounded_by_the_keys_fresh_within_a_ttl() {
        let s = SharedReads::default();
        let n = AtomicUsize::new(0);
        for i in 0..MAX_KEYS + 10 {
            count(&s, &n, "k", &format!("page {i}"), None).await;
        }
        let kept = |s: &SharedReads| s.slots.lock().unwrap()["k"].len();
        assert_eq!(kept(&s), MAX_KEYS);
        // past the bound, values are computed for their request alone
        let before = n.load(Ordering::SeqCst);
        count(&s, &n, "k", "one more", None).await;
        count(&s, &n, "k", "one more", None).await;
        assert_eq!(n.load(Ordering::SeqCst), before + 2);
        // once they are stale, a new key drops them
        tokio::time::sleep(TTL + Duration::from_millis(50)).await;
        count(&s, &n, "k", "after", None).await;
        assert_eq!(kept(&s), 1);
    }

    #[tokio::test]
    async fn an_error_is_not_kept() {
        let s = SharedReads::default();
        let e = s
            .get("k", "page", None, || async {
                Err::<u32, _>(ApiError::not_found("gone"))
            })
            .await;
        assert!(e.is_err());
        let v = s
            .get("k", "page", None, || async { Ok::<_, ApiError>(7u32) })
            .await
            .unwrap();
        assert_eq!(*v, 7);
    }
}
