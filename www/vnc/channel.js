// A WebSocket-like channel over a tunnel TCP connection (hometun.connectTcp), for noVNC's RFB.
// RFB takes any object with send/close/binaryType/protocol/readyState and the on* handlers (as
// it takes an RTCDataChannel); RFB over a raw TCP stream needs no websockify in between.

/** WebSocket ready states (numbers, as noVNC compares them). */
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/**
 * Sends noVNC may have waiting to go out: past this the channel reads nothing more from the
 * server until they went, so a server that makes noVNC answer without end (a few bytes each,
 * and takes nothing in) is held back by TCP instead of filling the launcher's memory. Counted in
 * sends, not bytes: one large paste waiting must not stop the screen's updates.
 */
const MAX_UNSENT = 256;

/** Wraps an open `TcpConnection`; data starts flowing at once (queued until `onmessage` is set). */
export class TunnelChannel {
  constructor(connection, describeError) {
    this.binaryType = 'arraybuffer';
    this.protocol = '';
    this.readyState = OPEN;
    this.onopen = null;
    this.onerror = null;
    this.onclose = null;
    /** Why the connection ended (empty while open or when closed by this side). */
    this.closeReason = '';
    this._onmessage = null;
    this._pending = [];
    this._connection = connection;
    this._describe = describeError;
    this._sending = Promise.resolve();
    this._unsent = 0;
    this._pump();
  }

  get onmessage() {
    return this._onmessage;
  }

  /** Setting the handler delivers what arrived before it was set. */
  set onmessage(handler) {
    this._onmessage = handler;
    while (handler && this._pending.length && this.readyState === OPEN) {
      handler({ data: this._pending.shift() });
    }
  }

  /** Sends bytes in order (noVNC reuses its buffer: they are copied now). */
  send(data) {
    if (this.readyState !== OPEN) return;
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data.slice(0)) : new Uint8Array(data).slice();
    this._unsent += 1;
    this._sending = this._sending
      .then(() => this._connection.send(bytes))
      .then(() => { this._unsent -= 1; })
      .catch((error) => this._fail(error));
  }

  /** Closes at once (a reset: the viewer is gone, nothing more is worth sending). */
  close() {
    if (this.readyState === CLOSED || this.readyState === CLOSING) return;
    this.readyState = CLOSING;
    this._pending = [];
    this._end('abort');
    // Like a WebSocket, report the close later, not from inside close().
    window.setTimeout(() => this._closed(1000, '', true), 0);
  }

  async _pump() {
    try {
      for (;;) {
        while (this._unsent > MAX_UNSENT && this.readyState === OPEN) await this._sending;
        const bytes = await this._connection.receive();
        if (this.readyState === CLOSED || this.readyState === CLOSING) return;
        if (bytes === null) {
          // noVNC does not close a channel that says it is closed: this side finishes here,
          // or the connection stays half open in the tunnel.
          this._end('close');
          this._closed(1000, 'the VNC server closed the connection', true);
          return;
        }
        const data = bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.slice().buffer;
        if (this._onmessage) this._onmessage({ data });
        else this._pending.push(data);
      }
    } catch (error) {
      this._fail(error);
    }
  }

  _fail(error) {
    if (this.readyState === CLOSED || this.readyState === CLOSING) return;
    this._end('abort');
    if (this.onerror) this.onerror({ type: 'error', error });
    this._closed(1006, this._describe(error), false);
  }

  /** Closes (`close`: FIN) or resets (`abort`) the TCP connection; one already gone is fine. */
  _end(how) {
    try {
      this._connection[how]();
    } catch (_) {
      // Already gone.
    }
  }

  _closed(code, reason, wasClean) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.closeReason = reason;
    this._pending = [];
    if (this.onclose) this.onclose({ type: 'close', code, reason, wasClean });
  }
}

TunnelChannel.CONNECTING = CONNECTING;
TunnelChannel.OPEN = OPEN;
TunnelChannel.CLOSING = CLOSING;
TunnelChannel.CLOSED = CLOSED;
