// Which launcher tab runs this browser's tunnel. The device has one session at the relay, and a
// second tab that connected would end the first's (the relay keeps the newest), so two tabs
// would take the tunnel from each other and the app tabs would follow whichever lost. A Web
// Lock names the one tab that runs it: another tab waits and takes over by itself when that
// one closes, or takes it at once when the person asks ("Connect" there). Without Web Locks
// every tab runs its own, as before (docs/web-apps.md, "Launcher tabs").

const LOCK = 'hometun.tunnel';

/**
 * Claims the tunnel for this tab. `first` resolves at once with whether this tab has it;
 * `owned()` is called each time it gets it later (the tab that had it closed, or it was shown
 * again from the back/forward cache), `lost()` when another tab took it.
 */
export function claimTunnel({ owned, lost }) {
  const locks = navigator.locks;
  if (!locks || typeof locks.request !== 'function') {
    return { first: Promise.resolve(true), isOwner: () => true, take: () => Promise.resolve() };
  }
  /** The request that holds the lock now, if any: each request is its own token, so what
   * happens to an older one (given up, stolen) never undoes a newer grant. */
  let holder = null;
  let queued = null;
  let taking = null;
  /** Gives the held lock back (this page is going away, or into the back/forward cache). */
  let release = () => {};

  /** One lock request; `answered(granted)` once it is decided (at once with `ifAvailable`). */
  function ask(options, answered) {
    const me = {};
    let granted = false;
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      if (answered) answered(value);
    };
    locks
      .request(LOCK, options, (lock) => {
        if (!lock) {
          settle(false);
          return false;
        }
        granted = true;
        holder = me;
        settle(true);
        // Held until this page goes away, or another tab takes it.
        return new Promise((resolve) => { release = resolve; });
      })
      .then(() => {
        if (holder === me) holder = null;
      })
      .catch(() => {
        if (!granted) {
          // Given up while waiting (this tab took it instead), or no lock could be asked for
          // (then this tab runs the tunnel, as without Web Locks).
          if (!options.signal && holder === null) {
            holder = me;
            settle(true);
          }
          return;
        }
        if (holder !== me) return;
        holder = null;
        lost();
        wait();
      });
  }

  /** Waits for the tab that has the tunnel to go. */
  function wait() {
    if (queued) queued.abort();
    queued = new AbortController();
    ask({ signal: queued.signal }, (granted) => { if (granted) owned(); });
  }

  // A page in the back/forward cache must not keep the tunnel from the next page: it gives the
  // lock back as it goes, and asks again if it is shown again.
  window.addEventListener('pagehide', () => {
    release();
    if (queued) queued.abort();
    queued = null;
  });
  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return;
    ask({ ifAvailable: true }, (granted) => {
      if (granted) {
        owned();
      } else {
        lost();
        wait();
      }
    });
  });

  const first = new Promise((resolve) => {
    ask({ ifAvailable: true }, (granted) => {
      if (!granted) wait();
      resolve(granted);
    });
  });

  return {
    first,
    isOwner: () => holder !== null,
    /** Takes the tunnel from the tab that has it (resolves once this tab has it); a second
     * call while one is under way waits for the same. */
    take: () => {
      if (holder !== null) return Promise.resolve();
      if (!taking) {
        if (queued) queued.abort();
        queued = null;
        taking = new Promise((resolve) => { ask({ steal: true }, () => resolve()); })
          .finally(() => { taking = null; });
      }
      return taking;
    },
  };
}
