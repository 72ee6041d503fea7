'use strict';
// A worker of a home web app that opens a WebSocket to its app, says so, and then hangs (at most
// 150 s, in synchronous requests the app answers a minute later, so it holds no CPU): its port to
// the hometun page stays open and answers nothing, as a frozen page's or a stopped worker's does
// in browsers that fire no `close` on a port.
const ws = new WebSocket('ws://192.168.0.10:8080/ws/echo');
ws.onopen = () => ws.send('hello from a worker that hangs');
ws.onmessage = (event) => {
  postMessage(String(event.data));
  setTimeout(() => {
    const end = Date.now() + 150000;
    while (Date.now() < end) {
      const request = new XMLHttpRequest();
      request.open('GET', '/later/60000', false);
      try { request.send(); } catch (_) { /* hung all the same */ }
    }
  }, 100);
};
ws.onclose = (event) => postMessage('closed ' + event.code);
