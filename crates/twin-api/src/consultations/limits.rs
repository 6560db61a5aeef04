//! Per-account limits on contributions (anti-spam): a token bucket per account and kind of contribution, kept on
//! each node (several nodes each allow the rate: the store's limits, such as supports per person, are exact).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::Refused;

/// A kind of contribution that is rate limited: `(name, how many, per seconds)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// 10 comments a minute.
    Comment,
    /// 3 proposals a minute.
    Proposal,
    /// 60 votes, supports, flags and follows a minute.
    Vote,
    /// 3 e-mail codes an hour.
    EmailCode,
    /// 5 scenario runs an hour (citizens').
    Run,
}

impl Limited {
    /// (how many at once, over how many seconds)
    fn rate(self) -> (f64, f64) {
        match self {
            Limited::Comment => (10.0, 60.0),
            Limited::Proposal => (3.0, 60.0),
            Limited::Vote => (60.0, 60.0),
            Limited::EmailCode => (3.0, 3600.0),
            Limited::Run => (5.0, 3600.0),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limited::Comment => "comments",
            Limited::Proposal => "proposals",
            Limited::Vote => "votes, supports and reports",
            Limited::EmailCode => "e-mail codes",
            Limited::Run => "scenario runs",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one node.
#[derive(Default)]
pub struct Limits {
    buckets: Mutex<HashMap<(String, Limited), Bucket>>,
}

impl Limits {
    /// Takes one token of `account`'s bucket for `what`, or says how long to wait.
    pub fn take(&self, account: &str, what: Limited) -> Result<(), Refused> {
        self.take_at(account, what, Instant::now())
    }

    fn take_at(&self, account: &str, what: Limited, now: Instant) -> Result<(), Refused> {
        let (size, per) = what.rate();
        let refill = size / per;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() > 200_000 {
            // idle buckets are full ones: dropping them all forgets only the recently active
            b.retain(|_, v| now.duration_since(v.at).as_secs_f64() * refill + v.tokens < size);
        }
        let e = b.entry((account.to_string(), what)).or_insert(Bucket {
            tokens: size,
            at: now,
        });
        e.tokens = (e.tokens + now.duration_since(e.at).as_secs_f64() * refill).min(size);
        e.at = now;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - e.tokens) / refill).ceil() as u64;
            Err(Refused::TooMany {
                detail: format!(
                    "at most {size} {} per {} per person; try again in {wait} s",
                    what.what(),
                    if per >= 3600.0 { "hour" } else { "minute" }
                ),
                retry_after: wait,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_empties_and_refills() {
        let l = Limits::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.take_at("ann", Limited::Proposal, t0).unwrap();
        }
        match l.take_at("ann", Limited::Proposal, t0) {
            Err(Refused::TooMany { retry_after, .. }) => assert_eq!(retry_after, 20),
            other => panic!("{other:?}"),
        }
        // others are not affected, nor other kinds
        l.take_at("bob", Limited::Proposal, t0).unwrap();
        l.take_at("ann", Limited::Comment, t0).unwrap();
        // a token back after 20 s
        l.take_at("ann", Limited::Proposal, t0 + Duration::from_secs(20))
            .unwrap();
        assert!(l
            .take_at("ann", Limited::Proposal, t0 + Duration::from_secs(21))
            .is_err());
    }
}
