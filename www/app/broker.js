// hometun's broker frame (`/__ht/broker.html` on the tunnel origin T), which app pages embed
// hidden (docs/web-apps.md, "Getting a port"). An app page asks it with
// `postMessage({hometun: "port-request", id}, T)`; the broker takes the app's host:port from
// the message's `origin` alone (which the browser sets and a page cannot forge; whatever else the
// message says is ignored), passes the request to the hub worker shared with the launcher page
// that runs the tunnel, and hands the port the launcher made back to that origin only:
// `{hometun: "port", id}` with the port, or `{hometun: "port-error", id, code, message}`
// (`no-launcher`: no hometun page is open; `no-shared-worker`: this browser has no SharedWorker,
// the opener/frame path is the only one).
(() => {
  'use strict';

  const HUB = '/__ht/hub.js';
  /** How long the hub may take to answer (it gives a launcher up to 12 s). */
  const ANSWER_MS = 14000;

  let hub = null;
  try {
    hub = window.SharedWorker ? new SharedWorker(HUB, { name: 'hometun' }) : null;
  } catch (_) {
    hub = null; // Storage blocked for this frame, say: no hub here.
  }

  /** Whether `origin` is an app origin right under this page's host (wasm checks strictly). */
  function isAppOrigin(origin) {
    if (typeof origin !== 'string' || !origin.startsWith('https://h-')) return false;
    const host = origin.slice('https://'.length);
    const dot = host.indexOf('.');
    return dot > 0 && host.slice(dot + 1) === location.host;
  }

  function reply(source, origin, message, transfer = []) {
    try {
      source.postMessage(message, origin, transfer);
    } catch (_) {
      // The asking window went away.
      for (const port of transfer) port.close();
    }
  }

  window.addEventListener('message', (event) => {
    const data = event.data;
    if (!data || typeof data !== 'object' || data.hometun !== 'port-request' || !event.source) return;
    const origin = event.origin;
    const id = typeof data.id === 'number' ? data.id : undefined;
    if (!isAppOrigin(origin)) {
      // An opaque origin ("null") or any other site gets nothing, not even an answer.
      return;
    }
    const source = event.source;
    if (!hub) {
      reply(source, origin, { hometun: 'port-error', id, code: 'no-shared-worker', message: 'this browser has no SharedWorker' });
      return;
    }
    const channel = new MessageChannel();
    const timer = setTimeout(() => {
      channel.port1.close();
      reply(source, origin, { hometun: 'port-error', id, code: 'timeout', message: 'no answer from your hometun page' });
    }, ANSWER_MS);
    channel.port1.onmessage = (answer) => {
      clearTimeout(timer);
      channel.port1.close();
      const message = answer.data || {};
      if (message.hometun === 'port' && answer.ports[0]) {
        reply(source, origin, { hometun: 'port', id }, [answer.ports[0]]);
      } else {
        reply(source, origin, {
          hometun: 'port-error',
          id,
          code: String(message.code || 'refused'),
          message: String(message.message || 'refused'),
        });
      }
    };
    hub.port.postMessage({ op: 'port-request', origin }, [channel.port2]);
  });
})();
