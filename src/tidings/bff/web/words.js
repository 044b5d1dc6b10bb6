// What each error reason of the API means, in words a person reads.

const REASONS = {
  NETWORK: 'Cannot reach the server. Check your connection and try again.',
  INVALID_ARGUMENT: 'Something in the request is not valid.',
  UNAUTHENTICATED: 'You are not logged in.',
  PERMISSION_DENIED: 'You are not allowed to do that.',
  NOT_FOUND: 'Not found.',
  CONFLICT: 'That changed meanwhile. Try again.',
  RATE_LIMITED: 'Too many requests. Wait a moment and try again.',
  CANCELLED: 'The request was cancelled.',
  INTERNAL: 'The server failed unexpectedly.',
  NOT_IMPLEMENTED: 'The server does not support this yet.',
  UNAVAILABLE: 'The service is busy or down. Try again shortly.',
  DEADLINE_EXCEEDED: 'The server took too long to answer. Try again.',
  USER_NOT_FOUND: 'There is no user with that name.',
  USERNAME_TAKEN: 'That username is taken. Pick another one.',
  INVALID_CREDENTIALS: 'Wrong username or password.',
  TOKEN_EXPIRED: 'Your session expired. Log in again.',
  TOKEN_INVALID: 'Your session is not valid. Log in again.',
  TOKEN_REVOKED: 'Your session was ended. Log in again.',
  USER_BANNED: 'This account is banned.',
  CONVERSATION_NOT_FOUND: 'That conversation does not exist or you cannot see it.',
  NOT_A_MEMBER: 'You are not a member of this conversation.',
  MESSAGE_NOT_FOUND: 'That message does not exist.',
  MESSAGE_TOO_LONG: 'The message is too long: at most 4,000 characters.',
  RECALL_WINDOW_PASSED: 'Too late to recall this message.',
  NOT_MESSAGE_SENDER: 'You can only recall your own messages.',
  NOT_GROUP_OWNER: 'Only the group owner can do that.',
  NOT_A_GROUP: 'That works in groups only.',
  GROUP_TOO_LARGE: 'The group would have too many members.',
  USER_BLOCKED: 'This person does not accept your messages.',
  SEARCH_UNAVAILABLE: 'Search is unavailable right now; everything else works. Try again shortly.',
};

/** One sentence for an error from the API (an ApiError) or anything else that was thrown. */
export function describe(error) {
  if (!error || !error.reason) return `Something went wrong: ${error && error.message ? error.message : error}`;
  let words = REASONS[error.reason] || `The server said: ${error.reason}.`;
  if (error.reason === 'RECALL_WINDOW_PASSED' && error.metadata && error.metadata.window_s) {
    words = `Too late to recall: messages can be recalled within ${Math.round(error.metadata.window_s / 60)} minutes.`;
  }
  if (error.reason === 'GROUP_TOO_LARGE' && error.metadata && error.metadata.limit) {
    words = `The group would have too many members (at most ${error.metadata.limit}).`;
  }
  // Invalid input names the field and what is wrong with it; an unknown reason keeps the server's own words.
  const detail = error.reason === 'INVALID_ARGUMENT' || !REASONS[error.reason] ? error.serverMessage : '';
  return detail ? `${words} (${detail})` : words;
}
