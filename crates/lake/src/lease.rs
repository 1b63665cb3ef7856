//! The writer's lease on a lake in object storage, where no file lock exists: an object
//! `_lake/writer.lock` created with a conditional PUT (`If-None-Match: *`), holding its owner
//! and an expiry that a background thread renews with `If-Match` on the object's ETag. A
//! writer that dies stops renewing; the next one takes an expired lease over with `If-Match`,
//! so of two contenders exactly one wins. A holder that fails to renew (it was paused past
//! the expiry and someone took over) is told so and must not commit; the commit record's own
//! create-if-absent is the second fence.
//!
//! Expiry compares wall clocks of different machines: keep them synchronised (NTP) to well
//! within `LEASE_TTL`.

use super::error::StoreError;
use super::objects::Objects;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a lease lasts without renewal, unless `CXLAKE_LEASE_TTL_MS` says otherwise (a
/// shorter lease lets a dead writer's successor start sooner; tests use one second).
pub const LEASE_TTL: Duration = Duration::from_secs(30);

fn lease_ttl() -> Duration {
    std::env::var("CXLAKE_LEASE_TTL_MS").ok().and_then(|v| v.parse().ok()).map(Duration::from_millis).unwrap_or(LEASE_TTL)
}
/// How often a waiting writer looks again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Serialize, Deserialize)]
struct LeaseBody {
    owner: String,
    host: String,
    pid: u32,
    /// Unix milliseconds after which anyone may take the lease over.
    expires_at_ms: i64,
}

impl LeaseBody {
    /// The serialized lease of `owner`, expiring one TTL from now.
    fn bytes(owner: &str) -> Vec<u8> {
        let body = LeaseBody {
            owner: owner.to_string(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            pid: std::process::id(),
            expires_at_ms: chrono::Utc::now().timestamp_millis() + lease_ttl().as_millis() as i64,
        };
        serde_json::to_vec(&body).expect("lease serializes")
    }
}

/// A held lease, renewed until dropped (then released).
pub struct Lease {
    objects: Objects,
    path: String,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

enum Attempt {
    Held(Option<String>),
    Busy,
}

fn conditional(mode: PutMode) -> PutOptions {
    PutOptions { mode, ..Default::default() }
}

/// One attempt to take the lease: create it, or take over an expired one.
fn attempt(objects: &Objects, path: &str, owner: &str) -> Result<Attempt, StoreError> {
    let (store, at, body) = (objects.store().clone(), StorePath::from(path), LeaseBody::bytes(owner));
    let fail = |e: object_store::Error| StoreError::Object { path: objects.url(path), reason: e.to_string() };
    objects
        .block_on(async move {
            match store.put_opts(&at, PutPayload::from(body.clone()), conditional(PutMode::Create)).await {
                Ok(r) => return Ok(Attempt::Held(r.e_tag)),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            let current = match store.get(&at).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(Attempt::Busy), // released meanwhile
                Err(e) => return Err(e),
            };
            let e_tag = current.meta.e_tag.clone();
            let held: Option<LeaseBody> = serde_json::from_slice(&current.bytes().await?).ok();
            let expired = held.is_none_or(|h| h.expires_at_ms < chrono::Utc::now().timestamp_millis());
            if !expired {
                return Ok(Attempt::Busy);
            }
            let take_over = conditional(PutMode::Update(UpdateVersion { e_tag, version: None }));
            match store.put_opts(&at, PutPayload::from(body), take_over).await {
                Ok(r) => Ok(Attempt::Held(r.e_tag)),
                Err(object_store::Error::Precondition { .. }) => Ok(Attempt::Busy),
                Err(e) => Err(e),
            }
        })
        .map_err(fail)
}

impl Lease {
    /// Waits until the lease at `path` is free (or expired), takes it and starts renewing it.
    pub fn acquire(objects: &Objects, path: &str) -> Result<Lease, StoreError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let mut waited = false;
        let e_tag = loop {
            match attempt(objects, path, &owner)? {
                Attempt::Held(e_tag) => break e_tag,
                Attempt::Busy => {
                    if !waited {
                        tracing::info!(lease = %objects.url(path), "another writer holds the lake; waiting");
                        waited = true;
                    }
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        };
        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let (objects, path, lost, stop) = (objects.clone(), path.to_string(), lost.clone(), stop.clone());
            std::thread::Builder::new()
                .name("cxlake-lease".into())
                .spawn(move || renew(objects, path, owner, e_tag, lost, stop))
                .map_err(|source| StoreError::Io { path: "lease renewal thread".into(), source })?
        };
        Ok(Lease { objects: objects.clone(), path: path.to_string(), lost, stop, renewer: Some(renewer) })
    }

    /// Fails if the lease was lost (not renewed in time and taken over): the holder must not
    /// commit.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StoreError::Write {
                path: self.objects.url(&self.path),
                reason: "the writer's lease on the lake expired and was taken over; nothing was committed".into(),
            });
        }
        Ok(())
    }
}

fn renew(objects: Objects, path: String, owner: String, mut e_tag: Option<String>, lost: Arc<AtomicBool>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let ttl = lease_ttl();
    let mut valid_until = std::time::Instant::now() + ttl;
    loop {
        let (lock, cv) = &*stop;
        let (stopped, _) = cv.wait_timeout_while(lock.lock().expect("lease stop flag"), ttl / 6, |s| !*s).expect("lease stop flag");
        if *stopped {
            return;
        }
        drop(stopped);
        let (store, at, body, tag) = (objects.store().clone(), StorePath::from(path.as_str()), LeaseBody::bytes(&owner), e_tag.clone());
        let attempt_at = std::time::Instant::now();
        let renewed = objects.block_on(async move {
            store.put_opts(&at, PutPayload::from(body), conditional(PutMode::Update(UpdateVersion { e_tag: tag, version: None }))).await
        });
        match renewed {
            Ok(r) => {
                e_tag = r.e_tag;
                valid_until = attempt_at + ttl;
            }
            Err(object_store::Error::Precondition { .. }) => {
                tracing::error!(lease = %objects.url(&path), "lost the lake's writer lease to another writer");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %objects.url(&path), error = %e, "could not renew the lake's writer lease; retrying");
                if std::time::Instant::now() >= valid_until {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.stop.0.lock().expect("lease stop flag") = true;
        self.stop.1.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        if !self.lost.load(Ordering::SeqCst) {
            if let Err(e) = self.objects.delete(&self.path) {
                tracing::warn!(error = %e, "could not release the lake's writer lease; it expires in {:?}", lease_ttl());
            }
        }
    }
}
