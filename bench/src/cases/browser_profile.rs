//! `--browser-cpu-profile`: Chromium's own sampling profiler (the DevTools protocol's
//! `Profiler` domain, reached through chromedriver's `goog/cdp/execute`) around one download,
//! one upload and one run of echoes through the page, after the measured runs, summarised as
//! the functions with the most samples of their own. The page is then built with its wasm
//! function names kept (`strip = "none"`; the code is the same), so wasm frames read as Rust
//! paths.

use std::collections::HashMap;

use anyhow::Context;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Client;
use serde_json::{json, Value};

/// How many functions each summary lists.
const TOP: usize = 25;
/// Sampling interval asked of the profiler, microseconds.
pub(crate) const INTERVAL_US: u64 = 200;

/// One DevTools protocol command for the page's target.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

async fn cdp(client: &Client, cmd: &'static str, params: Value) -> anyhow::Result<Value> {
    client.issue_cmd(Cdp { cmd, params }).await.with_context(|| format!("DevTools command {cmd}"))
}

/// Starts sampling the page.
pub(crate) async fn start(client: Client) -> anyhow::Result<()> {
    cdp(&client, "Profiler.enable", json!({})).await?;
    cdp(&client, "Profiler.setSamplingInterval", json!({ "interval": INTERVAL_US })).await?;
    cdp(&client, "Profiler.start", json!({})).await?;
    Ok(())
}

/// Stops sampling and returns the summary, headed by `title`.
pub(crate) async fn stop(client: Client, title: String) -> anyhow::Result<String> {
    let stopped = cdp(&client, "Profiler.stop", json!({})).await?;
    cdp(&client, "Profiler.disable", json!({})).await?;
    summarise(&stopped["profile"], &title)
}

/// The functions with the most self samples in a `Profiler.Profile`, as a Markdown table;
/// idle time is left out of the shares.
pub(crate) fn summarise(profile: &Value, title: &str) -> anyhow::Result<String> {
    let nodes = profile["nodes"].as_array().context("a profile without nodes")?;
    let mut by_function: HashMap<String, u64> = HashMap::new();
    for node in nodes {
        let frame = &node["callFrame"];
        let name = frame["functionName"].as_str().unwrap_or_default();
        let url = frame["url"].as_str().unwrap_or_default();
        let file = url.rsplit('/').next().unwrap_or_default();
        let label = match (name, file) {
            ("", "") => "(anonymous)".to_owned(),
            (name, "") => name.to_owned(),
            ("", file) => format!("(anonymous) {file}"),
            (name, file) if file.ends_with(".wasm") => format!("{name} [wasm]"),
            (name, file) => format!("{name} [{file}]"),
        };
        *by_function.entry(label).or_default() += node["hitCount"].as_u64().unwrap_or(0);
    }
    let idle = by_function.remove("(idle)").unwrap_or(0);
    let busy: u64 = by_function.values().sum();
    let mut rows: Vec<(String, u64)> = by_function.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let wasm: u64 = rows.iter().filter(|(name, _)| name.ends_with("[wasm]")).map(|(_, n)| n).sum();
    let share = |n: u64| 100.0 * n as f64 / busy.max(1) as f64;
    let mut out = format!(
        "#### {title}\n\n{busy} busy samples ({:.1} % in wasm), {idle} idle, every {INTERVAL_US} µs\n\n| self % | function |\n|---:|---|\n",
        share(wasm)
    );
    for (name, hits) in rows.into_iter().take(TOP) {
        out.push_str(&format!("| {:.1} | `{}` |\n", share(hits), name.replace('|', "\\|")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_samples_are_grouped_by_function_and_idle_is_left_out() {
        let profile = json!({ "nodes": [
            { "id": 1, "callFrame": { "functionName": "(idle)", "url": "" }, "hitCount": 50 },
            { "id": 2, "callFrame": { "functionName": "chacha20::backends::soft::rounds", "url": "http://x/hometun_bg.wasm" }, "hitCount": 30 },
            { "id": 3, "callFrame": { "functionName": "chacha20::backends::soft::rounds", "url": "http://x/hometun_bg.wasm" }, "hitCount": 30 },
            { "id": 4, "callFrame": { "functionName": "onmessage", "url": "http://x/app.js" }, "hitCount": 20 },
            { "id": 5, "callFrame": { "functionName": "(garbage collector)", "url": "" }, "hitCount": 20 },
        ]});
        let table = summarise(&profile, "download").unwrap();
        assert!(table.contains("100 busy samples (60.0 % in wasm), 50 idle"), "{table}");
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| self")).collect();
        assert_eq!(rows[0], "| 60.0 | `chacha20::backends::soft::rounds [wasm]` |");
        assert_eq!(rows.len(), 3);
    }
}
