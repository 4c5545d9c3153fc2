//! `admin backup` / `admin restore`: a snapshot taken under load holds every acknowledged record,
//! a restore checks what it restores and never overwrites a running server's data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sqlx::Row as _;

use crate::harness::{Backend, Server, TestEnv, client, get_json};

fn json_of(out: &crate::harness::CliOutput) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", out.stdout, out.stderr))
}

/// Request ids answered 200 by `/compress`, in the order their answers arrived.
type Acknowledged = Arc<Mutex<Vec<String>>>;

/// Clients sending `/compress` until `stop` is set.
fn start_load(
    server: &Server,
    key: &str,
    stop: &Arc<AtomicBool>,
    acked: &Acknowledged,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|client_no| {
            let (url, key, stop, acked) = (server.url("/compress"), key.to_string(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let http = client();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"context": format!("Client {client_no} request {n}. The report is due on Friday. Alice owns it."),
                                      "metadata": {"client": client_no.to_string()}});
                    let Ok(resp) = http.post(&url).bearer_auth(&key).json(&body).send().await else { continue };
                    if resp.status() == 200 {
                        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect()
}

async fn a_backup_under_load_restores_every_acknowledged_record(backend: Backend) {
    let server = Server::start(&backend);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("backup");
    let target_arg = target.to_str().unwrap();
    if let Backend::Postgres { .. } = backend {
        let out = server.cli(&["admin", "backup", target_arg], None);
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(out.stdout.contains("pg_dump") && out.stdout.contains("pg_restore"), "{}", out.stdout);
        assert!(!target.exists());
        let out = server.cli(&["admin", "restore", target_arg], None);
        assert_eq!(out.code, 1);
        assert!(out.stdout.contains("pg_dump"), "{}", out.stdout);
        return;
    }
    let key =
        server.create_key_with("backed-up", "enterprise", &["--requests-per-second", "10000", "--burst", "10000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acknowledged = Arc::default();
    let load = start_load(&server, &key, &stop, &acked);
    while acked.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Everything acknowledged before the backup command starts must be in the backup.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let (home, env) = (server.home.clone(), backend.env());
    let args = ["admin", "backup", target_arg, "--json"].map(String::from);
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::harness::cli_with(&home, &env, &args, None)
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    // The load went on during the backup and after it.
    let during = acked.lock().unwrap().len();
    eprintln!("acknowledged while the backup command ran: {}", during - before.len());
    while acked.lock().unwrap().len() < during + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let backup = json_of(&out);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(backup["manifest"], manifest);
    assert_eq!(manifest["keys"], 1);
    let in_backup = manifest["usage_records"].as_u64().unwrap();
    assert!(in_backup >= before.len() as u64, "{in_backup} < {}", before.len());
    for file in manifest["files"].as_array().unwrap() {
        assert_eq!(file["sha256"].as_str().unwrap().len(), 64, "{file}");
        assert!(file["schema_version"].as_i64().unwrap() >= 1, "{file}");
    }

    // Restoring over the running server's folder is refused, and changes nothing.
    let refused = server.cli(&["admin", "restore", target_arg], None);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(refused.stdout.contains("a server is running"), "{}", refused.stdout);

    // Into a new folder: every record acknowledged before the backup began is there.
    let restored = TestEnv::new(Backend::Sqlite);
    let out = restored.cli(&["admin", "restore", target_arg, "--json"], None);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let report = json_of(&out);
    assert_eq!((report["keys"].as_u64(), report["usage_records"].as_u64()), (Some(1), Some(in_backup)));
    assert!(report["previous_data"].is_null());
    let ids: std::collections::HashSet<String> = {
        let mut db = Backend::Sqlite.connect(&restored.home, "usage_records").await;
        sqlx::query("SELECT request_id FROM usage_records")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    };
    let total = acked.lock().unwrap().len();
    eprintln!("acknowledged: {} before the backup, {total} in all; in the backup: {in_backup}", before.len());
    let missing: Vec<&String> = before.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(missing.is_empty(), "{} acknowledged records missing, e.g. {:?}", missing.len(), missing.first());

    // A server on the restored folder accepts the key and counts the restored usage.
    let again = Server::builder(&Backend::Sqlite).home(&restored.home).start();
    let stats = get_json(again.url("/usage/stats?days=1"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(in_backup), "{stats}");
    let quota = get_json(again.url("/usage/quota"), &key).await;
    assert!(quota["quota"]["usage"]["current_usage"].as_u64().unwrap() > 0, "{quota}");
}

async fn a_restore_checks_the_manifest_and_keeps_the_data_it_replaces(backend: Backend) {
    if let Backend::Postgres { .. } = backend {
        println!("SKIP: restore of a SQLite folder only (PostgreSQL is refused in the test above)");
        return;
    }
    let source = TestEnv::new(Backend::Sqlite);
    let created = json_of(&source.cli(&["admin", "create-key", "--user-id", "u", "--tier", "pro", "--json"], None));
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    assert_eq!(source.cli(&["admin", "backup", good.to_str().unwrap()], None).code, 0);
    // A backup goes into a new or empty folder only.
    let again = source.cli(&["admin", "backup", good.to_str().unwrap()], None);
    assert_eq!(again.code, 1);
    assert!(again.stdout.contains("not an empty folder"), "{}", again.stdout);

    let target = TestEnv::new(Backend::Sqlite);
    let other = json_of(&target.cli(&["admin", "create-key", "--user-id", "other", "--tier", "free", "--json"], None));

    // A damaged copy, a missing manifest: refused, and the target's data untouched.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for name in ["manifest.json", "api_keys.db", "usage.db"] {
        std::fs::copy(good.join(name), damaged.join(name)).unwrap();
    }
    let mut bytes = std::fs::read(damaged.join("api_keys.db")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(damaged.join("api_keys.db"), bytes).unwrap();
    let out = target.cli(&["admin", "restore", damaged.to_str().unwrap()], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("does not match its size and SHA-256"), "{}", out.stdout);
    std::fs::remove_file(damaged.join("manifest.json")).unwrap();
    let out = target.cli(&["admin", "restore", damaged.to_str().unwrap(), "--json"], None);
    assert_eq!((out.code, json_of(&out)["error"].as_str()), (1, Some("bad_manifest")));
    assert_eq!(target.cli(&["admin", "verify-key", other["api_key"].as_str().unwrap()], None).code, 0);

    // A backup from a newer binary (a schema this one does not know) is refused, untouched.
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    for name in ["api_keys.db", "usage.db"] {
        std::fs::copy(good.join(name), newer.join(name)).unwrap();
    }
    {
        use sqlx::{Connection as _, Executor as _};
        let url = format!("sqlite://{}", newer.join("api_keys.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        db.execute("PRAGMA user_version = 99").await.unwrap();
    }
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(good.join("manifest.json")).unwrap()).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        let bytes = std::fs::read(newer.join(file["name"].as_str().unwrap())).unwrap();
        use sha2::Digest as _;
        let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        file["sha256"] = sha.into();
        file["bytes"] = bytes.len().into();
    }
    std::fs::write(newer.join("manifest.json"), manifest.to_string()).unwrap();
    let out = target.cli(&["admin", "restore", newer.to_str().unwrap(), "--json"], None);
    assert_eq!((out.code, json_of(&out)["error"].as_str()), (1, Some("schema_too_new")), "{}", out.stdout);
    assert!(json_of(&out)["detail"].as_str().unwrap().contains("newer than this binary"), "{}", out.stdout);
    let left: Vec<_> = std::fs::read_dir(&target.home).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().starts_with(".restore-")), "{left:?}");
    assert_eq!(target.cli(&["admin", "verify-key", other["api_key"].as_str().unwrap()], None).code, 0);

    // The real restore replaces the keys and moves the old data aside.
    let out = target.cli(&["admin", "restore", good.to_str().unwrap(), "--json"], None);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let aside = std::path::PathBuf::from(json_of(&out)["previous_data"].as_str().unwrap().to_string());
    assert!(aside.join("api_keys.db").is_file() && aside.starts_with(&target.home));
    assert_eq!(target.cli(&["admin", "verify-key", created["api_key"].as_str().unwrap()], None).code, 0);
    assert_eq!(target.cli(&["admin", "verify-key", other["api_key"].as_str().unwrap()], None).code, 1);
    let help = target.cli(&["admin", "backup", "--help"], None);
    assert!(help.stdout.contains("Example:") && help.stdout.contains("omnimemory admin backup"), "{}", help.stdout);
}

crate::on_both_backends! {
    a_backup_under_load_restores_every_acknowledged_record,
    a_restore_checks_the_manifest_and_keeps_the_data_it_replaces,
}
