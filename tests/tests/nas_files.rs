//! Files on the NAS, used in the page: a long recording on a real file server (nginx) of the
//! lab's LAN, played in an `<audio>` element of the app's page (the browser's media player reads
//! the file in ranges through the app's service worker, and a seek makes it give up the range it
//! was reading for another), and files saved with the app's download links. From Chromium (an
//! app tab of its own), Firefox and Safari's engine (the launcher's frame, which lets the app go
//! full screen).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::apps::nginx::Nginx;
use hometun_tests::browser::apps_page::{self, open_app, open_typed, wait, TrustedLab};
use hometun_tests::browser::engines::{self, FrameEngine};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, Lab, Node};

/// The NAS's file server.
const NAS: (std::net::Ipv4Addr, u16) = (addr::HOST10, 8082);
/// The recording: 8 kHz, 16-bit mono PCM (16,000 bytes a second), 2,000 s long: 32 MB, far more
/// than a player reads ahead of where it plays.
const SECONDS: u32 = 2_000;
const RATE: u32 = 8_000;
const HEADER: u64 = 44;
const SIZE: u64 = HEADER + SECONDS as u64 * RATE as u64 * 2;

/// How long the page may take to load the file's start, to seek and to play.
const MEDIA: Duration = Duration::from_secs(30);

/// A user opens the NAS's file server from the launcher, plays a recording in the page (see
/// [`plays_and_seeks`]) and saves files with its download links (see [`downloads_are_the_files`]).
#[test]
fn a_recording_on_the_nas_plays_and_seeks_and_downloads_are_saved_in_an_app_tab() {
    let lab = Lab::start().expect("lab");
    let nas = nas(&lab).expect("nginx with the recording");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(nas.addr).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "launcher", || trusted.connect(&page, "nas-files-phone"));
    step(&page, "the file server", || {
        let (_tab, url) = open_app(&page, &launcher, &format!("http://{}/", nas.addr))?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        wait(&page, "the file server's index", MEDIA, "return document.querySelector('h1') ? 1 : null").map(|_| ())
    });
    step(&page, "plays and seeks", || plays_and_seeks(&page, &nas));
    step(&page, "downloads", || downloads_are_the_files(&lab, &page, &nas));
}

/// The same on an iPhone (Safari's engine, WebKitGTK here), in the launcher's frame: the app may
/// go full screen, the recording plays and seeks, and the download links fetch the files whole
/// (see [`click_the_download_links`]).
#[test]
fn a_recording_on_the_nas_plays_and_seeks_and_downloads_are_fetched_in_safaris_engine() {
    in_the_launchers_frame(FrameEngine::WebKit);
}

/// The same in Firefox, in the launcher's frame.
#[test]
fn a_recording_on_the_nas_plays_and_seeks_and_downloads_are_fetched_in_firefox() {
    in_the_launchers_frame(FrameEngine::Firefox);
}

fn in_the_launchers_frame(engine: FrameEngine) {
    let lan = std::net::SocketAddrV4::new(NAS.0, NAS.1);
    let use_it = |page: &Session, nas: &Nginx| -> anyhow::Result<()> {
        wait(page, "the file server's index", MEDIA, "return document.querySelector('h1') ? 1 : null")?;
        let full_screen = page.execute("return document.fullscreenEnabled", &[])?;
        ensure!(full_screen == true, "the app in the launcher's frame may not go full screen ({full_screen})");
        plays_and_seeks(page, nas)?;
        click_the_download_links(page, nas, engine == FrameEngine::Firefox).map(|_| ())
    };
    engines::in_an_apps_frame(engine, "nas-files", lan, &format!("http://{lan}/"), nas, use_it);
}

/// A user saves files from the NAS with its download links: a `<a download="…">` clicked, and
/// one a script makes and `click()`s without putting it in the page (as apps' "Download" buttons
/// do). Each file is saved under the name the link gives (or the file's own) with exactly the
/// NAS's bytes. Chromium fetches such links past the app's service worker, where the relay has
/// only its own boot page to answer with. A file the page makes itself (a `blob:` link) is saved
/// as it was made; a link that the NAS sends on to the file (`302`) saves the file, and so does
/// one on a page whose script policy allows no frames. A link to a file the NAS no longer has
/// shows in the browser's list of downloads as failed.
fn downloads_are_the_files(lab: &Lab, page: &Session<'_>, nas: &Nginx) -> anyhow::Result<()> {
    let saved = lab.dir().join("downloads");
    std::fs::create_dir_all(&saved)?;
    page.cdp(
        "Browser.setDownloadBehavior",
        serde_json::json!({ "behavior": "allow", "downloadPath": saved.to_string_lossy() }),
    )?;
    let backup = click_the_download_links(page, nas, true)?;
    let song = hometun_tests::apps::sha256_hex(&std::fs::read(nas.root().join("song.wav"))?);
    // A file the page makes itself (an app's export) is saved from the page, as it always was.
    let export = "date,kWh\n2026-12-06,7.5\n";
    page.execute(
        "const a = document.createElement('a'); a.download = 'export.csv'; \
         a.href = URL.createObjectURL(new Blob([arguments[0]], {type: 'text/csv'})); a.click(); return 1",
        &[serde_json::json!(export)],
    )?;
    let export = hometun_tests::apps::sha256_hex(export.as_bytes());
    // A link that leads on to the file, and one on a page whose policy allows no frames.
    page.execute(
        "const a = document.createElement('a'); a.href = '/get/backup'; a.download = 'Led on.bin'; a.click(); return 1",
        &[],
    )?;
    // The page is left once the download has begun (a frame's download ends with its page
    // before the answer comes, as it would without hometun).
    hometun_tests::lab::wait_until(MEDIA, || {
        (saved.join("Led on.bin").exists() || saved.join("Led on.bin.crdownload").exists()).then_some(())
    })
    .context("the download led on by a 302 did not begin")?;
    page.execute("location.href = '/strict.html'; return 1", &[])?;
    wait(page, "the page without frames", MEDIA, "return document.title === 'strict' ? 1 : null")?;
    page.execute(
        "const a = document.createElement('a'); a.href = '/backup.bin'; a.download = 'Strict.bin'; a.click(); return 1",
        &[],
    )?;
    // A link to a file gone from the NAS: the browser's list of downloads says it failed, where
    // nothing showed before.
    page.execute(
        "const a = document.createElement('a'); a.href = '/gone.bin'; a.download = 'Gone.bin'; a.click(); return 1",
        &[],
    )?;
    let app = page.window()?;
    let list = open_typed(page, "chrome://downloads/")?;
    let gone = wait(
        page,
        "Gone.bin in the list of downloads",
        MEDIA,
        "const m = document.querySelector('downloads-manager'); \
         const items = m ? [...m.shadowRoot.querySelectorAll('downloads-item')] : []; \
         const gone = items.map((i) => i.data).find((d) => d && d.fileName === 'Gone.bin'); \
         return gone && gone.lastReasonText ? gone.lastReasonText : null",
    )?;
    ensure!(gone.as_str().is_some_and(|t| t.starts_with("Failed")), "Gone.bin in the list of downloads: {gone}");
    ensure!(
        nas.requests().iter().any(|l| l.contains("\"GET /gone.bin HTTP/1.1\" 404 ")),
        "the NAS was not asked for the gone file: {:?}",
        nas.requests()
    );
    apps_page::close_tab(page, &list, &app)?;
    let files = [
        ("NAS backup.bin", &backup),
        ("song.wav", &song),
        ("export.csv", &export),
        ("Led on.bin", &backup),
        ("Strict.bin", &backup),
    ];
    for (name, sha) in files {
        let path = saved.join(name);
        let got = hometun_tests::lab::wait_until(MEDIA, || {
            let bytes = std::fs::read(&path).ok()?;
            let partial = saved.join(format!("{name}.crdownload")).exists();
            (!partial).then(|| hometun_tests::apps::sha256_hex(&bytes))
        })
        .with_context(|| format!("{name} was not saved: {:?}", std::fs::read_dir(&saved).map(|d| d.count())))?;
        ensure!(&got == sha, "{name} was saved with other bytes (SHA-256 {got}, the NAS's {sha})");
    }
    Ok(())
}

/// In the app's page: puts an 8 MiB `backup.bin` on the NAS and clicks a link to it named "NAS
/// backup.bin", then makes a link to `song.wav` and `click()`s it without putting it in the page;
/// waits until the NAS has sent both whole to the relay (only the first `with_detached` false:
/// the lab's WebKit fetches nothing for a link outside the page, with or without hometun).
/// Returns the backup's SHA-256.
fn click_the_download_links(page: &Session<'_>, nas: &Nginx, with_detached: bool) -> anyhow::Result<String> {
    let backup = nas.add_random_file("backup.bin", 8 << 20)?;
    page.execute(
        "const a = document.createElement('a'); a.id = 'save'; a.href = '/backup.bin'; \
         a.download = 'NAS backup.bin'; a.textContent = 'Save the backup'; document.body.append(a); return 1",
        &[],
    )?;
    page.click("#save")?;
    page.execute(
        "const a = document.createElement('a'); a.href = '/song.wav'; a.download = ''; a.click(); return 1",
        &[],
    )?;
    let sent_whole = |file: &str, size: u64| {
        let whole = format!("\"GET /{file} HTTP/1.1\" 200 {size} ");
        nas.requests().iter().any(|l| l.starts_with(&addr::HOME.to_string()) && l.contains(&whole))
    };
    let both = || sent_whole("backup.bin", 8 << 20) && (!with_detached || sent_whole("song.wav", SIZE));
    hometun_tests::lab::wait_until(MEDIA, || both().then_some(()))
        .with_context(|| format!("the NAS did not send both files whole to the relay: {:?}", nas.requests()))?;
    Ok(backup)
}

/// The NAS: nginx on a LAN host serving `song.wav` ([`wav`]), a download link that leads on
/// (`/get/backup` → `/backup.bin`), and a page whose policy allows no frames.
fn nas(lab: &Lab) -> anyhow::Result<Nginx> {
    let strict = b"<!doctype html><title>strict</title><h1>strict</h1>".as_slice();
    Nginx::start_with(
        lab,
        Node::Host10,
        SocketAddr::from(NAS),
        "nas",
        &[("song.wav", &wav()), ("strict.html", strict)],
        r#"location = /get/backup { return 302 /backup.bin; }
        location = /strict.html { add_header Content-Security-Policy "default-src 'self'; frame-src 'none'"; }"#,
    )
}

/// In the app's page: an `<audio>` element of `/song.wav` shows the recording's length (read from
/// its start), a seek to 90 % of it ends (the player asked the NAS for a range from there), and
/// it plays on from there. Once the page lets go of the element, the player's request from the
/// file's start and one from near its end have ended at the NAS, and the one from the start
/// carried less than half the file: the player gave it up at the seek, and the tunnel closed it
/// rather than reading it to its end. (Safari's engine goes on to fetch the rest of the file in
/// ranges of its own while it plays, as it does from any server.)
fn plays_and_seeks(page: &Session<'_>, nas: &Nginx) -> anyhow::Result<()> {
    let limit = serde_json::json!(MEDIA.as_millis() as u64);
    let got = page.execute_async(LOAD_AND_SEEK, std::slice::from_ref(&limit))?;
    ensure!(got.get("error").is_none(), "the page: {}", got["error"]);
    let duration = got["duration"].as_f64().unwrap_or(f64::NAN);
    ensure!((duration - f64::from(SECONDS)).abs() < 1.0, "the player says the recording is {duration} s long: {got}");
    let from = got["from"].as_f64().unwrap_or(0.0);
    ensure!(from >= duration * 0.85, "after the seek the player is at {from} s: {got}");
    page.click("#play")?;
    let got = page.execute_async(PLAYED, &[limit])?;
    ensure!(got.get("error").is_none(), "the page: {}", got["error"]);
    let played = got["played"].as_f64().unwrap_or(0.0);
    ensure!(played > 0.5, "it played {played} s from the seek: {got}");
    eprintln!("nas-files: {duration:.0} s recording; after the seek it played {played:.1} s from {from:.0} s");

    // The log has a line for a request once it ended. The player let go of the element, so every
    // request it made must have ended (the tunnel's connection to the NAS closed or finished):
    // the one from the start, given up at the seek, and the one from near the end.
    let ended = hometun_tests::lab::wait_until(Duration::from_secs(15), || {
        let all: Vec<Request> = nas.requests().iter().filter_map(|line| Request::parse(line)).collect();
        let from_the_start = all.iter().any(|r| r.range_start.is_none_or(|s| s == 0));
        let from_near_the_end = all.iter().any(|r| r.range_start.is_some_and(|s| s >= SIZE * 8 / 10));
        (from_the_start && from_near_the_end).then_some(all)
    })
    .with_context(|| format!("the player's requests did not both end at the NAS: {:?}", nas.requests()))?;
    ensure!(ended.iter().all(|r| r.from_the_relay), "requests not from the tunnel: {:?}", nas.requests());
    let answered = |r: &Request| r.status == if r.range_start.is_some() { 206 } else { 200 };
    ensure!(ended.iter().all(answered), "the NAS answered otherwise: {:?}", nas.requests());
    let carried: u64 = ended.iter().map(|r| r.sent).sum();
    let given_up = ended.iter().filter(|r| r.range_start.is_none_or(|s| s == 0));
    ensure!(
        given_up.clone().all(|r| r.sent < SIZE / 2),
        "the request from the start, given up at the seek, was read on: {:?}",
        given_up.collect::<Vec<_>>()
    );
    eprintln!("nas-files: {} requests carried {carried} bytes of {SIZE}: {ended:?}", ended.len());
    Ok(())
}

/// `arguments[0]`: how long each wait may take (ms). Loads the recording, seeks to 90 % of it
/// and shows a Play button (browsers play sound only after the user did something on the page).
/// Answers `{duration, from}` or `{error}`.
const LOAD_AND_SEEK: &str = r#"
const [limit, done] = arguments;
(async () => {
  const audio = document.createElement('audio');
  audio.preload = 'auto';
  const event = (name) => new Promise((resolve, reject) => {
    const failed = () => reject(new Error(`media error ${audio.error && audio.error.code}: ${audio.error && audio.error.message}`));
    audio.addEventListener(name, () => { audio.removeEventListener('error', failed); resolve(); }, { once: true });
    audio.addEventListener('error', failed, { once: true });
    setTimeout(() => reject(new Error(`no ${name} within ${limit} ms (readyState ${audio.readyState}, networkState ${audio.networkState})`)), limit);
  });
  const loaded = event('loadedmetadata');
  audio.src = '/song.wav';
  document.body.append(audio);
  await loaded;
  const duration = audio.duration;
  const seeked = event('seeked');
  audio.currentTime = duration * 0.9;
  await seeked;
  const button = document.createElement('button');
  button.id = 'play';
  button.textContent = 'Play';
  button.onclick = () => { window.playing = audio.play(); };
  document.body.append(button);
  window.recording = audio;
  return { duration, from: audio.currentTime };
})().then(done, (e) => done({ error: String(e) }));
"#;

/// After Play: answers `{played}`, the seconds it played on (waiting up to `arguments[0]` ms for
/// one), and lets go of the element.
const PLAYED: &str = r#"
const [limit, done] = arguments;
(async () => {
  const audio = window.recording;
  await window.playing;
  const from = audio.currentTime;
  const start = performance.now();
  while (audio.currentTime - from < 1 && performance.now() - start < limit) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const played = audio.currentTime - from;
  audio.pause();
  audio.removeAttribute('src');
  audio.load();
  audio.remove();
  return { played };
})().then(done, (e) => done({ error: String(e) }));
"#;

/// One line of the NAS's access log for `/song.wav`.
#[derive(Debug)]
struct Request {
    from_the_relay: bool,
    status: u16,
    sent: u64,
    range_start: Option<u64>,
}

impl Request {
    /// `ADDRESS "GET /song.wav HTTP/1.1" STATUS SENT "RANGE" …`; `None` for other lines.
    fn parse(line: &str) -> Option<Self> {
        let (address, rest) = line.split_once(' ')?;
        let rest = rest.strip_prefix("\"GET /song.wav ")?;
        let (_, rest) = rest.split_once("\" ")?;
        let mut fields = rest.splitn(3, ' ');
        let status = fields.next()?.parse().ok()?;
        let sent = fields.next()?.parse().ok()?;
        let range = fields.next()?.split('"').nth(1)?;
        let range_start = range.strip_prefix("bytes=").and_then(|r| r.split('-').next()?.parse().ok());
        Some(Self { from_the_relay: address == addr::HOME.to_string(), status, sent, range_start })
    }
}

/// A WAV file of [`SECONDS`] of a 440 Hz tone at [`RATE`] samples a second, 16-bit mono.
fn wav() -> Vec<u8> {
    let data = u32::try_from(SIZE - HEADER).expect("fits a WAV");
    let mut out = Vec::with_capacity(SIZE as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(data + 36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    let period: Vec<u8> = (0..RATE / 40)
        .flat_map(|i| {
            let phase = f64::from(i) * 2.0 * std::f64::consts::PI * 440.0 / f64::from(RATE);
            ((phase.sin() * 8000.0) as i16).to_le_bytes()
        })
        .collect();
    while (out.len() as u64) < SIZE {
        let room = (SIZE as usize - out.len()).min(period.len());
        out.extend_from_slice(&period[..room]);
    }
    out
}

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "nas-files", name, f)
}
