//! Every saved failing scenario in `net-sim/regressions/` replays and passes, in the world its
//! file name starts with (`proxy-`, `line-`, `chat-`, `p2p-`, else the backend world), as `sim --replay` picks it.

use weaprous_net_sim::backend::BackendWorld;
use weaprous_net_sim::chat_world::ChatWorld;
use weaprous_net_sim::line_world::LineWorld;
use weaprous_net_sim::p2p_world::P2pWorld;
use weaprous_net_sim::proxy_world::ProxyWorld;
use weaprous_net_sim::world::{replay, World};

fn replay_file<W: World>(text: &str) -> Result<String, String> {
    let sc: W::Scenario = serde_json::from_str(text).map_err(|e| e.to_string())?;
    replay::<W>(&sc)
}

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
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let result = if name.starts_with("proxy-") {
            replay_file::<ProxyWorld>(&text)
        } else if name.starts_with("line-") {
            replay_file::<LineWorld>(&text)
        } else if name.starts_with("chat-") {
            replay_file::<ChatWorld>(&text)
        } else if name.starts_with("p2p-") {
            replay_file::<P2pWorld>(&text)
        } else {
            replay_file::<BackendWorld>(&text)
        };
        if let Err(f) = result {
            panic!("{}: {f}", path.display());
        }
        n += 1;
    }
    assert!(n >= 2, "the regression scenarios were found ({n})");
}
