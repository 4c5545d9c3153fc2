//! The admin CLI: commands, output layout, `--json`, exit codes.

use crate::harness::{Backend, TestEnv};

fn json(out: &crate::harness::CliOutput) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

async fn create_verify_and_list_keys(backend: Backend) {
    let env = TestEnv::new(backend);
    let created = env.cli(&["admin", "create-key", "--user-id", "u1", "--tier", "pro", "--email", "u1@x.io"], None);
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(created.stdout.contains("=====") && created.stdout.contains("shown only once"));
    let key = created.stdout.lines().find_map(|l| l.trim().strip_prefix("API Key:")).unwrap().trim().to_string();
    assert!(key.starts_with("om_pro_") && key.len() == "om_pro_".len() + 43, "{key}");
    assert!(created.stdout.contains("100,000,000 tokens"), "{}", created.stdout);

    let verified = env.cli(&["admin", "verify-key", &key], None);
    assert_eq!(verified.code, 0);
    assert!(verified.stdout.contains("Valid API key") && verified.stdout.contains("u1"));
    let bar = verified.stdout.lines().find(|l| l.contains('[') && l.contains('░')).unwrap();
    assert_eq!(bar.chars().filter(|&c| c == '░' || c == '█').count(), 40, "{bar}");

    let listed = env.cli(&["admin", "list-users"], None);
    assert_eq!(listed.code, 0);
    assert!(listed.stdout.contains(&key[..15]) && !listed.stdout.contains(&key), "{}", listed.stdout);
    let listed = json(&env.cli(&["admin", "list-users", "--tier", "free", "--json"], None));
    assert_eq!(listed["count"], 0);
    let listed = json(&env.cli(&["admin", "list-users", "--json"], None));
    assert_eq!(listed["keys"][0]["key_id"].as_str(), Some(&key[..15]));
    assert!(listed["keys"][0].get("id").is_none() && !listed.to_string().contains(&key));
}

async fn a_key_may_expire(backend: Backend) {
    let env = TestEnv::new(backend);
    let created = json(&env.cli(
        &["admin", "create-key", "--user-id", "temp", "--tier", "free", "--expires-in-days", "7", "--json"],
        None,
    ));
    let expires: jiff::Timestamp = created["expires_at"].as_str().unwrap().parse().unwrap();
    let in_days = (expires - jiff::Timestamp::now()).as_secs_f64() / 86_400.0;
    assert!((6.9..=7.0).contains(&in_days), "{in_days}");
    let verified = json(&env.cli(&["admin", "verify-key", created["api_key"].as_str().unwrap(), "--json"], None));
    assert_eq!(
        (verified["status"].as_str(), verified["expires_at"].as_str()),
        (Some("active"), created["expires_at"].as_str())
    );
    assert_eq!(
        env.cli(&["admin", "create-key", "--user-id", "t", "--tier", "free", "--expires-in-days", "0"], None).code,
        2
    );
}

async fn exit_codes_are_zero_one_two(backend: Backend) {
    let env = TestEnv::new(backend);
    let unknown = format!("om_free_{}", "B".repeat(43));
    assert_eq!(env.cli(&["admin", "verify-key", &unknown], None).code, 1);
    assert_eq!(env.cli(&["admin", "verify-key", "garbage"], None).code, 1);
    assert_eq!(env.cli(&["admin", "create-key", "--user-id", "u", "--tier", "gold"], None).code, 2);
    assert_eq!(env.cli(&["admin", "create-key", "--tier", "pro"], None).code, 2);
    assert_eq!(env.cli(&["admin", "no-such-command"], None).code, 2);
    assert_eq!(env.cli(&["admin", "usage-stats", &unknown, "--days", "0"], None).code, 2);
    assert_eq!(env.cli(&["admin", "database-info"], None).code, 0);
}

async fn deactivate_then_activate_by_key_or_by_key_id(backend: Backend) {
    let env = TestEnv::new(backend);
    let created = json(&env.cli(&["admin", "create-key", "--user-id", "u2", "--tier", "free", "--json"], None));
    let key = created["api_key"].as_str().unwrap();
    let key_id = created["key_id"].as_str().unwrap();

    assert_eq!(env.cli(&["admin", "deactivate-key", key_id], None).code, 0);
    let v = env.cli(&["admin", "verify-key", key, "--json"], None);
    assert_eq!((v.code, json(&v)["status"].as_str()), (1, Some("deactivated")));
    assert_eq!(env.cli(&["admin", "activate-key", key], None).code, 0);
    assert_eq!(env.cli(&["admin", "verify-key", key_id], None).code, 0);
}

async fn reset_usage_asks_for_confirmation_unless_yes(backend: Backend) {
    let env = TestEnv::new(backend);
    let refused = env.cli(&["admin", "reset-usage"], Some("n\n"));
    assert_eq!(refused.code, 1);
    assert!(refused.stdout.contains("Aborted"), "{}", refused.stdout);
    let no_answer = env.cli(&["admin", "reset-usage"], None);
    assert_eq!(no_answer.code, 1);
    assert_eq!(env.cli(&["admin", "reset-usage"], Some("yes\n")).code, 0);
    let done = json(&env.cli(&["admin", "reset-usage", "--yes", "--json"], None));
    assert_eq!(done["reset"], true);
    assert_eq!(env.cli(&["admin", "reset-usage", "--user-id", "nobody", "--yes"], None).code, 1);
}

async fn usage_and_limits_commands_show_real_zeros_for_a_new_key(backend: Backend) {
    let env = TestEnv::new(backend);
    let created = json(&env.cli(&["admin", "create-key", "--user-id", "u3", "--tier", "enterprise", "--json"], None));
    let key = created["api_key"].as_str().unwrap();
    let stats = json(&env.cli(&["admin", "usage-stats", key, "--days", "7", "--detailed", "--json"], None));
    assert_eq!((stats["days"].as_u64(), stats["stats"]["total_compressions"].as_u64()), (Some(7), Some(0)));
    let text = env.cli(&["admin", "usage-stats", key, "--detailed"], None);
    assert!(text.stdout.contains("last 7 days") || text.stdout.contains("last 30 days"));
    let info = json(&env.cli(&["admin", "database-info", "--json"], None));
    assert_eq!((info["total_keys"].as_u64(), info["usage_records"].as_u64()), (Some(1), Some(0)));
    let limits = json(&env.cli(&["admin", "rate-limit-info", key, "--json"], None));
    assert_eq!(limits["burst"], 100);
}

crate::on_both_backends! {
    a_key_may_expire,
    create_verify_and_list_keys,
    exit_codes_are_zero_one_two,
    deactivate_then_activate_by_key_or_by_key_id,
    reset_usage_asks_for_confirmation_unless_yes,
    usage_and_limits_commands_show_real_zeros_for_a_new_key,
}
