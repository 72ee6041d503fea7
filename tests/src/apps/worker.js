'use strict';
// A worker script of a home web app with hard-coded LAN URLs: fetches known bytes and talks to
// a WebSocket echo, then reports what it got (and every message its own code received) to the
// page that started it. Runs as a dedicated, a shared and a module worker; a shared one runs the
// checks again for a page that posts `again`.
const LAN = 'http://192.168.0.10:8080';
const SIZE = 100000;
const seen = [];

async function check() {
  const report = {};
  const response = await fetch(LAN + '/blob/' + SIZE);
  const bytes = await response.arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  report.fetch = { status: response.status, length: bytes.byteLength, sha: [...digest].map((x) => x.toString(16).padStart(2, '0')).join('') };
  report.echo = await new Promise((done) => {
    const ws = new WebSocket('ws://192.168.0.10:8080/ws/echo');
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send('hello from a worker');
    ws.onmessage = (e) => { done(String(e.data)); ws.close(); };
    ws.onclose = (e) => done('closed ' + e.code);
    setTimeout(() => done('no echo within 15 s'), 15000);
  });
  report.strict = (function () { return this === undefined; })();
  report.seen = seen;
  return report;
}

const result = check().catch((e) => ({ error: String(e) }));
if ('onconnect' in self) {
  self.onconnect = (event) => {
    const port = event.ports[0];
    // `again` from a page: the same checks once more, reported to that page.
    port.onmessage = (e) => {
      if (e.data === 'again') check().catch((error) => ({ error: String(error) })).then((report) => port.postMessage(report));
      else seen.push(e.data);
    };
    result.then((report) => port.postMessage(report));
  };
} else {
  self.onmessage = (e) => seen.push(e.data);
  result.then((report) => self.postMessage(report));
}
