// The Tidings chat client: one page over the public REST API and the WebSocket of API.md.
//
// The state is plain data; each render function rebuilds its part of the page from it. Messages are kept per
// conversation keyed by message id (history pages and live frames merge there, so one that came both ways shows
// once) and ordered by seq; a message being sent is a local echo keyed by its client_msg_id until the answer
// (or its live copy) replaces it.

import { Api, ApiError } from './api.js';
import { byId, codePoints, h, highlighted, numberFormat, randomId, setText, shortTime } from './dom.js';
import { Live } from './live.js';
import { describe } from './words.js';

const MAX_TEXT = 4000;
const PAGE = 50;
const CATCH_UP_PAGE = 200;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;
const READ_CHECKS = 6;
const CATCH_UP_RETRY_MS = 2000;
const FOLLOW_UP_CATCH_UPS_MS = [1500, 5000];
const SEARCH_PAGE = 10;
const PEOPLE_PAGE = 10;
// What GET /v1/users?query= takes (code points once trimmed); message search takes 1-256 and says so itself.
const PEOPLE_QUERY_MIN = 2;
const PEOPLE_QUERY_MAX = 64;
// Code points of a long found message shown in the results, around its first match.
const SNIPPET = 200;
// Older pages loaded at most to show a found message in its conversation.
const REVEAL_PAGES = 20;

const state = {
  me: null,
  conversations: new Map(), // id -> Conversation of API.md
  users: new Map(), // id -> User
  presence: new Map(), // user id -> 'online' | 'offline'
  threads: new Map(), // conversation id -> Thread (only conversations opened since load)
  typing: new Map(), // conversation id -> Map(user id -> timer)
  peerRead: new Map(), // conversation id -> Map(user id -> seq): read marks of the others, seen live
  current: '',
  connection: 'connecting',
  target: null, // {conversationId, messageId}: the message a search result opened, marked in its conversation
};

// The search box: what was asked, and what came back (messages a page at a time, people at once).
const search = {
  open: false,
  query: '',
  conversationId: '', // the conversation searched in, or '' for all of mine
  withPeople: false,
  people: [],
  messages: [],
  cursor: null,
  loading: false,
  loadingMore: false,
  failed: { messages: false, people: false },
  error: '',
  run: 0, // each search counts up; an answer to an earlier one is dropped
};

const api = new Api((error) => signedOut(describe(error)));
const live = new Live(() => api.token, {
  frame: (frame) => onFrame(frame),
  ready: () => caughtUpAgainSoon(),
  state: (status, retryInS) => showConnection(status, retryInS),
  fresh: () => api.fresh(),
  tokenEnded: () => api.expire(),
  sessionEnded: (frame) => {
    api.signOut();
    signedOut(frame.message || describe(frame));
  },
});

// ---------------------------------------------------------------------------------------------------------------
// Signing up and in

let signingUp = false;

function showAuth(message = '') {
  live.stop();
  document.body.dataset.screen = 'auth';
  byId('app').hidden = true;
  byId('auth').hidden = false;
  setText(byId('auth-error'), message);
  byId('auth-username').focus();
}

function setAuthMode(signUp) {
  signingUp = signUp;
  setText(byId('auth-title'), signUp ? 'Create an account' : 'Log in');
  setText(byId('auth-submit'), signUp ? 'Sign up' : 'Log in');
  setText(byId('auth-switch-text'), signUp ? 'Have an account?' : 'New here?');
  setText(byId('auth-switch'), signUp ? 'Log in instead' : 'Create an account');
  byId('auth-display-row').hidden = !signUp;
  byId('auth-password').autocomplete = signUp ? 'new-password' : 'current-password';
  setText(byId('auth-error'), '');
}

/** The browser's own checks of a field, in words, or '' when it is fine. */
function fieldProblem(input, label) {
  const value = input.value;
  if (input.validity.valueMissing) return `${label} is required.`;
  if (input.validity.tooShort || (input.minLength > 0 && value.length < input.minLength)) {
    return `${label} must be at least ${input.minLength} characters.`;
  }
  if (input.validity.tooLong) return `${label} must be at most ${input.maxLength} characters.`;
  if (input.validity.patternMismatch) return `${label} may contain only letters, digits, “_” and “.”.`;
  return '';
}

async function submitAuth(event) {
  event.preventDefault();
  const username = byId('auth-username');
  const password = byId('auth-password');
  const check = (input, label) =>
    signingUp ? fieldProblem(input, label) : input.value ? '' : `${label} is required.`;
  const problems = [
    [username, check(username, 'Username')],
    [password, check(password, 'Password')],
  ];
  for (const [input, problem] of problems) input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  const first = problems.find(([, problem]) => problem);
  if (first) {
    setText(byId('auth-error'), first[1]);
    first[0].focus();
    return;
  }
  const button = byId('auth-submit');
  button.disabled = true;
  setText(byId('auth-error'), '');
  try {
    if (signingUp) await api.register(username.value, password.value, byId('auth-display').value.trim());
    else await api.login(username.value, password.value);
    password.value = '';
    enterApp();
  } catch (error) {
    setText(byId('auth-error'), describe(error));
    const field = error.field === 'password' ? password : username;
    if (error.field || error.reason === 'USERNAME_TAKEN') field.setAttribute('aria-invalid', 'true');
    field.focus();
  } finally {
    button.disabled = false;
  }
}

function signedOut(message) {
  resetState();
  showAuth(message);
}

function logOut() {
  api.signOut();
  signedOut('');
}

function resetState() {
  state.me = null;
  state.current = '';
  for (const map of [state.conversations, state.users, state.presence, state.threads, state.peerRead]) map.clear();
  state.typing.clear();
  state.target = null;
  closeSearch();
  byId('conversations').replaceChildren();
  byId('messages').replaceChildren();
}

function enterApp() {
  document.body.dataset.screen = 'app';
  byId('auth').hidden = true;
  byId('app').hidden = false;
  state.me = api.session.user;
  state.users.set(state.me.id, state.me);
  setText(byId('me-name'), state.me.display_name || state.me.username);
  renderList();
  renderThread();
  live.start();
}

// ---------------------------------------------------------------------------------------------------------------
// Catching up (after every `ready`) and live frames

let catchUpRunning = Promise.resolve();
let catchUpQueued = null;

/**
 * API.md's catch-up: sync the conversation list, then page every open thread forward from its last seq.
 * A call always gets a run that starts after it was made; calls while one waits to start share that one.
 */
function catchUp() {
  if (!catchUpQueued) {
    catchUpQueued = catchUpRunning.then(() => {
      catchUpQueued = null;
      return doCatchUp().catch((error) => {
        fail(error);
        // Live frames are buffered meanwhile; without a catch-up the gap stays, so try until one succeeds.
        setTimeout(() => live.open && catchUp(), CATCH_UP_RETRY_MS);
      });
    });
    catchUpRunning = catchUpQueued;
  }
  return catchUpQueued;
}

let followUps = [];

/**
 * Catch up now, and twice more shortly after: a message acknowledged just before this connection was ready is
 * neither pushed to it nor, if the persist job stores it a moment after our sync, in that sync's history.
 */
function caughtUpAgainSoon() {
  for (const timer of followUps) clearTimeout(timer);
  followUps = FOLLOW_UP_CATCH_UPS_MS.map((delay) => setTimeout(() => live.open && catchUp(), delay));
  return catchUp();
}

async function doCatchUp() {
  const before = new Set(state.conversations.keys()); // one created while the sync is under way stays
  const sync = await api.get('/v1/sync');
  state.me = sync.me;
  state.users.set(sync.me.id, sync.me);
  state.presence = new Map(Object.entries(sync.presence));
  const known = new Set();
  for (const conversation of sync.conversations) {
    known.add(conversation.id);
    mergeConversation(conversation);
  }
  for (const id of before) if (!known.has(id)) state.conversations.delete(id); // left or removed meanwhile
  await loadUsers(sync.conversations.flatMap((conv) => conv.member_ids));
  renderList();
  if (state.current && !state.conversations.has(state.current)) closeThread();
  for (const [id, found] of state.threads) {
    if (!state.conversations.has(id)) continue;
    if (found.loaded) await loadAfter(id, lastSeq(found));
    else if (id === state.current) await loadLatest(id); // opened while its first page could not be had
  }
  renderThread();
  markReadSoon();
  if (noticeReason === 'NETWORK') byId('notice').hidden = true; // connected again: that one is over
}

function onFrame(frame) {
  switch (frame.type) {
    case 'message.new':
      receiveLive(frame.message).catch(fail);
      break;
    case 'message.recalled':
      recalled(frame.conversation_id, frame.message_id);
      break;
    case 'message.removed':
      recalled(frame.conversation_id, frame.message_id, frame.reason);
      break;
    case 'conversation.read':
      readMark(frame.conversation_id, frame.user_id, frame.seq);
      break;
    case 'typing':
      typing(frame.conversation_id, frame.user_id);
      break;
    case 'presence':
      state.presence.set(frame.user_id, frame.status);
      renderList();
      renderThreadHead();
      break;
    case 'error':
      // Typing faster than the server allows is not worth a word; anything else is.
      if (frame.error && frame.error.reason !== 'RATE_LIMITED') fail(errorOf(frame.error));
      break;
    default:
      break;
  }
}

function errorOf(body) {
  return new ApiError(body.code, body.reason, body.message || '', body.metadata);
}

async function receiveLive(message) {
  const id = message.conversation_id;
  stopTyping(id, message.sender_id);
  if (!state.conversations.has(id)) {
    // Someone started a conversation with us: sync brings it, its members' names and their presence.
    await catchUp();
    if (!state.conversations.has(id)) return;
  }
  const thread = state.threads.get(id);
  const gap = thread && thread.loaded && message.seq > lastSeq(thread) + 1;
  accept(message);
  await loadUsers([message.sender_id]);
  renderList();
  if (id === state.current) {
    renderThread();
    markReadSoon();
  }
  // A seq more than one past what we have means "fetch this range" (it may also be a harmless gap).
  if (gap) {
    await loadAfter(id, lastSeq(thread, message.seq));
    if (id === state.current) renderThread();
  }
}

/** A message recalled by its sender, or removed by a moderator (`removedFor` is then their reason). */
function recalled(conversationId, messageId, removedFor) {
  const marked = (message) => {
    message.recalled = true;
    if (removedFor) message.removedFor = String(removedFor);
  };
  const thread = state.threads.get(conversationId);
  const message = thread && thread.messages.get(messageId);
  if (message) marked(message);
  const conversation = state.conversations.get(conversationId);
  if (conversation && conversation.last_message && conversation.last_message.id === messageId) {
    marked(conversation.last_message);
  }
  renderList();
  if (conversationId === state.current) renderThread();
  if (search.messages.some((found) => found.id === messageId)) {
    search.messages = search.messages.filter((found) => found.id !== messageId);
    renderSearch();
  }
}

function readMark(conversationId, userId, seq) {
  const conversation = state.conversations.get(conversationId);
  if (!conversation) return;
  if (userId === state.me.id) {
    conversation.read_seq = Math.max(conversation.read_seq, seq);
    conversation.unread_count = Math.max(0, conversation.max_seq - conversation.read_seq);
    renderList();
    return;
  }
  const marks = state.peerRead.get(conversationId) || new Map();
  marks.set(userId, Math.max(marks.get(userId) || 0, seq));
  state.peerRead.set(conversationId, marks);
  if (conversationId === state.current) renderThread();
}

function typing(conversationId, userId) {
  if (userId === state.me.id) return;
  const users = state.typing.get(conversationId) || new Map();
  clearTimeout(users.get(userId));
  users.set(
    userId,
    setTimeout(() => stopTyping(conversationId, userId), TYPING_SHOWN_MS),
  );
  state.typing.set(conversationId, users);
  loadUsers([userId]).then(() => conversationId === state.current && renderThreadHead());
}

function stopTyping(conversationId, userId) {
  const users = state.typing.get(conversationId);
  if (!users || !users.has(userId)) return;
  clearTimeout(users.get(userId));
  users.delete(userId);
  if (conversationId === state.current) renderThreadHead();
}

// ---------------------------------------------------------------------------------------------------------------
// The model: conversations, threads, users

function newThread() {
  return { messages: new Map(), pending: new Map(), loaded: false, hasOlder: false, loadingOlder: false };
}

function thread(id) {
  let found = state.threads.get(id);
  if (!found) {
    found = newThread();
    state.threads.set(id, found);
  }
  return found;
}

function lastSeq(found, below = Infinity) {
  let last = 0;
  for (const message of found.messages.values()) if (message.seq < below) last = Math.max(last, message.seq);
  return last;
}

function firstSeq(found) {
  let first = Infinity;
  for (const message of found.messages.values()) first = Math.min(first, message.seq);
  return first === Infinity ? 0 : first;
}

/** A conversation from the server merged with what we saw live (which can be ahead of what is stored). */
function mergeConversation(incoming) {
  const mine = state.conversations.get(incoming.id);
  const merged = { ...incoming };
  if (mine) {
    merged.max_seq = Math.max(mine.max_seq, incoming.max_seq);
    merged.read_seq = Math.max(mine.read_seq, incoming.read_seq);
    if (mine.last_message && (!incoming.last_message || mine.last_message.seq > incoming.last_message.seq)) {
      merged.last_message = mine.last_message;
      merged.updated_at = mine.updated_at;
    }
  }
  merged.unread_count = Math.max(0, merged.max_seq - merged.read_seq);
  state.conversations.set(incoming.id, merged);
}

/** A stored or live message: replaces its local echo, updates the conversation's last message and counts. */
function accept(message) {
  const found = thread(message.conversation_id);
  const had = found.messages.get(message.id);
  found.messages.set(
    message.id,
    had ? { ...message, recalled: had.recalled || message.recalled, removedFor: had.removedFor } : message,
  );
  if (message.sender_id === state.me.id) found.pending.delete(message.client_msg_id);
  const conversation = state.conversations.get(message.conversation_id);
  if (!conversation) return;
  conversation.max_seq = Math.max(conversation.max_seq, message.seq);
  if (!conversation.last_message || conversation.last_message.seq <= message.seq) {
    conversation.last_message = found.messages.get(message.id);
    conversation.updated_at = message.created_at;
  }
  conversation.unread_count = Math.max(0, conversation.max_seq - conversation.read_seq);
}

const userLoads = new Map();

/** Fetch the profiles we do not have yet (names for senders and direct conversations). */
async function loadUsers(ids) {
  const wanted = [...new Set(ids)].filter((id) => !state.users.has(id));
  await Promise.all(
    wanted.map((id) => {
      if (!userLoads.has(id)) {
        userLoads.set(
          id,
          api
            .get(`/v1/users/${id}`)
            .then((user) => state.users.set(id, user))
            .catch(() => undefined)
            .finally(() => userLoads.delete(id)),
        );
      }
      return userLoads.get(id);
    }),
  );
}

function nameOf(userId) {
  const user = state.users.get(userId);
  return user ? user.display_name || user.username : 'Someone';
}

function peerOf(conversation) {
  return conversation.kind === 'direct' ? conversation.member_ids.find((id) => id !== state.me.id) || '' : '';
}

function titleOf(conversation) {
  if (conversation.kind === 'group') return conversation.title;
  const peer = peerOf(conversation);
  return peer ? nameOf(peer) : 'Just you';
}

// ---------------------------------------------------------------------------------------------------------------
// History

async function loadAfter(id, after) {
  let from = after;
  for (;;) {
    const page = await api.get(`/v1/conversations/${id}/messages?after_seq=${from}&limit=${CATCH_UP_PAGE}`);
    for (const message of page.messages) accept(message);
    if (!page.has_more || page.messages.length === 0) break;
    from = page.messages[page.messages.length - 1].seq;
  }
}

/** The newest page of an opened conversation, then anything after it (it may have grown meanwhile). */
async function loadLatest(id) {
  const found = thread(id);
  const conversation = state.conversations.get(id);
  if (conversation.max_seq > 0) {
    const page = await api.get(`/v1/conversations/${id}/messages?before_seq=${conversation.max_seq + 1}&limit=${PAGE}`);
    for (const message of page.messages) accept(message);
    found.hasOlder = page.has_more;
  }
  found.loaded = true; // from here on a catch-up pages forward from what we have, should the rest fail now
  await loadAfter(id, lastSeq(found));
}

async function loadOlder() {
  const id = state.current;
  const found = state.threads.get(id);
  if (!found || !found.loaded || !found.hasOlder || found.loadingOlder) return;
  found.loadingOlder = true;
  renderOlder(found);
  const scroller = byId('scroller');
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await api.get(`/v1/conversations/${id}/messages?before_seq=${firstSeq(found)}&limit=${PAGE}`);
    for (const message of page.messages) accept(message);
    found.hasOlder = page.has_more;
  } catch (error) {
    fail(error);
  } finally {
    found.loadingOlder = false;
  }
  if (id !== state.current) return;
  renderThread({ keepBottom: false });
  scroller.scrollTop = scroller.scrollHeight - fromBottom; // the message read before stays where it was
}

// ---------------------------------------------------------------------------------------------------------------
// Opening a conversation, reading, sending, recalling

async function openConversation(id) {
  state.current = id;
  if (state.target && state.target.conversationId !== id) state.target = null;
  document.body.dataset.view = 'thread';
  renderList();
  renderThread();
  const found = thread(id);
  if (!found.loaded) {
    try {
      await loadLatest(id);
    } catch (error) {
      fail(error);
    }
    if (id !== state.current) return;
    await loadUsers([...found.messages.values()].map((message) => message.sender_id));
  }
  renderThread();
  scrollToBottom();
  markReadSoon();
  byId('composer-text').focus();
  const scroller = byId('scroller');
  if (scroller.scrollHeight <= scroller.clientHeight) loadOlder(); // nothing to scroll yet: fill the view
}

function closeThread() {
  const was = state.current;
  state.current = '';
  state.target = null;
  document.body.dataset.view = 'list';
  renderList();
  renderThread();
  focusConversation(was) || byId('new-chat').querySelector('summary').focus();
}

/** Focus a conversation's entry in the list; false if it is not there. */
function focusConversation(id) {
  const item = [...byId('conversations').children].find((li) => li.dataset.conversationId === id);
  if (item) item.querySelector('button').focus();
  return Boolean(item);
}

let readTimer = null;

/** Whether the person is looking at this conversation now (so whatever arrives in it is read). */
function reading(id) {
  const found = state.threads.get(id);
  return id === state.current && Boolean(found && found.loaded) && document.visibilityState === 'visible';
}

/** Mark the open conversation read up to its newest message, once things settle and the page is seen. */
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(markRead, 150);
}

async function markRead(attempt = 0) {
  const id = state.current;
  const conversation = state.conversations.get(id);
  const found = state.threads.get(id);
  if (!conversation || !reading(id)) return;
  const seq = Math.max(lastSeq(found), conversation.max_seq);
  if (seq <= conversation.read_seq && attempt === 0) return;
  conversation.read_seq = Math.max(conversation.read_seq, seq);
  conversation.unread_count = 0;
  renderList();
  try {
    await api.post(`/v1/conversations/${id}/read`, { seq });
    // The server clamps a mark to what is stored; a message seen live may be stored a moment later.
    const stored = await api.get(`/v1/conversations/${id}`);
    if (stored.read_seq < seq && attempt < READ_CHECKS) {
      setTimeout(() => id === state.current && markRead(attempt + 1), 250 * 2 ** attempt);
    }
  } catch (error) {
    fail(error);
  }
}

async function send(conversationId, text, clientMsgId = randomId()) {
  const found = thread(conversationId);
  found.pending.set(clientMsgId, {
    client_msg_id: clientMsgId,
    text,
    state: 'sending',
    error: '',
    at: new Date().toISOString(),
  });
  renderThread();
  scrollToBottom();
  try {
    const answer = await api.post(`/v1/conversations/${conversationId}/messages`, {
      client_msg_id: clientMsgId,
      text,
    });
    accept(answer.message);
    renderList();
    markReadSoon();
  } catch (error) {
    const echo = found.pending.get(clientMsgId);
    if (echo) Object.assign(echo, { state: 'failed', error: describe(error) });
  }
  if (conversationId === state.current) renderThread();
}

function retry(conversationId, clientMsgId) {
  const echo = thread(conversationId).pending.get(clientMsgId);
  if (echo) send(conversationId, echo.text, clientMsgId); // the same client_msg_id: stored once however often
}

async function recall(conversationId, messageId) {
  try {
    await api.delete(`/v1/conversations/${conversationId}/messages/${messageId}`);
    recalled(conversationId, messageId);
  } catch (error) {
    fail(error);
  }
  byId('composer-text').focus();
}

// ---------------------------------------------------------------------------------------------------------------
// New conversations

async function findUser(username) {
  const wanted = username.trim().replace(/^@/, '');
  if (!wanted) throw new Error('type a username');
  const { users } = await api.get(`/v1/users?query=${encodeURIComponent(wanted)}`);
  const user = users.find((candidate) => candidate.username.toLowerCase() === wanted.toLowerCase());
  if (!user) throw new ApiError(404, 'USER_NOT_FOUND', `no user named ${wanted}`);
  state.users.set(user.id, user);
  return user;
}

async function submitDirect(event) {
  event.preventDefault();
  const input = byId('direct-username');
  const errorLine = byId('direct-error');
  setText(errorLine, '');
  if (!input.value.trim()) {
    setText(errorLine, 'Type the username of the person to chat with.');
    input.focus();
    return;
  }
  try {
    const user = await findUser(input.value);
    if (user.id === state.me.id) {
      setText(errorLine, 'That is you. Type someone else’s username.');
      return;
    }
    await startDirect(user);
    input.value = '';
    byId('new-chat').open = false;
  } catch (error) {
    setText(errorLine, error.reason === 'USER_NOT_FOUND' ? `No user is named “${input.value.trim()}”.` : describe(error));
    input.focus();
  }
}

/** Open the direct conversation with `user` (made if there is none yet). */
async function startDirect(user) {
  const conversation = await api.post('/v1/conversations', { kind: 'direct', peer_id: user.id });
  mergeConversation(conversation);
  openConversation(conversation.id);
  catchUp(); // the new members' presence
}

async function submitGroup(event) {
  event.preventDefault();
  const title = byId('group-title');
  const members = byId('group-members');
  const errorLine = byId('group-error');
  setText(errorLine, '');
  if (!title.value.trim()) {
    setText(errorLine, 'Give the group a name.');
    title.focus();
    return;
  }
  const names = members.value
    .split(/[,\s]+/)
    .map((name) => name.trim().replace(/^@/, ''))
    .filter(Boolean);
  const ids = [];
  for (const name of names) {
    try {
      const user = await findUser(name);
      if (user.id !== state.me.id && !ids.includes(user.id)) ids.push(user.id);
    } catch (error) {
      setText(errorLine, error.reason === 'USER_NOT_FOUND' ? `No user is named “${name}”.` : describe(error));
      members.focus();
      return;
    }
  }
  try {
    const conversation = await api.post('/v1/conversations', { kind: 'group', title: title.value, member_ids: ids });
    mergeConversation(conversation);
    title.value = '';
    members.value = '';
    byId('new-chat').open = false;
    openConversation(conversation.id);
    catchUp(); // the new members' presence
  } catch (error) {
    setText(errorLine, describe(error));
    title.focus();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Search: messages (newest first, a page at a time, in all my conversations or the open one) and people

/** People search takes what the API takes (2-64 characters, no control characters); other queries skip it. */
function peopleQuery(query) {
  const length = codePoints(query);
  return length >= PEOPLE_QUERY_MIN && length <= PEOPLE_QUERY_MAX && !/\p{Cc}/u.test(query);
}

async function submitSearch(event) {
  event.preventDefault();
  const input = byId('search-query');
  const query = input.value.trim();
  input.setAttribute('aria-invalid', 'false');
  if (!query) {
    setText(byId('search-error'), 'Type the words to look for.');
    input.focus();
    return;
  }
  const scoped = byId('search-scope').checked && state.conversations.has(state.current);
  Object.assign(search, {
    open: true,
    query,
    conversationId: scoped ? state.current : '',
    // A person is not in a conversation's messages: a search in one conversation looks for messages only.
    withPeople: !scoped && peopleQuery(query),
    people: [],
    messages: [],
    cursor: null,
    loadingMore: false,
  });
  await runSearch(false);
}

/** The first page of messages (and the people), or the next page; false if a newer search replaced this one. */
async function runSearch(more) {
  search.run += 1;
  const run = search.run;
  search.error = '';
  if (more) search.loadingMore = true;
  else search.loading = true;
  renderSearch();
  const params = new URLSearchParams({ query: search.query, limit: String(SEARCH_PAGE) });
  if (search.conversationId) params.set('conversation_id', search.conversationId);
  if (more) params.set('cursor', search.cursor);
  const asks = [api.get(`/v1/search/messages?${params}`)];
  if (!more && search.withPeople) {
    asks.push(api.get(`/v1/users?${new URLSearchParams({ query: search.query, limit: String(PEOPLE_PAGE) })}`));
  }
  const [messages, people] = await Promise.allSettled(asks);
  if (run !== search.run) return false;
  search.loading = false;
  search.loadingMore = false;
  const failures = [];
  search.failed = { messages: messages.status === 'rejected', people: Boolean(people) && people.status === 'rejected' };
  if (messages.status === 'fulfilled') {
    search.messages.push(...messages.value.messages);
    search.cursor = messages.value.next_cursor;
  } else {
    failures.push(messages.reason);
  }
  if (people && people.status === 'fulfilled') search.people = people.value.users;
  else if (people) failures.push(people.reason);
  // One line says what failed: a bad query is the same answer from both searches, an outage too.
  search.error = [...new Set(failures.map(describe))].join(' ');
  if (failures.some((error) => error.field === 'query')) byId('search-query').setAttribute('aria-invalid', 'true');
  renderSearch();
  return true;
}

async function moreResults() {
  const shown = search.messages.length;
  if (!(await runSearch(true))) return;
  const next = byId('found').children[shown];
  const button = next && next.querySelector('button');
  (button || byId('search-query')).focus();
}

function closeSearch({ focus = false } = {}) {
  search.run += 1; // an answer still on its way is dropped
  Object.assign(search, { open: false, query: '', people: [], messages: [], cursor: null, loading: false });
  Object.assign(search, { loadingMore: false, failed: { messages: false, people: false }, error: '' });
  byId('search-query').value = '';
  byId('search-query').setAttribute('aria-invalid', 'false');
  renderSearch();
  if (focus) byId('search-query').focus();
}

/** A message result opens its conversation, and the message is shown there, marked. */
async function openFound(message) {
  const id = message.conversation_id;
  if (!state.conversations.has(id)) await catchUp(); // found before the list knew the conversation
  if (!state.conversations.has(id)) {
    setText(byId('search-error'), describe(new ApiError(404, 'CONVERSATION_NOT_FOUND', '')));
    return;
  }
  state.target = { conversationId: id, messageId: message.id };
  await openConversation(id);
  if (state.current === id) await reveal(id, message.seq, message.id);
}

/** Load older pages until the message of `seq` is in the thread (a bounded number of them), then scroll to it. */
async function reveal(id, seq, messageId) {
  const found = thread(id);
  try {
    for (let page = 0; page < REVEAL_PAGES && found.hasOlder && firstSeq(found) > seq; page += 1) {
      const older = await api.get(`/v1/conversations/${id}/messages?before_seq=${firstSeq(found)}&limit=${PAGE}`);
      for (const message of older.messages) accept(message);
      found.hasOlder = older.has_more;
      if (id !== state.current) return;
    }
  } catch (error) {
    fail(error);
  }
  if (id !== state.current) return;
  renderThread({ keepBottom: false });
  const item = [...byId('messages').children].find((li) => li.dataset.id === messageId);
  if (item) item.scrollIntoView({ block: 'center' });
}

async function chatWith(user) {
  setText(byId('search-error'), '');
  try {
    state.users.set(user.id, user);
    await startDirect(user);
  } catch (error) {
    setText(byId('search-error'), describe(error));
  }
}

function renderSearchScope() {
  const conversation = state.conversations.get(state.current);
  byId('search-scope-row').hidden = !conversation;
  if (conversation) setText(byId('search-scope-text'), `Only in “${titleOf(conversation)}”`);
}

function renderSearch() {
  byId('sidebar').classList.toggle('searching', search.open);
  byId('search-results').hidden = !search.open;
  setText(byId('search-error'), search.error);
  if (!search.open) {
    byId('people').replaceChildren();
    byId('found').replaceChildren();
    return;
  }
  const conversation = state.conversations.get(search.conversationId);
  setText(
    byId('search-heading'),
    search.conversationId ? `Results in “${conversation ? titleOf(conversation) : 'a conversation'}”` : 'Search results',
  );
  setText(byId('search-status'), search.loading ? 'Searching…' : '');
  // Nothing found is said only once the search answered; while it runs, or if it failed, the list stays empty.
  const none = (kind, words) =>
    !search.loading && !search.failed[kind] && search[kind].length === 0 ? [h('li', { class: 'empty' }, words)] : [];
  byId('people-results').hidden = !search.withPeople;
  byId('people').replaceChildren(...search.people.map(personItem), ...none('people', 'No one found.'));
  byId('found').replaceChildren(...search.messages.map(foundItem), ...none('messages', 'No messages found.'));
  const more = byId('search-more');
  more.hidden = !search.cursor || search.loading;
  more.disabled = search.loadingMore;
  setText(more, search.loadingMore ? 'Loading more…' : 'More results');
}

function personItem(user) {
  const name = user.display_name || user.username;
  const me = state.me && user.id === state.me.id;
  const parts = [
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, initial(name)),
    h(
      'span',
      { class: 'summary' },
      h('span', { class: 'title', dir: 'auto' }, name, me ? ' (you)' : ''),
      h('span', { class: 'preview', dir: 'auto' }, `@${user.username}`),
    ),
  ];
  return h(
    'li',
    { dataset: { userId: user.id } },
    me
      ? h('div', { class: 'conversation' }, ...parts)
      : h('button', { type: 'button', class: 'conversation', onclick: () => chatWith(user) }, ...parts),
  );
}

function foundItem(message) {
  const conversation = state.conversations.get(message.conversation_id);
  const sender = message.sender_id === state.me.id ? 'You' : message.sender_name || nameOf(message.sender_id);
  return h(
    'li',
    { dataset: { id: message.id, conversationId: message.conversation_id } },
    h(
      'button',
      { type: 'button', class: 'result', onclick: () => openFound(message) },
      h(
        'span',
        { class: 'meta' },
        h('span', { class: 'who', dir: 'auto' }, sender),
        h('span', { class: 'where', dir: 'auto' }, conversation ? titleOf(conversation) : ''),
        h('time', { datetime: message.created_at }, shortTime(message.created_at)),
      ),
      h('span', { class: 'text', dir: 'auto' }, ...highlighted(message.text, message.highlights, SNIPPET)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function renderList() {
  const list = byId('conversations');
  const conversations = [...state.conversations.values()].sort(
    (a, b) => b.updated_at.localeCompare(a.updated_at) || compareIds(b.id, a.id),
  );
  byId('list-empty').hidden = conversations.length > 0;
  // The list is rebuilt whenever something changes: keep the keyboard focus on the entry that had it.
  const focused = list.contains(document.activeElement) && document.activeElement.closest('li');
  list.replaceChildren(...conversations.map(conversationItem));
  if (focused) focusConversation(focused.dataset.conversationId);
}

function compareIds(a, b) {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function conversationItem(conversation) {
  const peer = peerOf(conversation);
  const online = peer && state.presence.get(peer) === 'online';
  const last = conversation.last_message;
  const preview = !last
    ? 'No messages yet'
    : `${last.sender_id === state.me.id ? 'You: ' : conversation.kind === 'group' ? `${nameOf(last.sender_id)}: ` : ''}${
        last.recalled ? (last.removedFor ? 'Message removed by a moderator' : 'Message recalled') : last.text
      }`;
  const unread = reading(conversation.id) ? 0 : conversation.unread_count; // being read: the mark follows
  return h(
    'li',
    { dataset: { conversationId: conversation.id } },
    h(
      'button',
      {
        type: 'button',
        class: 'conversation',
        'aria-current': conversation.id === state.current ? 'true' : 'false',
        onclick: () => openConversation(conversation.id),
      },
      h('span', { class: `avatar${online ? ' online' : ''}`, 'aria-hidden': 'true' }, initial(titleOf(conversation))),
      h(
        'span',
        { class: 'summary' },
        h(
          'span',
          { class: 'title', dir: 'auto' },
          titleOf(conversation),
          online ? h('span', { class: 'visually-hidden' }, ' (online)') : null,
        ),
        h('span', { class: `preview${last && last.recalled ? ' recalled' : ''}`, dir: 'auto' }, preview),
      ),
      h(
        'span',
        { class: 'side' },
        h('time', { datetime: conversation.updated_at }, last ? shortTime(last.created_at) : ''),
        unread
          ? h(
              'span',
              { class: 'badge', dataset: { unread: String(unread) } },
              unread > 99 ? '99+' : String(unread),
              h('span', { class: 'visually-hidden' }, ' unread'),
            )
          : null,
      ),
    ),
  );
}

function initial(text) {
  const first = [...text.trim()][0];
  return first ? first.toUpperCase() : '#';
}

function renderThreadHead() {
  const conversation = state.conversations.get(state.current);
  if (!conversation) return;
  setText(byId('thread-title'), titleOf(conversation));
  const typers = [...(state.typing.get(state.current) || new Map()).keys()].map(nameOf);
  let sub;
  if (typers.length === 1) sub = `${typers[0]} is typing…`;
  else if (typers.length > 1) sub = `${typers.join(', ')} are typing…`;
  else if (conversation.kind === 'direct') {
    const peer = peerOf(conversation);
    sub = peer && state.presence.get(peer) === 'online' ? 'online' : 'offline';
  } else {
    const online = conversation.member_ids.filter((id) => id !== state.me.id && state.presence.get(id) === 'online');
    sub = `${conversation.member_ids.length} members, ${online.length + 1} online`;
  }
  const line = byId('thread-sub');
  setText(line, sub);
  line.classList.toggle('typing', typers.length > 0);
}

function renderThread({ keepBottom = true } = {}) {
  const conversation = state.conversations.get(state.current);
  const open = Boolean(conversation);
  renderSearchScope();
  byId('thread-empty').hidden = open;
  byId('thread-head').hidden = !open;
  byId('scroller').hidden = !open;
  byId('composer').hidden = !open;
  if (!open) {
    byId('messages').replaceChildren();
    return;
  }
  renderThreadHead();
  const found = thread(state.current);
  const scroller = byId('scroller');
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const messages = [...found.messages.values()].sort((a, b) => a.seq - b.seq);
  const seenUpTo = seenMark(conversation, messages);
  const items = messages.map((message) => messageItem(conversation, message, seenUpTo));
  for (const echo of found.pending.values()) items.push(echoItem(conversation, echo));
  const list = byId('messages');
  const focused = list.contains(document.activeElement) && document.activeElement.closest('li');
  list.replaceChildren(...items);
  if (focused) {
    const again = [...list.children].find((li) => li.dataset.id && li.dataset.id === focused.dataset.id);
    const button = again && again.querySelector('button');
    (button || byId('composer-text')).focus();
  }
  renderOlder(found);
  if (keepBottom && atBottom) scrollToBottom();
}

function renderOlder(found) {
  const older = byId('older');
  if (!found.loaded) setText(older, 'Loading…');
  else if (found.loadingOlder) setText(older, 'Loading older messages…');
  else if (found.hasOlder) setText(older, 'Scroll up for older messages');
  else setText(older, found.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!');
}

/** The seq of my newest message another member has read, and by how many (for "Seen" / "Seen by 2"). */
function seenMark(conversation, messages) {
  const marks = state.peerRead.get(conversation.id);
  if (!marks) return { seq: 0, by: 0 };
  const mine = messages.filter((message) => message.sender_id === state.me.id);
  for (let i = mine.length - 1; i >= 0; i -= 1) {
    const by = [...marks.values()].filter((seq) => seq >= mine[i].seq).length;
    if (by > 0) return { seq: mine[i].seq, by };
  }
  return { seq: 0, by: 0 };
}

function messageItem(conversation, message, seen) {
  const mine = message.sender_id === state.me.id;
  const classes = ['message', mine ? 'mine' : 'theirs'];
  if (message.recalled) classes.push('recalled');
  if (state.target && state.target.messageId === message.id) classes.push('target');
  let status = null;
  if (mine && seen.seq === message.seq) {
    status = conversation.kind === 'direct' ? 'Seen' : `Seen by ${seen.by}`;
  }
  return h(
    'li',
    { class: classes.join(' '), dataset: { id: message.id, seq: String(message.seq), sender: message.sender_id } },
    header(conversation, message.sender_id, message.created_at),
    message.recalled
      ? h('p', { class: 'text', dir: 'auto' }, recallNote(message, mine))
      : h('p', { class: 'text', dir: 'auto' }, message.text),
    status ? h('p', { class: 'status' }, status) : null,
    mine && !message.recalled
      ? h(
          'button',
          {
            type: 'button',
            class: 'link recall',
            'aria-label': 'Recall this message',
            onclick: () => recall(conversation.id, message.id),
          },
          'Recall',
        )
      : null,
  );
}

/** What stands in for a recalled message's text (a text node: a moderator's reason is never markup). */
function recallNote(message, mine) {
  if (message.removedFor) return `Removed by a moderator: ${message.removedFor}`;
  return mine ? 'You recalled this message' : 'This message was recalled';
}

function echoItem(conversation, echo) {
  const failed = echo.state === 'failed';
  return h(
    'li',
    { class: `message mine echo${failed ? ' failed' : ''}`, dataset: { clientMsgId: echo.client_msg_id } },
    header(conversation, state.me.id, echo.at),
    h('p', { class: 'text', dir: 'auto' }, echo.text),
    failed
      ? h(
          'p',
          { class: 'status error', role: 'alert' },
          `Not sent: ${echo.error} `,
          h(
            'button',
            { type: 'button', class: 'link', onclick: () => retry(conversation.id, echo.client_msg_id) },
            'Retry',
          ),
        )
      : h('p', { class: 'status' }, 'Sending…'),
  );
}

function header(conversation, senderId, at) {
  return h(
    'p',
    { class: 'meta' },
    conversation.kind === 'group' || senderId !== state.me.id
      ? h('span', { class: 'who', dir: 'auto' }, senderId === state.me.id ? 'You' : nameOf(senderId))
      : null,
    h('time', { datetime: at }, shortTime(at)),
  );
}

function scrollToBottom() {
  const scroller = byId('scroller');
  scroller.scrollTop = scroller.scrollHeight;
}

function showConnection(status, retryInS) {
  state.connection = status;
  const line = byId('conn');
  line.dataset.state = status;
  if (status === 'online') setText(line, 'Connected');
  else if (status === 'connecting') setText(line, 'Connecting…');
  else setText(line, `Offline. Reconnecting in ${retryInS} s…`);
}

let noticeReason = '';

function fail(error) {
  notify(describe(error), error && error.reason);
}

/** A failure the person should know about, in words; it stays until dismissed or the next one. */
function notify(text, reason = '') {
  noticeReason = reason;
  setText(byId('notice-text'), text);
  byId('notice').hidden = false;
}

// ---------------------------------------------------------------------------------------------------------------
// The composer: limits explained before sending, Enter sends, Shift+Enter is a new line

let lastTypingSent = 0;

function composerProblem(text) {
  const length = codePoints(text);
  if (length > MAX_TEXT) {
    const over = length - MAX_TEXT;
    return `Too long: ${numberFormat.format(length)} of ${numberFormat.format(MAX_TEXT)} characters. Remove ${numberFormat.format(over)} to send.`;
  }
  if (text.length > 0 && !text.trim()) return 'Only spaces: write something to send.';
  return '';
}

function renderComposer() {
  const input = byId('composer-text');
  const text = input.value;
  const problem = composerProblem(text);
  const length = codePoints(text);
  const hint = byId('composer-hint');
  hint.classList.toggle('error', Boolean(problem));
  if (problem) setText(hint, problem);
  else if (length > MAX_TEXT - 500) setText(hint, `${numberFormat.format(MAX_TEXT - length)} characters left`);
  else setText(hint, '');
  input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  byId('send').disabled = Boolean(problem) || !text.trim();
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

function submitMessage(event) {
  event.preventDefault();
  const input = byId('composer-text');
  const text = input.value;
  if (!state.current || !text.trim() || composerProblem(text)) {
    renderComposer();
    return;
  }
  input.value = '';
  renderComposer();
  lastTypingSent = 0; // the others stop showing "typing" when the message lands: announce the next one at once
  send(state.current, text);
  input.focus();
}

function composerKey(event) {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    byId('composer').requestSubmit();
  }
}

function composerInput() {
  renderComposer();
  const now = Date.now();
  if (state.current && byId('composer-text').value && now - lastTypingSent > TYPING_SEND_EVERY_MS) {
    lastTypingSent = now;
    live.send({ type: 'typing', conversation_id: state.current });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Start

function bind() {
  byId('auth-form').addEventListener('submit', submitAuth);
  byId('auth-switch').addEventListener('click', () => setAuthMode(!signingUp));
  byId('logout').addEventListener('click', logOut);
  byId('notice-close').addEventListener('click', () => {
    byId('notice').hidden = true;
  });
  byId('direct-form').addEventListener('submit', submitDirect);
  byId('group-form').addEventListener('submit', submitGroup);
  byId('search-form').addEventListener('submit', submitSearch);
  byId('search-close').addEventListener('click', () => closeSearch({ focus: true }));
  byId('search-more').addEventListener('click', moreResults);
  byId('search-query').addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && search.open) closeSearch({ focus: true });
  });
  byId('back').addEventListener('click', closeThread);
  byId('composer').addEventListener('submit', submitMessage);
  byId('composer-text').addEventListener('keydown', composerKey);
  byId('composer-text').addEventListener('input', composerInput);
  byId('scroller').addEventListener('scroll', () => {
    if (byId('scroller').scrollTop < 120) loadOlder();
  });
  // At phone width Escape goes back to the list, as the back button does; on a desktop both stay in view.
  const narrow = window.matchMedia('(max-width: 720px)');
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.current && narrow.matches) closeThread();
  });
  document.addEventListener('visibilitychange', markReadSoon);
  window.addEventListener('focus', markReadSoon);
}

bind();
setAuthMode(false);
renderComposer();
if (api.session) enterApp();
else showAuth();
