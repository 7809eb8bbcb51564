//! Every saved failing scenario in `net-sim/regressions/` replays and passes (in the proxy world
//! when its file name starts with `proxy-`, else in the backend world).

use weaprous_net_sim::backend::BackendScenario;
use weaprous_net_sim::check::{replay_in, World};

#[test]
fn saved_failing_scenarios_now_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("regressions dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let sc: BackendScenario = serde_json::from_str(&text).expect("a scenario");
        // The file's name says its world.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let world = if name.starts_with("proxy-") {
            World::Proxy
        } else {
            World::Backend
        };
        if let Err(f) = replay_in(world, &sc) {
            panic!("{}: {f}", path.display());
        }
        n += 1;
    }
    assert!(n >= 2, "the regression scenarios were found ({n})");
}
