//! `admin backup DIR` and `admin restore DIR`: consistent copies of a SQLite data folder, taken
//! while a server runs and takes traffic.
//!
//! A backup is each database written by SQLite's `VACUUM INTO`, which reads one snapshot of the
//! file inside a read transaction: every write committed before it began is in the copy, none
//! half-written, and writers go on meanwhile (WAL). `usage.db` is copied before `api_keys.db`,
//! and keys are never deleted, so every record in the copy has its key. `manifest.json` says
//! when the snapshot began, each file's schema version, size and SHA-256, and the counts of keys
//! and records; it is written last, so a folder without it is not a finished backup.
//!
//! A restore checks the manifest (checksums, sizes, counts, a schema this binary can read or
//! migrate), refuses a data folder a server is running on (it takes the server's own lock,
//! `serve.lock`, and holds it while it works, so no server starts meanwhile), moves the data it
//! replaces aside into `pre-restore-<time>/` rather than deleting it, and puts the copies in
//! place by renames. PostgreSQL has its own tools (`pg_dump`, `pg_basebackup`); both commands
//! say so instead of copying anything.

use std::io::{Read as _, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, Row as _};

use super::Outcome;
use super::render::{Page, new_table, thousands};
use crate::clock::Clock;
use crate::config::Settings;
use crate::store::{FolderLock, Store, StoreError};

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "omnimemory-backup/1";
/// Copied in this order: records before the keys they name.
const FILES: [(&str, &str); 2] = [("usage.db", "usage_records"), ("api_keys.db", "api_keys")];

const POSTGRES_ADVICE: &str = "admin backup and restore copy a SQLite data folder; this service uses PostgreSQL \
     (OMNIMEMORY_DATABASE_URL): back it up with `pg_dump --format=custom` (restore with `pg_restore`) or with \
     `pg_basebackup` and WAL archiving for point-in-time recovery";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    /// When the snapshot began: every write committed before this instant is in the backup.
    created_at: jiff::Timestamp,
    finished_at: jiff::Timestamp,
    omnimemory_version: String,
    backend: String,
    keys: u64,
    usage_records: u64,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    name: String,
    schema_version: i64,
    rows: u64,
    bytes: u64,
    sha256: String,
}

fn failed(message: &str, error: &str) -> Outcome {
    Outcome::failed(message, json!({"ok": false, "error": error, "detail": message}))
}

/// `admin backup DIR`.
pub async fn backup(settings: &Settings, dir: &Path, clock: &dyn Clock) -> anyhow::Result<Outcome> {
    if settings.database_url.is_some() {
        return Ok(failed(POSTGRES_ADVICE, "postgres_backend"));
    }
    let home = &settings.home;
    if FILES.iter().any(|(name, _)| !home.join(name).is_file()) {
        return Ok(failed(&format!("no OmniMemory data in {}: nothing to back up", home.display()), "no_data"));
    }
    if dir.exists() && (!dir.is_dir() || std::fs::read_dir(dir)?.next().is_some()) {
        return Ok(failed(
            &format!("{} exists and is not an empty folder: give a new one", dir.display()),
            "target_not_empty",
        ));
    }
    create_private_dir(dir)?;
    let created_at = clock.now();
    let mut files = Vec::new();
    for (name, table) in FILES {
        let target = dir.join(name);
        let target_text =
            target.to_str().ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", target.display()))?.to_string();
        let live = SqliteConnectOptions::new()
            .filename(home.join(name))
            .create_if_missing(false)
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut conn = sqlx::SqliteConnection::connect_with(&live).await?;
        sqlx::query("VACUUM INTO $1").bind(target_text).execute(&mut conn).await?;
        conn.close().await?;
        make_private(&target)?;
        let (schema_version, rows) = describe(&target, table).await?;
        let (bytes, sha256) = checksum(&target)?;
        files.push(ManifestFile { name: name.to_string(), schema_version, rows, bytes, sha256 });
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        created_at,
        finished_at: clock.now(),
        omnimemory_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: "sqlite".to_string(),
        keys: rows_of(&files, "api_keys.db"),
        usage_records: rows_of(&files, "usage.db"),
        files,
    };
    write_new_file(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    sync_dir(dir)?;
    let mut page = Page::default();
    page.banner("✓ Backup written")
        .field("Folder", dir.display())
        .field("Snapshot of", manifest.created_at)
        .field("Keys", thousands(manifest.keys))
        .field("Usage records", thousands(manifest.usage_records))
        .table(&files_table(&manifest.files))
        .line(format!("\n  Restore with: omnimemory admin restore {}", dir.display()));
    let json = json!({"ok": true, "dir": dir.display().to_string(), "manifest": manifest});
    Ok(Outcome::ok(page.finish(), json))
}

/// `admin restore DIR`.
pub async fn restore(settings: &Settings, dir: &Path, clock: &dyn Clock) -> anyhow::Result<Outcome> {
    if settings.database_url.is_some() {
        return Ok(failed(POSTGRES_ADVICE, "postgres_backend"));
    }
    let manifest: Manifest = match std::fs::read(dir.join(MANIFEST)) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                return Ok(failed(
                    &format!("{}/{MANIFEST} is not a valid manifest: {e}", dir.display()),
                    "bad_manifest",
                ));
            }
        },
        Err(_) => {
            return Ok(failed(
                &format!("no {MANIFEST} in {}: not a finished backup made by `admin backup`", dir.display()),
                "bad_manifest",
            ));
        }
    };
    if manifest.format != FORMAT || manifest.backend != "sqlite" {
        return Ok(failed(
            &format!(
                "{}/{MANIFEST} is a {} backup of {}; this binary restores {FORMAT} of sqlite",
                dir.display(),
                manifest.format,
                manifest.backend
            ),
            "bad_manifest",
        ));
    }
    for (name, _) in FILES {
        let Some(entry) = manifest.files.iter().find(|f| f.name == name) else {
            return Ok(failed(&format!("the manifest does not list {name}"), "bad_manifest"));
        };
        let path = dir.join(name);
        let matches = match checksum(&path) {
            Ok((bytes, sha256)) => bytes == entry.bytes && sha256 == entry.sha256,
            Err(_) => false,
        };
        if !matches {
            return Ok(failed(
                &format!(
                    "{} is missing or does not match its size and SHA-256 in the manifest (damaged or changed since the backup)",
                    path.display()
                ),
                "checksum_mismatch",
            ));
        }
    }
    let home = &settings.home;
    let _lock = match FolderLock::acquire(home) {
        Ok(lock) => lock,
        Err(StoreError::FolderInUse { .. }) => {
            return Ok(failed(
                &format!(
                    "a server is running on {} (it holds serve.lock): stop it before restoring over its data",
                    home.display()
                ),
                "server_running",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let stamp = clock.now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
    let staging = home.join(format!(".restore-{stamp}"));
    create_private_dir(&staging)?;
    let staged = stage(dir, &staging, &manifest).await;
    let counted = match staged {
        Ok(Ok(counted)) => counted,
        Ok(Err(outcome)) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Ok(outcome);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The data being replaced is moved aside, never deleted.
    let aside = home.join(format!("pre-restore-{stamp}"));
    let mut moved = false;
    for (name, _) in FILES {
        for suffix in ["", "-wal", "-shm"] {
            let file = home.join(format!("{name}{suffix}"));
            if file.exists() {
                if !moved {
                    create_private_dir(&aside)?;
                    moved = true;
                }
                std::fs::rename(&file, aside.join(format!("{name}{suffix}")))?;
            }
        }
    }
    for (name, _) in FILES {
        std::fs::rename(staging.join(name), home.join(name))?;
    }
    sync_dir(home)?;
    let _ = std::fs::remove_dir_all(&staging);
    let mut page = Page::default();
    page.banner("✓ Backup restored")
        .field("From", dir.display())
        .field("Snapshot of", manifest.created_at)
        .field("Into", home.display())
        .field("Keys", thousands(counted.0))
        .field("Usage records", thousands(counted.1))
        .field("Previous data", if moved { aside.display().to_string() } else { "none".to_string() });
    let json = json!({
        "ok": true, "dir": dir.display().to_string(), "home": home.display().to_string(),
        "created_at": manifest.created_at, "keys": counted.0, "usage_records": counted.1,
        "previous_data": moved.then(|| aside.display().to_string()),
    });
    Ok(Outcome::ok(page.finish(), json))
}

/// Copies the backup's files into `staging`, opens them as a store (which migrates an older
/// schema forward and refuses a newer one) and checks the counts against the manifest.
/// `Ok(Err(_))` is a refusal.
async fn stage(dir: &Path, staging: &Path, manifest: &Manifest) -> anyhow::Result<Result<(u64, u64), Outcome>> {
    for (name, _) in FILES {
        let staged = staging.join(name);
        copy_private(&dir.join(name), &staged)?;
    }
    let store = match Store::open(staging, None).await {
        Ok(store) => store,
        Err(StoreError::Corrupt(why)) => {
            return Ok(Err(failed(&format!("the backup cannot be used by this binary: {why}"), "schema_too_new")));
        }
        Err(e) => return Err(e.into()),
    };
    let info = store.database_info().await;
    store.close().await;
    let info = info?;
    if (info.total_keys, info.usage_records) != (manifest.keys, manifest.usage_records) {
        return Ok(Err(failed(
            &format!(
                "the backup holds {} keys and {} usage records, its manifest says {} and {}",
                info.total_keys, info.usage_records, manifest.keys, manifest.usage_records
            ),
            "count_mismatch",
        )));
    }
    for (name, _) in FILES {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(staging.join(format!("{name}{suffix}")));
        }
        std::fs::File::open(staging.join(name))?.sync_all()?;
    }
    Ok(Ok((info.total_keys, info.usage_records)))
}

/// The schema version and row count of `table` in a backup file, read without changing it.
async fn describe(path: &Path, table: &str) -> anyhow::Result<(i64, u64)> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut conn).await?;
    let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    conn.close().await?;
    Ok((version, rows.max(0) as u64))
}

fn rows_of(files: &[ManifestFile], name: &str) -> u64 {
    files.iter().find(|f| f.name == name).map_or(0, |f| f.rows)
}

fn files_table(files: &[ManifestFile]) -> comfy_table::Table {
    let mut table = new_table(&["File", "Schema", "Rows", "Bytes", "SHA-256"]);
    for f in files {
        table.add_row([
            f.name.clone(),
            f.schema_version.to_string(),
            thousands(f.rows),
            thousands(f.bytes),
            f.sha256.clone(),
        ]);
    }
    table
}

/// Size and SHA-256 (hex) of a file, read in chunks.
fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(path)?.sync_all()
}

fn new_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = new_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn copy_private(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut target = new_private_file(to)?;
    std::io::copy(&mut source, &mut target)?;
    target.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
