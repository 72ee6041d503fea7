// The boot page of an app origin (what the relay serves for every path before hometun's
// service worker runs, and what the worker serves a navigation it has no port for):
// registers the worker for the whole origin, waits until it controls this page, gets a port
// from the launcher (its parent frame or opener, else through the hidden broker frame from the
// tunnel origin), hands it to the worker and reloads, so the same URL now comes from the LAN
// app. While no hometun page is open it says so, with a link that opens one, and carries on by
// itself once that page is connected.
(() => {
  'use strict';

  const WAIT_MS = 10000;
  /** How often a boot without a hometun page asks again. */
  const ASK_EVERY_MS = 2000;
  /** A boot waiting this long for a hometun page gives up (a reload starts again). */
  const GIVE_UP_MS = 30 * 60 * 1000;
  /** More boots than this within RELOAD_WINDOW_MS stop instead of reloading again. */
  const MAX_RELOADS = 3;
  const RELOAD_WINDOW_MS = 60000;
  const RELOADS_KEY = 'hometun-boot-reloads';

  const relayHost = location.host.slice(location.host.indexOf('.') + 1);
  const RELAY = `${location.protocol}//${relayHost}`;
  const $ = (id) => document.getElementById(id);

  function show(text, isError) {
    $('boot-status').hidden = isError;
    $('boot-status').textContent = isError ? '' : text;
    $('boot-error').hidden = !isError;
    $('boot-error').textContent = isError ? text : '';
  }

  function offerHome(text, state = 'failed') {
    show(text, true);
    $('boot-link').href = `${RELAY}/`;
    $('boot-home').hidden = false;
    document.body.dataset.boot = state;
  }

  /**
   * Windows that may be the launcher: the parent chain, then the opener's, and so on. A window
   * of this page's own origin (an app page around this frame of it) cannot be: it is passed
   * through, not asked, so a frame of an app tab asks the broker at once.
   */
  function launchers() {
    const found = [];
    const seen = [];
    let w = window;
    for (let hops = 0; hops < 16; hops += 1) {
      let next = null;
      try {
        next = w.parent !== w ? w.parent : w.opener;
      } catch (_) {
        next = null;
      }
      if (!next || seen.includes(next)) break;
      seen.push(next);
      if (!ofThisOrigin(next)) found.push(next);
      w = next;
    }
    return found;
  }

  /** Whether the window `w` shows a page of this page's origin (readable only then). */
  function ofThisOrigin(w) {
    try {
      return w.location.origin === location.origin;
    } catch (_) {
      return false;
    }
  }

  function timeout(ms, what) {
    return new Promise((_, reject) => { setTimeout(() => reject(new Error(what)), ms); });
  }

  function sleep(ms) {
    return new Promise((resolve) => { setTimeout(resolve, ms); });
  }

  /** The hidden broker frame from T (docs/web-apps.md, "Getting a port"), made once. */
  let broker = null;
  function brokerFrame() {
    if (broker) return broker;
    const frame = document.createElement('iframe');
    frame.hidden = true;
    frame.title = 'hometun';
    frame.setAttribute('aria-hidden', 'true');
    frame.src = `${RELAY}/__ht/broker.html`;
    const loaded = new Promise((resolve) => { frame.addEventListener('load', resolve, { once: true }); });
    document.body.append(frame);
    broker = { frame, loaded };
    return broker;
  }

  let lastId = 0;

  /**
   * A port for this app: asked of the launcher windows up the chain (parent, opener) and, when
   * none answers within a second (or there is none), of the broker frame. The first port wins;
   * a launcher's refusal ends the request, the broker's only when there is no launcher window.
   * Rejects with an error whose `code` is the broker's (`no-launcher`, …) when it had the last word.
   */
  function requestPort(windows) {
    lastId += 1;
    const id = lastId;
    let brokerError = null;
    let cleanup = () => {};
    const answer = new Promise((resolve, reject) => {
      let answered = false;
      const fail = (data) => {
        const error = new Error(String(data.message || 'the hometun page refused'));
        error.code = data.code;
        answered = true;
        reject(error);
      };
      const listen = (event) => {
        const data = event.data;
        if (event.origin !== RELAY || !data || typeof data !== 'object' || data.id !== id) return;
        const fromBroker = broker && event.source === broker.frame.contentWindow;
        if (data.hometun === 'port' && event.ports && event.ports[0]) {
          if (answered) event.ports[0].close(); // an answer to a repeated request
          else resolve(event.ports[0]);
          answered = true;
        } else if (data.hometun === 'port-error' && !answered) {
          if (!fromBroker) fail(data);
          else if (!windows.length) fail(data);
          else brokerError = data;
        }
      };
      window.addEventListener('message', listen);
      cleanup = () => window.removeEventListener('message', listen);
    });
    const ask = () => {
      for (const w of windows) {
        try {
          w.postMessage({ hometun: 'port-request', id }, RELAY);
        } catch (_) {
          // A closed window.
        }
      }
    };
    const askBroker = async () => {
      const { frame, loaded } = brokerFrame();
      await loaded;
      frame.contentWindow.postMessage({ hometun: 'port-request', id }, RELAY);
    };
    ask();
    // Asked again now and then: a launcher that was just reloading did not hear the first.
    const again = setInterval(ask, 3000);
    const viaBroker = setTimeout(askBroker, windows.length ? 1000 : 0);
    const waited = timeout(WAIT_MS, 'no answer from your hometun page: is it still open and connected?').catch((error) => {
      if (brokerError) {
        error = new Error(String(brokerError.message));
        error.code = brokerError.code;
      }
      throw error;
    });
    const answered = Promise.race([answer, waited]);
    const stop = () => { clearInterval(again); clearTimeout(viaBroker); cleanup(); };
    answered.then(stop, stop);
    return answered;
  }

  /**
   * A port, asked for until one comes: while no hometun page is open (or it is not connected),
   * says so with a link that opens it, and carries on by itself once it answers.
   */
  async function portFromALauncher(windows) {
    const until = Date.now() + GIVE_UP_MS;
    for (;;) {
      try {
        const port = await requestPort(windows);
        $('boot-home').hidden = true;
        return port;
      } catch (error) {
        if (Date.now() >= until) throw error;
        if (error.code === 'no-launcher' && window.top === window && /^Apple/.test(navigator.vendor || '')) {
          // WebKit keeps a tab of its own apart from the hometun page (docs/web-apps.md).
          offerHome('In this browser, home apps open inside your hometun page: open it, then the app under Apps, \u201cOpen here\u201d.', 'no-launcher');
        } else if (error.code === 'no-launcher') {
          offerHome('Your hometun page is not open. Open it (it connects this app); this page goes on by itself once it is connected.', 'no-launcher');
        } else {
          offerHome(`${error.message} \u2014 this page tries again by itself.`, 'waiting');
        }
        await sleep(ASK_EVERY_MS);
      }
    }
  }

  function controlled(container) {
    if (container.controller) return Promise.resolve(container.controller);
    const change = new Promise((resolve) => {
      container.addEventListener('controllerchange', () => resolve(container.controller), { once: true });
    });
    return Promise.race([change, timeout(WAIT_MS, 'the service worker did not start')]);
  }

  /** Waits for the worker to say it took the port (so the reload goes through it). */
  function taken(container) {
    const ack = new Promise((resolve) => {
      const listen = (event) => {
        if (event.data && event.data.hometun === 'port-taken') {
          container.removeEventListener('message', listen);
          resolve();
        }
      };
      container.addEventListener('message', listen);
      container.startMessages();
    });
    return Promise.race([ack, timeout(2000, 'the service worker did not take the port')]).catch(() => {});
  }

  /** Counts this boot; false when the page keeps coming back here (then it stops). */
  function mayReload() {
    let recent = [];
    try {
      recent = JSON.parse(sessionStorage.getItem(RELOADS_KEY) || '[]').filter((t) => Date.now() - t < RELOAD_WINDOW_MS);
      recent.push(Date.now());
      sessionStorage.setItem(RELOADS_KEY, JSON.stringify(recent));
    } catch (_) {
      return true;
    }
    return recent.length <= MAX_RELOADS;
  }

  async function boot() {
    $('boot-link').href = `${RELAY}/`;
    const windows = launchers();
    const container = navigator.serviceWorker;
    if (!container) {
      offerHome('This browser cannot run home web apps here (no service workers in this window).');
      return;
    }
    try {
      show('Installing the app\u2019s connection…', false);
      const registration = await container.register('/__ht/sw.js', { scope: '/' });
      if (!container.controller && registration.active && !registration.installing && !registration.waiting) {
        // A forced reload (Shift+Reload; Firefox's `location.reload(true)`, which some apps
        // call after their login) never goes through the worker, which is running: load the
        // page again, normally, so that it does.
        if (mayReload()) {
          document.body.dataset.boot = 'reloading';
          location.reload();
          return;
        }
      }
      const worker = await controlled(container);
      show('Asking your hometun page for a connection…', false);
      const port = await portFromALauncher(windows);
      show('Starting the app\u2026', false);
      const acknowledged = taken(container);
      worker.postMessage({ hometun: 'port' }, [port]);
      await acknowledged;
      if (!mayReload()) {
        offerHome('This app keeps coming back to its start page: check that the tunnel is connected, then reload.');
        return;
      }
      document.body.dataset.boot = 'reloading';
      location.reload();
    } catch (error) {
      offerHome(`${error && error.message ? error.message : error}`);
    }
  }

  boot();
})();
