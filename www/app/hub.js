// hometun's hub on the tunnel origin T (a SharedWorker, `/__ht/hub.js`, name "hometun"): the
// rendezvous between launcher pages, which run the tunnel, and broker frames, which app pages
// on their own origins embed (docs/web-apps.md, "Getting a port"). Only T's own documents can
// connect to it (a SharedWorker is same-origin), so every message here comes from hometun's code.
// It holds no tunnel, no key and no port to the LAN: it passes a broker's request, with a reply
// port, to the newest launcher that still answers, and the launcher's answer back.
'use strict';

/** How long a launcher may take to say it took a request before the next one is tried. */
const TAKE_MS = 1500;
/** How long a launcher may take to answer a request it took (it waits up to 9 s for its tunnel). */
const ANSWER_MS = 12000;

/** Ports of launcher pages, newest last. */
let launchers = [];

function forget(port) {
  launchers = launchers.filter((p) => p !== port);
}

function answer(reply, message, transfer = []) {
  try {
    reply.postMessage(message, transfer);
  } catch (_) {
    // The broker frame went away.
  }
}

/**
 * Hands the request of `origin` to the newest launcher; one that does not say "taken" in time
 * is forgotten (closed or frozen) and the next one is tried.
 */
function forward(origin, reply, tried = new Set()) {
  const launcher = [...launchers].reverse().find((p) => !tried.has(p));
  if (!launcher) {
    answer(reply, {
      hometun: 'port-error',
      code: 'no-launcher',
      message: tried.size ? 'your hometun page does not answer' : 'your hometun page is not open',
    });
    return;
  }
  tried.add(launcher);
  const channel = new MessageChannel();
  let taken = false;
  let done = false;
  const finish = () => {
    done = true;
    clearTimeout(takeTimer);
    clearTimeout(answerTimer);
    channel.port1.close();
  };
  const takeTimer = setTimeout(() => {
    if (taken || done) return;
    finish();
    forget(launcher);
    forward(origin, reply, tried);
  }, TAKE_MS);
  const answerTimer = setTimeout(() => {
    if (done) return;
    finish();
    answer(reply, { hometun: 'port-error', code: 'timeout', message: 'your hometun page did not answer in time' });
  }, ANSWER_MS);
  channel.port1.onmessage = (event) => {
    const data = event.data;
    if (done || !data || typeof data !== 'object') return;
    if (data.op === 'taken') {
      taken = true;
    } else if (data.hometun === 'port' && event.ports[0]) {
      finish();
      answer(reply, { hometun: 'port' }, [event.ports[0]]);
    } else if (data.hometun === 'port-error') {
      finish();
      answer(reply, { hometun: 'port-error', code: 'refused', message: String(data.message || 'refused') });
    }
  };
  try {
    launcher.postMessage({ op: 'port-request', origin }, [channel.port2]);
  } catch (_) {
    finish();
    forget(launcher);
    forward(origin, reply, tried);
  }
}

self.addEventListener('connect', (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => {
    const data = message.data;
    if (!data || typeof data !== 'object') return;
    if (data.op === 'tunnel') {
      // A launcher page: it answers port requests from now on.
      forget(port);
      launchers.push(port);
    } else if (data.op === 'bye') {
      forget(port);
    } else if (data.op === 'port-request' && typeof data.origin === 'string' && message.ports[0]) {
      forward(data.origin, message.ports[0]);
    }
  };
  port.addEventListener('close', () => forget(port));
});
