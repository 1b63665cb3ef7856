//! API keys: the keys file the operator manages with `cxlake keys add|list|revoke`, holding
//! each key's role and only a hash of its secret, and the lookup of a presented key.
//!
//! A key reads `cxk_<id>_<secret>`: `id` (8 hex digits) names the entry, `secret` (64 hex
//! digits, 244 random bits from two v4 UUIDs) is checked against the stored blake3 hash in
//! constant time. A secret that random needs no slow password hash. The file is JSON, written
//! atomically with mode 0600; the server rereads it when it changes, so a revocation takes
//! effect within a second without a restart.
//!
//! Every change, by `cxlake keys` or a server's `/v1/keys`, is one read-modify-write under an
//! exclusive lock (`flock`, std's `File::lock`) on `<keys file>.lock` beside it: read afresh,
//! changed, written to a temporary file, fsynced, renamed over the old one, directory fsynced.
//! Two writers never work from the same old content, so no change is lost (a revocation racing
//! a key creation once was).

use super::auth::Role;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys file '{path}': {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// One key as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyEntry {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub role: Role,
    /// blake3 of the secret, hex.
    pub hash: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// The keys file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyFile {
    pub keys: Vec<KeyEntry>,
}

fn hash(secret: &str) -> blake3::Hash {
    blake3::hash(secret.as_bytes())
}

impl KeyFile {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<KeyFile, KeyError> {
        let fail = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| fail(format!("not a keys file: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Writes the file atomically, readable by its owner only. A change of a file others may
    /// change too goes through `update`, which holds the lock around read and write.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let fail = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        let bytes = serde_json::to_vec_pretty(self).expect("keys serialize");
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(e.to_string()))?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| fail(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| fail(e.to_string()))?;
        tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
        // The rename is durable once the directory is.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        Ok(())
    }

    /// The lock file of the keys file at `path`: `<path>.lock` beside it.
    pub fn lock_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "keys".into());
        name.push(".lock");
        path.with_file_name(name)
    }

    /// Changes the keys file at `path`: under an exclusive lock on `lock_path`, reads it afresh,
    /// applies `f` and writes the result atomically (nothing is written if `f` fails). Waits
    /// for another process's change to finish. Returns `f`'s result and the keys as written.
    pub fn update<T>(path: &Path, f: impl FnOnce(&mut KeyFile) -> Result<T, KeyError>) -> Result<(T, KeyFile), KeyError> {
        let lock_path = Self::lock_path(path);
        let fail = |reason: String| KeyError::File { path: lock_path.display().to_string(), reason };
        let lock = std::fs::File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| fail(e.to_string()))?;
        lock.lock().map_err(|e| fail(format!("cannot lock: {e}")))?;
        let mut keys = KeyFile::load(path)?;
        let out = f(&mut keys)?;
        keys.save(path)?;
        drop(lock);
        Ok((out, keys))
    }

    /// Adds a key; returns its entry and the key itself (shown once, never stored).
    pub fn add(&mut self, name: &str, role: Role) -> (KeyEntry, String) {
        let id = loop {
            let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
            if !self.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let entry = KeyEntry {
            id: id.clone(),
            name: name.to_string(),
            role,
            hash: hash(&secret).to_hex().to_string(),
            created_at: chrono::Utc::now().to_rfc3339(),
            revoked_at: None,
        };
        self.keys.push(entry.clone());
        (entry, format!("cxk_{id}_{secret}"))
    }

    /// Revokes the key `id`.
    pub fn revoke(&mut self, id: &str) -> Result<&KeyEntry, KeyError> {
        let entry = self.keys.iter_mut().find(|k| k.id == id).ok_or_else(|| KeyError::Invalid(format!("no key with id '{id}'")))?;
        if entry.revoked_at.is_none() {
            entry.revoked_at = Some(chrono::Utc::now().to_rfc3339());
        }
        Ok(entry)
    }

    /// The live entry a presented key belongs to.
    pub fn verify(&self, presented: &str) -> Result<&KeyEntry, KeyError> {
        let bad = || KeyError::Invalid("the API key is not valid".into());
        let rest = presented.strip_prefix("cxk_").ok_or_else(bad)?;
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        let entry = self.keys.iter().find(|k| k.id == id).ok_or_else(bad)?;
        let stored = blake3::Hash::from_hex(&entry.hash).map_err(|_| bad())?;
        // blake3::Hash compares in constant time.
        if hash(secret) != stored {
            return Err(bad());
        }
        if entry.revoked_at.is_some() {
            return Err(KeyError::Invalid(format!("the API key '{id}' was revoked")));
        }
        Ok(entry)
    }
}

/// The keys file as the server sees it: reread when its modification time changes (checked
/// at most once a second).
pub struct KeyStore {
    path: PathBuf,
    state: RwLock<(KeyFile, Option<Stamp>, Instant)>,
}

/// What tells that the keys file changed: its modification time and inode (every write
/// renames a new file into place, so the inode changes even within one clock tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = m.len();
    Some(Stamp(m.modified().ok()?, ino))
}

const RECHECK: Duration = Duration::from_secs(1);

impl KeyStore {
    pub fn open(path: &Path) -> Result<KeyStore, KeyError> {
        let keys = KeyFile::load(path)?;
        Ok(KeyStore { path: path.to_path_buf(), state: RwLock::new((keys, stamp(path), Instant::now())) })
    }

    /// Changes the keys file (`KeyFile::update`: locked against every other writer, read
    /// afresh, changed by `f`, written atomically) and takes the result into use at once.
    pub fn update<T>(&self, f: impl FnOnce(&mut KeyFile) -> Result<T, KeyError>) -> Result<T, KeyError> {
        let mut state = self.state.write().expect("keys lock");
        let (out, keys) = KeyFile::update(&self.path, f)?;
        *state = (keys, stamp(&self.path), Instant::now());
        Ok(out)
    }

    /// The keys as stored (hashes, never secrets).
    pub fn list(&self) -> Vec<KeyEntry> {
        self.refresh();
        self.state.read().expect("keys lock").0.keys.clone()
    }

    /// The role and key id of a presented key.
    pub fn verify(&self, presented: &str) -> Result<(Role, String), KeyError> {
        self.refresh();
        let state = self.state.read().expect("keys lock");
        let entry = state.0.verify(presented)?;
        Ok((entry.role.clone(), entry.id.clone()))
    }

    fn refresh(&self) {
        if self.state.read().expect("keys lock").2.elapsed() < RECHECK {
            return;
        }
        let mut state = self.state.write().expect("keys lock");
        state.2 = Instant::now();
        let now = stamp(&self.path);
        if now != state.1 {
            match KeyFile::load(&self.path) {
                Ok(keys) => {
                    tracing::info!(path = %self.path.display(), keys = keys.keys.len(), "keys file reloaded");
                    *state = (keys, now, Instant::now());
                }
                // Keep the keys in force; a half-edited file must not lock everyone out.
                Err(e) => tracing::error!(error = %e, "keys file not reloaded"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_while_live_and_store_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut file = KeyFile::default();
        let (entry, key) = file.add("va analysts", Role::Agency("VA".into()));
        file.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(key.rsplit('_').next().unwrap()), "the secret must not be stored");
        let file = KeyFile::load(&path).unwrap();
        assert_eq!(file.verify(&key).unwrap().role, Role::Agency("VA".into()));
        let mut wrong = key.clone();
        wrong.pop();
        wrong.push(if key.ends_with('0') { '1' } else { '0' });
        assert!(file.verify(&wrong).is_err());
        assert!(file.verify("Bearer nonsense").is_err());
        let mut file = file;
        file.revoke(&entry.id).unwrap();
        assert!(file.verify(&key).unwrap_err().to_string().contains("revoked"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
