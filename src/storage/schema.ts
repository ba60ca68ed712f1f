import type { Generated } from 'kysely';
import type { MessageStatus } from '../common/message-status';

export interface ChatsTable {
  id: string;
  /** Owner; `local` is the single user of AUTH_MODE=none. */
  user_id: string;
  title: string;
  /** JSON of the chat's settings (model, thinking, temperature, max_tokens, system_prompt). */
  settings: string;
  created_at: string;
  updated_at: string;
}

export interface MessagesTable {
  id: string;
  chat_id: string;
  role: 'user' | 'assistant';
  content: string;
  reasoning: string | null;
  status: MessageStatus;
  model: string | null;
  /** JSON of the model's usage figures, when it reported them. */
  usage: string | null;
  error_code: string | null;
  /** The model's own finish_reason (`stop`, `length`, `content_filter`, `tool_calls`), when it gave one. */
  finish_reason: string | null;
  /** The client's `id` of the frame that started the generation. */
  request_id: string | null;
  /** Last `seq` included in `content`/`reasoning` (0 for user messages). */
  seq: Generated<number>;
  created_at: string;
  updated_at: string;
  /**
   * Set on a message off the chat's current line: on an answer, the regenerated answer that replaced
   * it; on an edited user message and every message after it then (its branch), the new user message.
   */
  replaced_by: string | null;
  /** JSON array of the ids this message replaced, oldest first (a regenerated answer's, an edited user message's). */
  previous_versions: string | null;
  /** JSON array of file ids sent with a user message. */
  attachments: string | null;
  /** The instance generating a `streaming` answer (with Redis). */
  instance_id: string | null;
  /** Older turns left out of an answer's model request (0 when none); null on user messages and older rows. */
  omitted_turns: number | null;
}

export interface FilesTable {
  id: string;
  user_id: string;
  name: string;
  size: number;
  content: string;
  created_at: string;
}

export interface SharesTable {
  token: string;
  chat_id: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  username: string;
  /** Lower-cased username: names are unique regardless of case. */
  username_key: string;
  password_hash: string;
  is_admin: number;
  created_at: string;
}

export interface SessionsTable {
  /** SHA-256 of the cookie's secret: a leaked database does not leak live sessions. */
  id_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

/** Settings changed at run time by the admin (`signup_open`: `true`/`false`). */
/** Usage of model calls made for a user that are neither an answer nor a Solver run (a chat's title). */
export interface ModelCallsTable {
  id: string;
  user_id: string;
  /** What the call was for: `title`. */
  purpose: string;
  /** JSON of the model's usage figures. */
  usage: string;
  created_at: string;
}

export interface ServerSettingsTable {
  key: string;
  value: string;
}

export interface SolverRunsTable {
  id: string;
  /** Who started it; `local` is the single user of AUTH_MODE=none. */
  user_id: string;
  issue_url: string;
  /** `owner/repo`. */
  repo: string;
  issue_number: number;
  issue_title: string | null;
  open_pr: number;
  status: 'running' | 'complete' | 'stopped' | 'error' | 'interrupted';
  /** The stage reached last (docs/protocol.md stage names). */
  stage: string;
  progress: number;
  /** JSON array of `{stage, progress, message, at}`: the run's progress as it went. */
  stages: string;
  summary: string | null;
  /** JSON array of paths. */
  files: string;
  patch: string | null;
  /** 1/0 once verified; null before. */
  applies: number | null;
  pr_url: string | null;
  error_code: string | null;
  error_message: string | null;
  /** JSON of the summed model usage of the run's calls. */
  usage: string | null;
  /** The client's `id` of the `solve` frame. */
  request_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface Database {
  files: FilesTable;
  shares: SharesTable;
  users: UsersTable;
  sessions: SessionsTable;
  server_settings: ServerSettingsTable;
  model_calls: ModelCallsTable;
  chats: ChatsTable;
  messages: MessagesTable;
  solver_runs: SolverRunsTable;
}
