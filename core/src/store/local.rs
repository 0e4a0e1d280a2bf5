//! A local directory as a store. Writes go to a temporary name and are renamed into place;
//! create-only writes hard-link the temporary file to the key, which fails if it exists, so
//! two processes racing for one claim cannot both win.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{Created, Store, StoreError, StoreErrorKind, Swapped, Version};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> Self {
        LocalStore { root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(self.error(StoreErrorKind::Invalid, format!("bad key '{key}'")));
        }
        Ok(self.root.join(key))
    }

    fn error(&self, kind: StoreErrorKind, message: String) -> StoreError {
        StoreError::new(kind, &self.describe(), message)
    }

    fn io(&self, path: &Path, e: std::io::Error) -> StoreError {
        let kind = match e.kind() {
            std::io::ErrorKind::PermissionDenied => StoreErrorKind::Denied,
            _ => StoreErrorKind::Other,
        };
        self.error(kind, format!("{}: {e}", path.display()))
    }

    /// Writes `bytes` next to `path` under a unique temporary name.
    fn temp(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| self.io(parent, e))?;
        }
        let tmp = path.with_extension(format!("{}.partial", rand::random::<u32>()));
        std::fs::write(&tmp, bytes).map_err(|e| self.io(&tmp, e))?;
        Ok(tmp)
    }
}

/// A local object's version: the hash of its bytes.
fn content_version(bytes: &[u8]) -> Version {
    use sha2::{Digest, Sha256};
    Version(hex::encode(Sha256::digest(bytes)))
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put<'a>(&'a self, key: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            let tmp = self.temp(&path, &bytes)?;
            std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))
        })
    }

    fn put_file<'a>(
        &'a self,
        key: &'a str,
        file: &'a Path,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| self.io(parent, e))?;
            }
            // Linked where the file is on the same file system (the spool under the output
            // directory: nothing is copied, and the spool's copy goes once the run is
            // published); else copied in pieces by the kernel, without holding it in memory.
            let tmp = path.with_extension(format!("{}.partial", rand::random::<u32>()));
            if std::fs::hard_link(file, &tmp).is_err() {
                std::fs::copy(file, &tmp).map_err(|e| self.io(&tmp, e))?;
            }
            std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            let tmp = self.temp(&path, &bytes)?;
            let result = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match result {
                Ok(()) => Ok(Created::Won),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::Exists),
                Err(e) => Err(self.io(&path, e)),
            }
        })
    }

    fn get_versioned<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Bytes, Version)>, StoreError>> {
        Box::pin(async move {
            Ok(self.get(key).await?.map(|b| {
                let v = content_version(&b);
                (b, v)
            }))
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        expected: Option<&'a Version>,
    ) -> BoxFuture<'a, Result<Swapped, StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| self.io(parent, e))?;
            }
            // Processes on this machine take turns under an exclusive lock on a sidecar file;
            // the check and the rename happen while it is held.
            let lock_path = path.with_extension("lock");
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| self.io(&lock_path, e))?;
            lock.lock().map_err(|e| self.io(&lock_path, e))?;
            let now = match std::fs::read(&path) {
                Ok(b) => Some(content_version(&b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(self.io(&path, e)),
            };
            if now.as_ref() != expected {
                return Ok(Swapped::Lost);
            }
            let tmp = self.temp(&path, &bytes)?;
            std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))?;
            Ok(Swapped::Won)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            match std::fs::read(&path) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io(&path, e)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut stack = vec![self.root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io(&dir, e)),
                };
                for entry in entries {
                    let path = entry.map_err(|e| self.io(&dir, e))?.path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&self.root) else {
                        continue;
                    };
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) && !key.ends_with(".partial") {
                        keys.push(key);
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("llmpulse-local-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn put_get_list_and_create_only() {
        let root = scratch("store");
        let s = LocalStore::new(root.clone());
        s.put("runs/a/manifest.json", Bytes::from_static(b"m"))
            .await
            .unwrap();
        s.put("records/date=2026-01-01/a.jsonl", Bytes::from_static(b"r"))
            .await
            .unwrap();
        assert_eq!(s.get("runs/a/manifest.json").await.unwrap().unwrap(), "m");
        assert_eq!(s.get("runs/b/manifest.json").await.unwrap(), None);
        assert_eq!(s.list("runs/").await.unwrap(), vec!["runs/a/manifest.json"]);
        assert_eq!(
            s.create("claims/c/1.json", Bytes::from_static(b"x"))
                .await
                .unwrap(),
            Created::Won
        );
        assert_eq!(
            s.create("claims/c/1.json", Bytes::from_static(b"y"))
                .await
                .unwrap(),
            Created::Exists
        );
        assert_eq!(s.get("claims/c/1.json").await.unwrap().unwrap(), "x");
        assert!(s.put("../escape", Bytes::new()).await.is_err());
        let _ = std::fs::remove_dir_all(root);
    }
}
