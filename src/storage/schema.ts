import { Generated } from 'kysely';

export interface ChatsTable {
  id: string;
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
  status: 'streaming' | 'complete' | 'stopped' | 'interrupted' | 'error';
  model: string | null;
  /** JSON of the model's usage figures, when it reported them. */
  usage: string | null;
  error_code: string | null;
  /** The client's `id` of the frame that started the generation. */
  request_id: string | null;
  /** Last `seq` included in `content`/`reasoning` (0 for user messages). */
  seq: Generated<number>;
  created_at: string;
  updated_at: string;
}

export interface Database {
  chats: ChatsTable;
  messages: MessagesTable;
}
