//! Where a lake's objects live: a local directory or a prefix of an S3 bucket, and the few
//! primitives the lake needs from either (read, create-if-absent, replace, delete, list, open a
//! data file for reading, publish a finished file), each with the atomicity its backend gives.
//!
//! Local: every write goes to a hidden temporary file that is fsynced and renamed into place
//! (`writer.rs`). S3: an object exists only once its upload completes (single PUT, or a
//! multipart upload that is aborted on failure; one killed mid-upload is never listed), and
//! create-if-absent is a conditional PUT (`If-None-Match: *`).
//!
//! S3 settings come from the standard `AWS_*` environment variables (endpoint, region,
//! credentials), with path-style requests; an `http://` endpoint (a test server on loopback)
//! is allowed because it was asked for explicitly. Remote calls run on one small I/O runtime
//! shared by the process, so blocking callers (ingestion threads, `spawn_blocking`) and async
//! ones can both use them.

use super::error::StoreError;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Scheme prefix of lakes in S3 (or an S3-compatible store).
pub const S3_SCHEME: &str = "s3://";

/// The runtime that runs a lake's object-store calls for callers on any thread, async or not
/// (one per opened lake, shared by its clones, started on its first use; a local lake's reads
/// are plain file I/O, its listings and deletes go through it).
#[derive(Default)]
struct Io(std::sync::OnceLock<tokio::runtime::Runtime>);

impl Io {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("cxlake-io")
                .enable_all()
                .build()
                .expect("the object store I/O runtime starts")
        })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let its threads finish on their own.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A lake location: a local directory or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Root {
    /// Reads a location given on the command line: `s3://bucket/prefix` or a local path.
    pub fn parse(location: &str) -> Result<Root, StoreError> {
        let Some(rest) = location.strip_prefix(S3_SCHEME) else { return Ok(Root::Local(PathBuf::from(location))) };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if bucket.is_empty() {
            return Err(StoreError::NotALake { path: location.into(), reason: "an S3 location needs a bucket: s3://bucket/prefix".into() });
        }
        if prefix.contains('=') {
            return Err(StoreError::NotALake {
                path: location.into(),
                reason: "a lake path must not contain '=' (it would be read as a hive partition)".into(),
            });
        }
        Ok(Root::S3 { bucket: bucket.into(), prefix })
    }
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Root::Local(p) => write!(f, "{}", p.display()),
            Root::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "{S3_SCHEME}{bucket}"),
            Root::S3 { bucket, prefix } => write!(f, "{S3_SCHEME}{bucket}/{prefix}"),
        }
    }
}

/// S3 settings from the standard environment: every `AWS_*` variable object_store knows, plus
/// path-style requests, region `us-east-1` for a custom endpoint without one, and plain http
/// allowed when the endpoint is `http://`.
pub fn s3_config_from_env() -> Vec<(AmazonS3ConfigKey, String)> {
    let mut config: Vec<(AmazonS3ConfigKey, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .filter_map(|(k, v)| k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok().map(|key| (key, v)))
        .collect();
    let has = |c: &[(AmazonS3ConfigKey, String)], key: &AmazonS3ConfigKey| c.iter().any(|(k, _)| k == key);
    let endpoint = config.iter().find(|(k, _)| *k == AmazonS3ConfigKey::Endpoint).map(|(_, v)| v.clone());
    if !has(&config, &AmazonS3ConfigKey::VirtualHostedStyleRequest) {
        config.push((AmazonS3ConfigKey::VirtualHostedStyleRequest, "false".into()));
    }
    if endpoint.is_some() && !has(&config, &AmazonS3ConfigKey::Region) && !has(&config, &AmazonS3ConfigKey::DefaultRegion) {
        config.push((AmazonS3ConfigKey::Region, "us-east-1".into()));
    }
    if endpoint.is_some_and(|e| e.starts_with("http://")) {
        config.push((AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp), "true".into()));
    }
    config
}

/// The objects of one lake.
#[derive(Clone)]
pub struct Objects {
    root: Arc<Root>,
    store: Arc<dyn ObjectStore>,
    /// The store at its own root (the file system's `/`, the bucket), where Delta resolves the
    /// URLs of its tables.
    base: Arc<dyn ObjectStore>,
    io: Arc<Io>,
    /// polars' settings for the same store (S3 only).
    cloud: Option<polars::prelude::cloud::CloudOptions>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.root)
    }
}

fn store_err(path: String) -> impl Fn(object_store::Error) -> StoreError {
    move |e| StoreError::Object { path: path.clone(), reason: e.to_string() }
}

impl Objects {
    /// Runs `f` on this lake's I/O runtime and waits for it: callable from any thread.
    pub fn block_on<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        futures::executor::block_on(self.io.runtime().spawn(f)).expect("object store task panicked")
    }

    /// Runs `f` on this lake's I/O runtime (for async callers on another runtime).
    pub async fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.io.runtime().spawn(f).await.expect("object store task panicked")
    }

    /// The objects under a local directory (which must exist) or an S3 prefix.
    pub fn new(root: Root) -> Result<Objects, StoreError> {
        let not_a_lake = |reason: String| StoreError::NotALake { path: root.to_string(), reason };
        match &root {
            Root::Local(dir) => {
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| not_a_lake(e.to_string()))?;
                let base = Arc::new(object_store::local::LocalFileSystem::new());
                Ok(Objects { root: Arc::new(root), store: Arc::new(store), base, io: Default::default(), cloud: None })
            }
            Root::S3 { bucket, prefix } => {
                let config = s3_config_from_env();
                let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
                for (k, v) in &config {
                    builder = builder.with_config(*k, v);
                }
                let s3 = Arc::new(builder.build().map_err(|e| not_a_lake(e.to_string()))?);
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() { s3.clone() } else { Arc::new(PrefixStore::new(s3.clone(), prefix.as_str())) };
                let cloud = polars::prelude::cloud::CloudOptions::default().with_aws(config);
                Ok(Objects { root: Arc::new(root), store, base: s3, io: Default::default(), cloud: Some(cloud) })
            }
        }
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The Delta log store of the table in the directory `dir` (relative to the root): the
    /// default log store, whose commits are conditional creates of `_delta_log/<version>.json`
    /// (a hard link locally, `If-None-Match: *` in S3), so of two writers of one version
    /// exactly one succeeds.
    pub fn delta_log_store(&self, dir: &str) -> Result<deltalake_core::logstore::LogStoreRef, StoreError> {
        let url = self.table_url(dir)?;
        let prefix = StorePath::from_url_path(url.path()).map_err(|e| StoreError::Object { path: url.to_string(), reason: e.to_string() })?;
        let prefixed: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(self.base.clone(), prefix));
        Ok(deltalake_core::logstore::default_logstore(prefixed, self.base.clone(), &url, &Default::default()))
    }

    /// The URL of the directory `dir` (relative to the root), with a trailing slash.
    pub fn table_url(&self, dir: &str) -> Result<url::Url, StoreError> {
        let bad = |reason: String| StoreError::Object { path: self.url(dir), reason };
        match self.root.as_ref() {
            Root::Local(p) => url::Url::from_directory_path(p.join(dir)).map_err(|()| bad("not an absolute path".into())),
            root => url::Url::parse(&format!("{root}/{dir}/")).map_err(|e| bad(e.to_string())),
        }
    }

    /// Whether `rel` exists (for async callers; see `exists`).
    pub async fn exists_async(&self, rel: &str) -> Result<bool, StoreError> {
        match self.local_root() {
            Some(root) => Ok(root.join(rel).exists()),
            None => {
                let (store, path) = (self.store.clone(), StorePath::from(rel));
                self.run(async move {
                    match store.head(&path).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .await
                .map_err(store_err(self.url(rel)))
            }
        }
    }

    /// The local directory of a lake on disk (`None` for S3).
    pub fn local_root(&self) -> Option<&Path> {
        match self.root.as_ref() {
            Root::Local(p) => Some(p),
            Root::S3 { .. } => None,
        }
    }

    /// polars' cloud settings for scans (`None` for a local lake).
    pub fn cloud_options(&self) -> Option<polars::prelude::cloud::CloudOptions> {
        self.cloud.clone()
    }

    /// Where `rel` is, as a path or URL (for messages and for polars scans).
    pub fn url(&self, rel: &str) -> String {
        match self.root.as_ref() {
            Root::Local(p) => p.join(rel).to_string_lossy().into_owned(),
            root => format!("{root}/{rel}"),
        }
    }

    pub(super) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The content of `rel`, or `None` if there is no such object.
    pub fn read(&self, rel: &str) -> Result<Option<Bytes>, StoreError> {
        match self.local_root() {
            Some(root) => {
                let path = root.join(rel);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(Bytes::from(b))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
                }
            }
            None => {
                let (store, path) = (self.store.clone(), StorePath::from(rel));
                self.block_on(async move {
                    match store.get(&path).await {
                        Ok(r) => r.bytes().await.map(Some),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .map_err(store_err(self.url(rel)))
            }
        }
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool, StoreError> {
        futures::executor::block_on(self.exists_async(rel))
    }

    /// Writes `bytes` as `rel` if no object of that name exists; returns whether it wrote.
    /// Atomic on both backends: of two concurrent creators exactly one succeeds.
    pub fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, StoreError> {
        match self.local_root() {
            Some(root) => match super::writer::write_file_atomic(&root.join(rel), &bytes) {
                Ok(()) => Ok(true),
                Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            },
            None => {
                let (store, path) = (self.store.clone(), StorePath::from(rel));
                let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
                self.block_on(async move {
                    match store.put_opts(&path, PutPayload::from(bytes), opts).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .map_err(store_err(self.url(rel)))
            }
        }
    }

    /// Writes `bytes` as `rel`, replacing what was there; readers see the old or the new.
    pub fn replace(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self.local_root() {
            Some(root) => super::writer::replace_file_atomic(&root.join(rel), &bytes),
            None => {
                let (store, path) = (self.store.clone(), StorePath::from(rel));
                self.block_on(async move { store.put(&path, PutPayload::from(bytes)).await.map(|_| ()) }).map_err(store_err(self.url(rel)))
            }
        }
    }

    /// Removes `rel` (nothing to do if it is gone).
    pub fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let (store, path) = (self.store.clone(), StorePath::from(rel));
        self.block_on(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .map_err(store_err(self.url(rel)))
    }

    /// Every object under `prefix` (a directory, ending in `/`): path relative to the root,
    /// and size. A missing prefix lists nothing.
    pub async fn list_async(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let (store, path) = (self.store.clone(), StorePath::from(prefix));
        self.run(async move {
            match store.list(Some(&path)).map_ok(|m| (m.location.to_string(), m.size)).try_collect::<Vec<_>>().await {
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                other => other,
            }
        })
        .await
        .map_err(store_err(self.url(prefix)))
    }

    /// `list_async` for blocking callers.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        futures::executor::block_on(self.list_async(prefix))
    }

    /// The last `n` bytes of `rel`, whose size is `size` (a Parquet footer).
    pub async fn read_tail(&self, rel: &str, size: u64, n: u64) -> Result<Bytes, StoreError> {
        let range = size.saturating_sub(n)..size;
        match self.local_root() {
            Some(root) => {
                let path = root.join(rel);
                let read = || -> std::io::Result<Vec<u8>> {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0; (range.end - range.start) as usize];
                    std::fs::File::open(&path)?.read_exact_at(&mut buf, range.start)?;
                    Ok(buf)
                };
                read().map(Bytes::from).map_err(|source| StoreError::Io { path: path.display().to_string(), source })
            }
            None => {
                let (store, path) = (self.store.clone(), StorePath::from(rel));
                self.run(async move { store.get_range(&path, range).await }).await.map_err(store_err(self.url(rel)))
            }
        }
    }

    /// Opens a data file for reading with the parquet crate. A remote object is fetched whole
    /// (data files are at most `FILE_ROWS` rows, tens of megabytes).
    pub fn open(&self, rel: &str) -> Result<LakeFile, StoreError> {
        match self.local_root() {
            Some(root) => {
                let path = root.join(rel);
                let file = std::fs::File::open(&path).map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
                Ok(LakeFile::Local(file))
            }
            None => self.read(rel)?.map(LakeFile::Remote).ok_or_else(|| StoreError::Object { path: self.url(rel), reason: "not found".into() }),
        }
    }

    /// Uploads the finished local file `from` as `rel`: one PUT, or a multipart upload for a
    /// large file that is aborted if any part fails, so the object appears whole or not at all.
    pub(super) fn upload(&self, from: &Path, rel: &str) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        let (store, path, from) = (self.store.clone(), StorePath::from(rel), from.to_path_buf());
        let shown = self.url(rel);
        self.block_on(async move {
            let mut file = tokio::fs::File::open(&from).await.map_err(|e| e.to_string())?;
            let mut w = object_store::buffered::BufWriter::new(store, path);
            let copied = match tokio::io::copy(&mut file, &mut w).await {
                Ok(_) => w.shutdown().await,
                Err(e) => Err(e),
            };
            if let Err(e) = copied {
                let _ = w.abort().await;
                return Err(e.to_string());
            }
            Ok(())
        })
        .map_err(|reason| StoreError::Object { path: shown, reason })
    }
}

/// A data file open for reading: a local file, or a remote object's bytes.
pub enum LakeFile {
    Local(std::fs::File),
    Remote(Bytes),
}

impl LakeFile {
    /// Another handle on the same file (bytes are shared, not copied).
    pub fn try_clone(&self) -> std::io::Result<LakeFile> {
        Ok(match self {
            LakeFile::Local(f) => LakeFile::Local(f.try_clone()?),
            LakeFile::Remote(b) => LakeFile::Remote(b.clone()),
        })
    }
}

impl parquet::file::reader::Length for LakeFile {
    fn len(&self) -> u64 {
        match self {
            LakeFile::Local(f) => f.len(),
            LakeFile::Remote(b) => b.len() as u64,
        }
    }
}

impl parquet::file::reader::ChunkReader for LakeFile {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            LakeFile::Local(f) => Box::new(f.get_read(start)?),
            LakeFile::Remote(b) => Box::new(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            LakeFile::Local(f) => f.get_bytes(start, length),
            LakeFile::Remote(b) => b.get_bytes(start, length),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_local_paths_or_s3_prefixes() {
        assert_eq!(Root::parse("data/sample").unwrap(), Root::Local("data/sample".into()));
        assert_eq!(Root::parse("s3://b/lakes/one/").unwrap(), Root::S3 { bucket: "b".into(), prefix: "lakes/one".into() });
        assert_eq!(Root::parse("s3://b").unwrap().to_string(), "s3://b");
        assert_eq!(Root::parse("s3://b/x").unwrap().to_string(), "s3://b/x");
        assert!(Root::parse("s3:///x").is_err());
        assert!(Root::parse("s3://b/agency=VA").is_err());
    }

    #[test]
    fn local_create_is_create_if_absent() {
        let dir = tempfile::tempdir().unwrap();
        let o = Objects::new(Root::Local(dir.path().to_path_buf())).unwrap();
        assert!(o.create("a/b.json", b"1".to_vec()).unwrap());
        assert!(!o.create("a/b.json", b"2".to_vec()).unwrap());
        assert_eq!(o.read("a/b.json").unwrap().unwrap().as_ref(), b"1");
        assert_eq!(o.read("a/none").unwrap(), None);
        o.replace("a/b.json", b"3".to_vec()).unwrap();
        assert_eq!(o.list("a/").unwrap(), vec![("a/b.json".to_string(), 1)]);
        o.delete("a/b.json").unwrap();
        o.delete("a/b.json").unwrap();
        assert!(!o.exists("a/b.json").unwrap());
    }
}
