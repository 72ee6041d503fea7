//! Keeps certificates fresh: one task per name obtains its certificate, renews it at about two
//! thirds of its lifetime (jittered, so many relays do not renew at the same second), retries
//! with exponential backoff when the ACME server fails, and serves the old certificate
//! meanwhile. App names join when an enrolled device asks for one ([`Keeper::demand`]), within
//! the count and rate caps. When all places are taken, the name used longest ago (asked for by a
//! device: a launcher asks each time it opens an app or hands an app page its port) makes room,
//! once it has been idle for [`IDLE_BEFORE_EVICTION`]: so the names a device once asked for (a
//! revoked device's too) do not hold the places forever. A TLS handshake naming one does not
//! count: anyone may send one, and the names are public in certificate logs.

use super::certs::{Certs, Leaf};
use super::client::{self, AcmeError};
use super::names::{self, AppNames};
use super::settings::{Settings, APP_CERTS_PER_HOUR, MAX_APP_CERTS};
use super::store::Store;
use crate::daemon::LogLimiter;
use hometun_shared::app_name::AppTarget;
use hometun_shared::control::AppCertOutcome;
use instant_acme::Account;
use rand_core::RngCore;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lines about refused app names, at most one a second (an enrolled device may send thousands
/// of demands); each says how many were left out.
static REFUSED_LOG: LogLimiter = LogLimiter::new(1);

/// First wait after a failed order; doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_secs(5);
/// Longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Failed first orders after which an app name is given up (a device's demand after
/// [`GIVEN_UP_FOR`] may try again, within the hourly cap); keeps a name whose DNS is missing from
/// burning the CA's limits.
pub const APP_NAME_ATTEMPTS: u32 = 4;
/// How long demands for a name given up are answered `failed` instead of ordering again.
pub const GIVEN_UP_FOR: Duration = Duration::from_secs(600);
/// How long an app name must have gone unused before a new one may take its place.
pub const IDLE_BEFORE_EVICTION: Duration = Duration::from_secs(7 * 86400);

/// The ACME side of the relay: account, orders, schedule.
pub struct Keeper {
    certs: Arc<Certs>,
    store: Store,
    settings: Settings,
    app_names: Option<AppNames>,
    /// The account, connected on first use; the lock also makes orders run one at a time.
    account: tokio::sync::Mutex<Option<Account>>,
    apps: Mutex<AppBudget>,
    /// Wakes handshakes waiting for a device's demand ([`Keeper::pending`]).
    demanded: tokio::sync::Notify,
}

#[derive(Default)]
struct AppBudget {
    kept: HashMap<String, Kept>,
    /// The last [`Kept::generation`] given out.
    generations: u64,
    started: VecDeque<Instant>,
    /// Names given up after [`APP_NAME_ATTEMPTS`] failed orders, and when: demands for them are
    /// answered `failed` for [`GIVEN_UP_FOR`].
    given_up: HashMap<String, Instant>,
}

/// An app name whose certificate is kept.
struct Kept {
    /// Which `keep` task serves it: one that finds another number has been replaced.
    generation: u64,
    /// When a device last asked for it or a handshake named it.
    used: Instant,
}

impl AppBudget {
    /// Starts keeping `name`; returns its generation.
    fn keep(&mut self, name: String, now: Instant) -> u64 {
        self.generations += 1;
        self.kept.insert(name, Kept { generation: self.generations, used: now });
        self.generations
    }

    /// Whether `name` is still kept by the task of `generation`.
    fn keeps(&self, name: &str, generation: u64) -> bool {
        self.kept.get(name).is_some_and(|kept| kept.generation == generation)
    }

    /// The name used longest ago, when it has been idle for [`IDLE_BEFORE_EVICTION`]: taken out.
    fn evict_idle(&mut self, now: Instant) -> Option<String> {
        let (name, _) = self
            .kept
            .iter()
            .filter(|(_, kept)| now.duration_since(kept.used) >= IDLE_BEFORE_EVICTION)
            .min_by_key(|(_, kept)| kept.used)?;
        let name = name.clone();
        self.kept.remove(&name);
        Some(name)
    }
}

impl Keeper {
    /// A keeper for `certs`; `app_names` is the on-demand policy (none: no app names).
    pub fn new(certs: Arc<Certs>, store: Store, settings: Settings, app_names: Option<AppNames>) -> Arc<Self> {
        Arc::new(Self {
            certs,
            store,
            settings,
            app_names,
            account: tokio::sync::Mutex::new(None),
            apps: Mutex::default(),
            demanded: tokio::sync::Notify::new(),
        })
    }

    /// Starts keeping the domain's certificate and the stored app names' ones.
    pub fn start(self: &Arc<Self>) {
        let Some(domain) = self.certs.domain().map(str::to_owned) else { return };
        for name in self.store.names() {
            if name == domain {
                continue;
            }
            match &self.app_names {
                Some(policy) if policy.check(&name).is_ok() => {
                    let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
                    if apps.kept.len() < self.max_app_certs() && !apps.kept.contains_key(&name) {
                        let generation = apps.keep(name.clone(), Instant::now());
                        tokio::spawn(self.clone().keep(name, generation));
                    }
                }
                _ => tracing::info!(name, "stored certificate no longer fits the LAN; not renewing it"),
            }
        }
        tokio::spawn(self.clone().keep(domain, 0));
    }

    fn max_app_certs(&self) -> usize {
        self.settings.max_app_certs.unwrap_or(MAX_APP_CERTS)
    }

    /// Whether this keeper gets app names' certificates at all (the relay has a domain and knows
    /// its own addresses): what the relay offers devices.
    pub fn offers_app_names(&self) -> bool {
        self.app_names.is_some()
    }

    /// An enrolled device (`device`, whose allow list reaches `app`) is about to open `app` on
    /// its app name: when the name has no certificate yet, starts obtaining one within the caps.
    /// The only way an app name gets a certificate: a TLS handshake naming it orders nothing
    /// ([`Keeper::pending`]), since anyone can send one.
    pub fn demand(self: &Arc<Self>, app: AppTarget, device: &str) -> AppCertOutcome {
        let Some(policy) = &self.app_names else { return AppCertOutcome::Unavailable };
        let name = names::encode(app, &policy.domain);
        if let Err(e) = policy.check_target(app) {
            if let Some(skipped) = REFUSED_LOG.allow(crate::state::unix_now()) {
                tracing::info!(device, name, skipped, "app-name certificate refused: {e}");
            }
            return AppCertOutcome::NotLan;
        }
        let now = Instant::now();
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = apps.kept.get_mut(&name) {
            kept.used = now;
        }
        if self.certs.leaf(&name).is_some() {
            return AppCertOutcome::Ready;
        }
        if apps.kept.contains_key(&name) {
            return AppCertOutcome::Ordering;
        }
        apps.given_up.retain(|_, at| now.duration_since(*at) < GIVEN_UP_FOR);
        if apps.given_up.contains_key(&name) {
            return AppCertOutcome::Failed;
        }
        while apps.started.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600)) {
            apps.started.pop_front();
        }
        let per_hour = self.settings.app_certs_per_hour.unwrap_or(APP_CERTS_PER_HOUR);
        if apps.kept.len() >= self.max_app_certs() && apps.started.len() < per_hour {
            if let Some(idle) = apps.evict_idle(now) {
                tracing::info!(name = idle, "app name unused for a week: its place goes to a new app");
                self.forget(&idle);
            }
        }
        if apps.kept.len() >= self.max_app_certs() || apps.started.len() >= per_hour {
            if let Some(skipped) = REFUSED_LOG.allow(crate::state::unix_now()) {
                tracing::warn!(
                    device,
                    name,
                    kept = apps.kept.len(),
                    skipped,
                    "app-name certificate refused: cap reached"
                );
            }
            return AppCertOutcome::Busy;
        }
        let generation = apps.keep(name.clone(), now);
        apps.started.push_back(now);
        tracing::info!(device, name, "a device opens a new app: obtaining the app name's certificate");
        tokio::spawn(self.clone().keep(name, generation));
        drop(apps);
        self.demanded.notify_waiters();
        AppCertOutcome::Ordering
    }

    /// Stops serving and deletes the certificate of `name`, no longer kept.
    fn forget(&self, name: &str) {
        self.certs.remove(name);
        if let Err(e) = self.store.remove_certificate(name) {
            tracing::warn!(name, "could not delete the certificate of a name no longer kept: {e}");
        }
    }

    /// Whether `sni` (lower case) is an app name whose first certificate is being obtained, so
    /// that a handshake for it may wait for the certificate. For an app name the relay could
    /// certify that nobody asked for yet, waits up to `grace` for a device's demand: a browser
    /// that follows a link to another app may reach the relay a moment before the page's demand
    /// does. Orders nothing.
    pub async fn pending(&self, sni: &str, grace: Duration) -> bool {
        let Some(policy) = &self.app_names else { return false };
        if self.certs.leaf(sni).is_some() || policy.check(sni).is_err() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let demanded = self.demanded.notified();
            let mut demanded = std::pin::pin!(demanded);
            demanded.as_mut().enable();
            if self.apps.lock().unwrap_or_else(|p| p.into_inner()).kept.contains_key(sni) {
                return true;
            }
            if tokio::time::timeout_at(deadline, demanded).await.is_err() {
                return false;
            }
        }
    }

    /// The certificates this keeper fills.
    pub fn certs(&self) -> &Arc<Certs> {
        &self.certs
    }

    /// Obtains and renews `name` forever; an app name until another task of a later
    /// `generation` keeps it or it is no longer kept.
    async fn keep(self: Arc<Self>, name: String, generation: u64) {
        let is_main = self.certs.domain() == Some(name.as_str());
        let replaced = || !is_main && !self.apps.lock().unwrap_or_else(|p| p.into_inner()).keeps(&name, generation);
        let mut backoff = BACKOFF_START;
        let mut failures = 0;
        // Forced renewals count from when this process got the certificate (servers may
        // backdate its start).
        let mut obtained = 0;
        loop {
            if let Some(leaf) = self.certs.leaf(&name) {
                let forced = self.settings.renew_after_secs.map(|after| (leaf.not_before.max(obtained), after));
                let at = renew_at(&leaf, forced, random_fraction());
                if is_main {
                    self.certs.set_acme_state(format!(
                        "valid until {}; renews {}",
                        crate::qr::utc(leaf.not_after),
                        crate::qr::utc(at)
                    ));
                }
                tracing::info!(name, renew_at = %crate::qr::utc(at), "certificate valid until {}", crate::qr::utc(leaf.not_after));
                sleep_until_unix(at).await;
            }
            if replaced() {
                return;
            }
            match self.obtain(&name).await {
                Ok(_) if replaced() => {
                    // Made room for another name while this one was being renewed (unless a
                    // device has asked for it again since, and a new task keeps it).
                    if !self.apps.lock().unwrap_or_else(|p| p.into_inner()).kept.contains_key(&name) {
                        self.forget(&name);
                    }
                    return;
                }
                Ok(leaf) => {
                    backoff = BACKOFF_START;
                    failures = 0;
                    obtained = crate::state::unix_now();
                    tracing::info!(name, issuer = %leaf.issuer, fingerprint = %leaf.fingerprint, "certificate obtained");
                }
                Err(e) => {
                    failures += 1;
                    if !is_main && failures >= APP_NAME_ATTEMPTS && self.certs.leaf(&name).is_none() {
                        tracing::warn!(name, "giving up on this app name after {failures} failed orders: {e}");
                        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
                        if apps.keeps(&name, generation) {
                            apps.kept.remove(&name);
                            apps.given_up.insert(name, Instant::now());
                        }
                        return;
                    }
                    let wait = jitter(backoff, random_fraction());
                    tracing::warn!(name, "obtaining the certificate failed, retrying in {}s: {e}", wait.as_secs());
                    if is_main {
                        let serving = if self.certs.leaf(&name).is_some() {
                            "the current certificate"
                        } else {
                            "the fallback certificate"
                        };
                        self.certs.set_acme_state(format!("retrying in {}s, serving {serving}: {e}", wait.as_secs()));
                    }
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn obtain(&self, name: &str) -> Result<Leaf, AcmeError> {
        let mut connected = self.account.lock().await;
        let account = match connected.as_ref() {
            Some(account) => account.clone(),
            None => {
                let account = client::account(&self.settings, &self.store).await?;
                *connected = Some(account.clone());
                account
            }
        };
        let (stored, served) = client::order(&account, name, &self.certs).await?;
        let leaf = served.leaf.clone();
        // Served first: a certificate the disk cannot take (full, or read-only after card
        // errors) is still good, and ordering it again would spend the CA's weekly limits.
        self.certs.install(name, served);
        if let Err(e) = self.store.save_certificate(name, &stored) {
            tracing::warn!(name, "the new certificate is served but could not be saved: {e}; a restart orders again");
        }
        Ok(leaf)
    }
}

/// When to renew, Unix seconds: two thirds into the lifetime minus up to a thirtieth of it
/// (`fraction` in 0..1 picks where), or `forced = (since, secs)` seconds after `since` when
/// earlier.
pub fn renew_at(leaf: &Leaf, forced: Option<(u64, u64)>, fraction: f64) -> u64 {
    let lifetime = leaf.not_after.saturating_sub(leaf.not_before);
    let jitter = (lifetime as f64 / 30.0 * fraction) as u64;
    let normal = leaf.not_before + lifetime * 2 / 3 - jitter.min(lifetime / 3);
    match forced {
        Some((since, after)) => normal.min(since.saturating_add(after)),
        None => normal,
    }
}

/// `base` scaled by 0.8..1.2.
pub fn jitter(base: Duration, fraction: f64) -> Duration {
    base.mul_f64(0.8 + 0.4 * fraction.clamp(0.0, 1.0))
}

fn random_fraction() -> f64 {
    f64::from(rand_core::OsRng.next_u32()) / f64::from(u32::MAX)
}

async fn sleep_until_unix(at: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if at > now {
        // Long sleeps are cut into hours so a changed wall clock is noticed.
        tokio::time::sleep(Duration::from_secs((at - now).min(3600))).await;
        Box::pin(sleep_until_unix(at)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(not_before: u64, days: u64) -> Leaf {
        Leaf {
            names: vec![],
            issuer: String::new(),
            not_before,
            not_after: not_before + days * 86400,
            fingerprint: String::new(),
        }
    }

    #[test]
    fn renewal_comes_at_two_thirds_of_the_lifetime_jittered_earlier() {
        let l = leaf(1_000_000, 90);
        assert_eq!(renew_at(&l, None, 0.0), 1_000_000 + 60 * 86400);
        assert_eq!(renew_at(&l, None, 1.0), 1_000_000 + 57 * 86400);
        let mid = renew_at(&l, None, 0.5);
        assert!(mid > 1_000_000 + 57 * 86400 && mid < 1_000_000 + 60 * 86400);
        assert_eq!(renew_at(&l, Some((1_000_000, 30)), 0.0), 1_000_030, "a forced renewal comes first");
        assert_eq!(renew_at(&leaf(5, 0), None, 0.5), 5, "a certificate without lifetime is renewed now");
        assert_eq!(renew_at(&l, Some((u64::MAX, u64::MAX)), 0.0), 1_000_000 + 60 * 86400, "no overflow");
    }

    /// A keeper for `home.test` (LAN 192.168.0.0/24, the relay at .2) whose ACME server is a
    /// closed loopback port: orders fail at once and nothing leaves the machine.
    fn keeper(dir: &std::path::Path) -> Arc<Keeper> {
        keeper_capped(dir, None, 2)
    }

    /// [`keeper`] keeping at most `max` app names (the default without), `per_hour` new a hour.
    fn keeper_capped(dir: &std::path::Path, max: Option<usize>, per_hour: usize) -> Arc<Keeper> {
        let made = rcgen::generate_simple_self_signed(vec!["fallback.invalid".to_owned()]).unwrap();
        let fallback =
            super::super::certs::Served::from_pem(&made.cert.pem(), &made.signing_key.serialize_pem()).unwrap();
        let certs = Arc::new(Certs::new(Some("home.test".into()), fallback, super::super::Kind::SelfSigned));
        let settings = Settings {
            directory: Some("https://127.0.0.1:9/directory".into()),
            app_certs_per_hour: Some(per_hour),
            max_app_certs: max,
            ..Settings::default()
        };
        let policy = AppNames {
            domain: "home.test".into(),
            lan: "192.168.0.0/24".parse().unwrap(),
            own: vec![std::net::Ipv4Addr::new(192, 168, 0, 2)],
        };
        Keeper::new(certs, Store::new(dir), settings, Some(policy))
    }

    fn app(last: u8, port: u16) -> AppTarget {
        AppTarget::http(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(192, 168, 0, last), port))
    }

    #[tokio::test]
    async fn a_handshake_orders_nothing_and_waits_a_moment_for_a_devices_demand() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = keeper(dir.path());
        let nas = "h-192-168-0-10-p80.home.test";
        let grace = Duration::from_millis(200);

        // Nobody asks: the handshake gives up after the grace, and nothing was ordered.
        let started = Instant::now();
        assert!(!keeper.pending(nas, grace).await);
        assert!(started.elapsed() >= grace);
        assert!(keeper.apps.lock().unwrap().kept.is_empty(), "a handshake ordered a certificate");
        // Names the relay would never certify do not wait at all.
        let started = Instant::now();
        assert!(!keeper.pending("h-192-168-0-2-p80.home.test", grace).await);
        assert!(!keeper.pending("h-10-0-0-1-p80.home.test", grace).await);
        assert!(!keeper.pending("garbage.home.test", grace).await);
        assert!(started.elapsed() < grace);

        // A demand that comes while the handshake waits: it goes on at once, to wait for the
        // certificate.
        let waiting = tokio::spawn({
            let keeper = keeper.clone();
            async move { keeper.pending(nas, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(keeper.demand(app(10, 80), "phone"), AppCertOutcome::Ordering);
        let started = Instant::now();
        assert!(waiting.await.unwrap());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(keeper.pending(nas, grace).await);

        // The caps and the policy answer demands.
        assert_eq!(keeper.demand(app(10, 80), "phone"), AppCertOutcome::Ordering, "asked again");
        assert_eq!(keeper.demand(app(2, 443), "phone"), AppCertOutcome::NotLan, "the relay itself");
        assert_eq!(keeper.demand(app(255, 80), "phone"), AppCertOutcome::NotLan, "the broadcast address");
        assert_eq!(keeper.demand(app(11, 80), "phone"), AppCertOutcome::Ordering);
        assert_eq!(keeper.demand(app(12, 80), "phone"), AppCertOutcome::Busy, "two new names an hour");
    }

    #[tokio::test]
    async fn a_name_given_up_is_answered_failed_for_a_while_and_not_ordered_again() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = keeper(dir.path());
        let name = "h-192-168-0-10-p80.home.test".to_owned();
        let long_ago = Instant::now() - GIVEN_UP_FOR - Duration::from_secs(1);
        keeper.apps.lock().unwrap().given_up.insert(name.clone(), Instant::now());
        assert_eq!(keeper.demand(app(10, 80), "phone"), AppCertOutcome::Failed);
        assert!(keeper.apps.lock().unwrap().started.is_empty(), "no order");
        keeper.apps.lock().unwrap().given_up.insert(name, long_ago);
        assert_eq!(keeper.demand(app(10, 80), "phone"), AppCertOutcome::Ordering, "tried again later");
    }

    #[tokio::test]
    async fn a_name_unused_for_a_week_makes_room_for_a_new_app_and_one_in_use_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = keeper_capped(dir.path(), Some(2), 10);
        let name = |last: u8| format!("h-192-168-0-{last}-p80.home.test");
        assert_eq!(keeper.demand(app(10, 80), "phone"), AppCertOutcome::Ordering);
        assert_eq!(keeper.demand(app(11, 80), "laptop"), AppCertOutcome::Ordering);
        assert_eq!(keeper.demand(app(12, 80), "phone"), AppCertOutcome::Busy, "both places taken, none idle");

        // .10's name got its certificate; then nobody used either name for eight days, until a
        // launcher handed .11's app page a port (which asks for its certificate again).
        let made = rcgen::generate_simple_self_signed(vec![name(10)]).unwrap();
        let (chain_pem, key_pem) = (made.cert.pem(), made.signing_key.serialize_pem());
        keeper.certs.install(&name(10), super::super::certs::Served::from_pem(&chain_pem, &key_pem).unwrap());
        let stored = super::super::store::Stored { chain_pem, key_pem: key_pem.into() };
        keeper.store.save_certificate(&name(10), &stored).unwrap();
        let long_ago = Instant::now() - IDLE_BEFORE_EVICTION - Duration::from_secs(86400);
        for kept in keeper.apps.lock().unwrap().kept.values_mut() {
            kept.used = long_ago;
        }
        keeper.demand(app(11, 80), "laptop");

        assert_eq!(keeper.demand(app(12, 80), "phone"), AppCertOutcome::Ordering, ".10's place");
        let kept: Vec<String> = keeper.apps.lock().unwrap().kept.keys().cloned().collect();
        assert!(kept.contains(&name(11)) && kept.contains(&name(12)) && kept.len() == 2, "{kept:?}");
        assert!(keeper.certs.leaf(&name(10)).is_none(), "the idle name's certificate is no longer served");
        assert!(keeper.store.certificate(&name(10)).unwrap().is_none(), "nor kept on disk");
        assert_eq!(keeper.demand(app(13, 80), "phone"), AppCertOutcome::Busy, "the other two are in use");
        assert_eq!(keeper.demand(app(11, 80), "laptop"), AppCertOutcome::Ordering, "asking keeps a name");
    }

    #[test]
    fn backoff_jitter_stays_within_a_fifth() {
        assert_eq!(jitter(Duration::from_secs(10), 0.0), Duration::from_secs(8));
        assert_eq!(jitter(Duration::from_secs(10), 1.0), Duration::from_secs(12));
        assert_eq!(jitter(Duration::from_secs(10), 7.0), Duration::from_secs(12));
    }
}
