//! Record keys of the cell-key perturbation (`cx_stats::cellkey`): a deterministic
//! pseudo-random 32-bit number per response, the keyed BLAKE3 hash of its `response_id` under a
//! per-lake secret. Plans that publish counts to a role without exact numbers add the column
//! of record keys to the rows they aggregate and sum it per published count, in the same pass
//! as the counts (keys are summed as unsigned 64-bit integers: no overflow below 2^32 rows).
//!
//! The secret: given to the server (`--cell-key-secret`, env `CXLAKE_CELL_KEY_SECRET`, 64 hex
//! digits), else read from `_lake/cell_key_secret`, which is created (create-if-absent, so
//! concurrent replicas agree on one) from 256 random bits the first time a perturbed query
//! needs it. Whoever can read the lake's files can read it; they can read the exact rows
//! anyway. It must not change: published counts depend on it, and two different secrets give
//! two independent perturbations of the same cell, whose average is closer to the truth.

use super::AnalyticsError;
use cx_lake::Lake;
use polars::prelude::*;
use std::sync::Arc;

/// Where a lake keeps its secret.
pub const SECRET_FILE: &str = "_lake/cell_key_secret";

/// The column a plan holds record keys in.
pub const RECORD_KEY: &str = "__record_key";

/// The secret of the record keys.
#[derive(Clone, PartialEq, Eq)]
pub struct CellKeySecret(Arc<[u8; 32]>);

impl std::fmt::Debug for CellKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CellKeySecret(..)")
    }
}

impl CellKeySecret {
    /// A secret from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<CellKeySecret, String> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a cell-key secret is 64 hex digits (256 bits)".into());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(CellKeySecret(Arc::new(out)))
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// 256 random bits (the operating system's generator, through two v4 UUIDs' 244 random
    /// bits and BLAKE3 to spread them).
    fn random() -> CellKeySecret {
        let mut hasher = blake3::Hasher::new();
        hasher.update(uuid::Uuid::new_v4().as_bytes());
        hasher.update(uuid::Uuid::new_v4().as_bytes());
        CellKeySecret(Arc::new(*hasher.finalize().as_bytes()))
    }

    /// The lake's secret, created if it has none. Blocking.
    pub fn load_or_create(lake: &Lake) -> Result<CellKeySecret, AnalyticsError> {
        let invalid = |reason: String| AnalyticsError::invalid("cell key secret", format!("{SECRET_FILE}: {reason}"));
        if let Some(bytes) = lake.objects().read(SECRET_FILE)? {
            return CellKeySecret::from_hex(&String::from_utf8_lossy(&bytes)).map_err(invalid);
        }
        if let Some(root) = lake.local_root() {
            let dir = root.join("_lake");
            std::fs::create_dir_all(&dir).map_err(|source| cx_lake::StoreError::Io { path: dir.display().to_string(), source })?;
        }
        let fresh = CellKeySecret::random();
        if lake.objects().create(SECRET_FILE, format!("{}\n", fresh.to_hex()).into_bytes())? {
            tracing::info!("created the lake's cell-key secret ({SECRET_FILE})");
            return Ok(fresh);
        }
        // Another process created it first: use theirs.
        let bytes = lake.objects().read(SECRET_FILE)?.ok_or_else(|| invalid("vanished after it was created".into()))?;
        CellKeySecret::from_hex(&String::from_utf8_lossy(&bytes)).map_err(invalid)
    }

    /// The record key of a response: the first four bytes (little-endian) of the keyed BLAKE3
    /// hash of its id.
    pub fn record_key(&self, response_id: &str) -> u32 {
        let h = blake3::keyed_hash(&self.0, response_id.as_bytes());
        u32::from_le_bytes(h.as_bytes()[..4].try_into().expect("four bytes"))
    }

    /// The record keys of a plan's rows as a `UInt64` column named [`RECORD_KEY`] (elementwise,
    /// so the streaming engine computes it batch by batch in the scan's pass).
    pub fn record_key_expr(&self) -> Expr {
        let secret = self.clone();
        col("response_id")
            .map(
                move |c: Column| {
                    let ids = c.str()?;
                    let keys: UInt64Chunked = ids.apply_nonnull_values_generic(DataType::UInt64, |id| secret.record_key(id) as u64);
                    Ok(keys.into_column())
                },
                |_, f| Ok(Field::new(f.name().clone(), DataType::UInt64)),
            )
            .alias(RECORD_KEY)
    }
}

/// The sum of the record keys of the rows where `hit` holds (`UInt64`).
pub fn key_sum(hit: Expr) -> Expr {
    when(hit).then(col(RECORD_KEY)).otherwise(lit(0u64)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_fixed_by_the_secret_and_spread_evenly() {
        let a = CellKeySecret::from_hex(&"ab".repeat(32)).unwrap();
        let b = CellKeySecret::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(a.record_key("r-1"), a.record_key("r-1"));
        assert_ne!(a.record_key("r-1"), b.record_key("r-1"));
        assert_ne!(a.record_key("r-1"), a.record_key("r-2"));
        // Uniform enough: the mean of many keys is near 2^31.
        let mean = (0..20_000).map(|i| a.record_key(&format!("id-{i}")) as f64).sum::<f64>() / 20_000.0;
        assert!((mean / 2f64.powi(31) - 1.0).abs() < 0.02, "{mean}");
        assert!(CellKeySecret::from_hex("abc").is_err());
        assert_eq!(format!("{a:?}"), "CellKeySecret(..)");
        assert_eq!(CellKeySecret::from_hex(&a.to_hex()).unwrap(), a);
    }

    #[test]
    fn a_lake_gets_one_secret_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        let first = CellKeySecret::load_or_create(&lake).unwrap();
        let again = CellKeySecret::load_or_create(&lake).unwrap();
        assert_eq!(first, again);
        assert!(dir.path().join("lake").join(SECRET_FILE).exists());
    }
}
