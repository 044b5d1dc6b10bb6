// The public REST API of Tidings: JSON in and out, the bearer token, one refresh when it expires.

const SESSION_KEY = 'tidings.session';
const REFRESHABLE = new Set(['TOKEN_EXPIRED', 'UNAUTHENTICATED']);

/** A failed call: `reason` from the API (or NETWORK), its message, metadata and the offending field. */
export class ApiError extends Error {
  constructor(status, reason, serverMessage, metadata = {}) {
    super(`${reason}: ${serverMessage}`);
    this.status = status;
    this.reason = reason;
    this.serverMessage = serverMessage;
    this.metadata = metadata || {};
    this.field = this.metadata.field || '';
  }
}

export class Api {
  /** `onSignedOut(error)` is called when the session can no longer be used (refresh refused). */
  constructor(onSignedOut) {
    this.onSignedOut = onSignedOut;
    this.session = loadSession();
    this.refreshing = null;
  }

  get token() {
    return this.session ? this.session.access_token : '';
  }

  get userId() {
    return this.session ? this.session.user.id : '';
  }

  async register(username, password, displayName) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    return this.start(await this.call('POST', '/v1/auth/register', body, { auth: false }));
  }

  async login(username, password) {
    return this.start(await this.call('POST', '/v1/auth/login', { username, password }, { auth: false }));
  }

  signOut() {
    this.session = null;
    localStorage.removeItem(SESSION_KEY);
  }

  start(session) {
    this.session = { ...session, expires_at: Date.now() + session.expires_in * 1000 };
    localStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    return this.session;
  }

  /** The server ended the access token early (revoked, or a clock apart): refresh before its next use. */
  expire() {
    if (this.session) this.session.expires_at = 0;
  }

  /** Refresh the access token if it ends within a minute (before opening the WebSocket, which cannot). */
  async fresh() {
    if (this.session && this.session.expires_at - Date.now() < 60_000) {
      try {
        await this.refresh();
      } catch (error) {
        if (!(error instanceof ApiError) || error.reason === 'NETWORK') return; // offline: the socket retries
        throw error;
      }
    }
  }

  get(path) {
    return this.call('GET', path);
  }

  post(path, body) {
    return this.call('POST', path, body);
  }

  delete(path) {
    return this.call('DELETE', path);
  }

  /** A call; an expired access token is refreshed once and the call repeated. */
  async call(method, path, body, { auth = true } = {}) {
    try {
      return await this.send(method, path, body, auth);
    } catch (error) {
      if (!auth || !(error instanceof ApiError) || error.status !== 401) throw error;
      if (!REFRESHABLE.has(error.reason)) {
        // Revoked or not ours: no refresh will help, the person has to log in again.
        this.signOut();
        this.onSignedOut(error);
        throw error;
      }
      await this.refresh();
      return this.send(method, path, body, auth);
    }
  }

  /** A new access token from the refresh token; one refresh at a time however many calls need it. */
  refresh() {
    if (!this.refreshing) {
      const refreshToken = this.session ? this.session.refresh_token : '';
      this.refreshing = this.send('POST', '/v1/auth/refresh', { refresh_token: refreshToken }, false)
        .then((session) => this.start(session))
        .catch((error) => {
          if (error instanceof ApiError && error.status === 401) {
            this.signOut();
            this.onSignedOut(error);
          }
          throw error;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  async send(method, path, body, auth) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth) headers.authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, 'NETWORK', String(error && error.message ? error.message : error));
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (response.ok) return payload;
    const failure = payload && payload.error;
    if (failure && failure.reason) {
      throw new ApiError(response.status, failure.reason, failure.message || '', failure.metadata);
    }
    throw new ApiError(response.status, `HTTP_${response.status}`, response.statusText || 'no error body');
  }
}

function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    return session && session.access_token && session.user ? session : null;
  } catch {
    return null;
  }
}
