// The boot page of an app origin (what the relay serves for every path before hometun's
// service worker runs, and what the worker serves a navigation it has no port for):
// registers the worker for the whole origin, waits until it controls this page, gets a port
// from the launcher (parent frame or opener), hands it to the worker and reloads, so the same
// URL now comes from the LAN app. Without a launcher it says where to open the app from.
(() => {
  'use strict';

  const WAIT_MS = 10000;
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

  function offerHome(text) {
    show(text, true);
    $('boot-link').href = `${RELAY}/`;
    $('boot-home').hidden = false;
    document.body.dataset.boot = 'failed';
  }

  /** Windows that may be the launcher: the parent chain, then the opener's, and so on. */
  function launchers() {
    const found = [];
    let w = window;
    for (let hops = 0; hops < 16; hops += 1) {
      let next = null;
      try {
        next = w.parent !== w ? w.parent : w.opener;
      } catch (_) {
        next = null;
      }
      if (!next || found.includes(next)) break;
      found.push(next);
      w = next;
    }
    return found;
  }

  function timeout(ms, what) {
    return new Promise((_, reject) => { setTimeout(() => reject(new Error(what)), ms); });
  }

  /** A port from the launcher (the first answer from the relay's origin wins). */
  function requestPort(windows) {
    const answer = new Promise((resolve, reject) => {
      let answered = false;
      window.addEventListener('message', (event) => {
        const data = event.data;
        if (event.origin !== RELAY || !data || typeof data !== 'object') return;
        if (data.hometun === 'port' && event.ports && event.ports[0]) {
          if (answered) event.ports[0].close(); // an answer to a repeated request
          else resolve(event.ports[0]);
          answered = true;
        } else if (data.hometun === 'port-error' && !answered) {
          answered = true;
          reject(new Error(String(data.message || 'the hometun page refused')));
        }
      });
    });
    const ask = () => {
      for (const w of windows) {
        try {
          w.postMessage({ hometun: 'port-request' }, RELAY);
        } catch (_) {
          // A closed window.
        }
      }
    };
    ask();
    // Asked again now and then: a launcher that was just reloading did not hear the first.
    const again = setInterval(ask, 3000);
    const answered = Promise.race([answer, timeout(WAIT_MS, 'no answer from your hometun page: is it still open and connected?')]);
    answered.then(() => clearInterval(again), () => clearInterval(again));
    return answered;
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
    if (!windows.length) {
      offerHome('Open this app from your hometun page.');
      return;
    }
    const container = navigator.serviceWorker;
    if (!container) {
      offerHome('This browser cannot run home web apps here (no service workers in this window).');
      return;
    }
    try {
      show('Installing the app\u2019s connection…', false);
      await container.register('/__ht/sw.js', { scope: '/' });
      const worker = await controlled(container);
      show('Asking your hometun page for a connection…', false);
      const port = await requestPort(windows);
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
