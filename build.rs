//! Tells the integration tests which test servers were configured when they were built
//! (`OMNIMEMORY_TEST_DATABASE_URL`, `OMNIMEMORY_TEST_REDIS_URL`), so that a test that needs an
//! absent one is reported as ignored, with the reason, instead of passing without running.
//! Cargo reruns this, and rebuilds the tests, when either variable changes.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in [
        ("OMNIMEMORY_TEST_DATABASE_URL", "omnimemory_test_postgres"),
        ("OMNIMEMORY_TEST_REDIS_URL", "omnimemory_test_redis"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
