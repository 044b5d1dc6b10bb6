// The live connection (GET /v1/ws): ping to stay alive, reconnect with backoff, report what state it is in.

const PING_EVERY_MS = 25_000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const TOKEN_ENDED = 4401;
const SUSPENDED = 4403;

export class Live {
  /**
   * `handlers.frame(frame)` gets every server frame; `handlers.ready()` runs after each `ready` (catch up then);
   * `handlers.state(state, detail)` hears 'connecting', 'online' and 'offline' (detail: seconds to the retry);
   * `handlers.fresh()` returns a promise of a usable token (refreshed if about to end; refused if signed out);
   * `handlers.tokenEnded()` hears a 4401 close (token expired or revoked): the next `fresh()` must refresh.
   * `handlers.sessionEnded(frame)` hears that the server ended the session on the account's side (a ban, a
   * revocation): `frame` is the `session.ended` it sent (`reason`, `message`); there is no reconnecting.
   */
  constructor(tokenOf, handlers) {
    this.tokenOf = tokenOf;
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.stopped = true;
    this.generation = 0; // the latest connect() wins over one still waiting for a token
    this.ended = null; // the session.ended frame of this socket, if the server sent one
    this.onOnline = () => this.reconnectNow();
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, 'signed out');
    }
  }

  get open() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }

  /** Send a frame if connected; a frame lost while offline (typing) is not worth queueing. */
  send(frame) {
    if (this.open) this.socket.send(JSON.stringify(frame));
  }

  reconnectNow() {
    if (this.stopped || this.open) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  async connect() {
    if (this.stopped) return;
    const generation = ++this.generation;
    this.handlers.state('connecting');
    try {
      await this.handlers.fresh();
    } catch {
      return; // signed out: the app shows the login form
    }
    if (this.stopped || generation !== this.generation) return;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws?token=${encodeURIComponent(this.tokenOf())}`);
    this.socket = socket;
    this.ended = null;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.closed(socket, event);
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === 'session.ended') {
      this.ended = frame; // the close that follows says what to do
      return;
    }
    if (frame.type === 'ready') {
      this.attempt = 0;
      this.handlers.state('online');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_EVERY_MS);
      this.handlers.ready();
      return;
    }
    this.handlers.frame(frame);
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.pingTimer);
    if (this.stopped) return;
    if (event.code === SUSPENDED || this.ended) {
      // Banned, signed out everywhere or the password reset: reconnecting would only be refused.
      const ended = this.ended || { reason: 'USER_BANNED', message: 'Your account was suspended.' };
      this.stop();
      this.handlers.sessionEnded(ended);
      return;
    }
    if (event.code === TOKEN_ENDED) this.handlers.tokenEnded();
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.handlers.state('offline', Math.ceil(delay / 1000));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay * (0.8 + Math.random() * 0.4));
  }
}
