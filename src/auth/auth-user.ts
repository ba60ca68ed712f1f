/** Who is asking: attached to every HTTP request (`req.user`) and every socket. */
export interface AuthUser {
  id: string;
  username: string;
  isAdmin: boolean;
  /** HMAC of the session cookie; absent for AUTH_MODE=none. */
  sessionKey?: string;
}

/** The single user of AUTH_MODE=none: owns everything. */
export const LOCAL_USER: AuthUser = { id: 'local', username: 'local', isAdmin: true };

export const SESSION_COOKIE = 'chat_session';
