//! Turns the lab facts the end-to-end harness passes at build time into cfgs, so the browser
//! tests can be marked ignored (with the reason printed) when no lab is there.

fn main() {
    let gates = [
        ("HOMETUN_TEST_INVITE", "hometun_lab"),
        ("HOMETUN_TEST_DROP_URL", "hometun_lab_drop"),
        ("HOMETUN_TEST_REVOKE_URL", "hometun_lab_revoke"),
    ];
    for (var, cfg) in gates {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    for var in ["HOMETUN_TEST_LAN_HOST", "HOMETUN_TEST_LAN_NAME"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
