import { plainToInstance, Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Max, Min, validateSync } from 'class-validator';

const toInt = ({ value }: { value: unknown }) => (typeof value === 'string' ? Number(value) : value);

/**
 * Every environment variable the server reads, validated once at start-up. docs/protocol.md lists the
 * public ones; the LLM_* and DRAIN_* tuning knobs are ours. An empty variable counts as unset.
 */
export class Environment {
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  HOST = '127.0.0.1';

  @IsString()
  DATABASE_URL = 'sqlite:./data/chat.db';

  /**
   * SQLite only: `normal` (WAL commits reach the OS at once and survive a crash or kill of the
   * server; the disk is synced at checkpoints) or `full` (every commit waits for fsync, also
   * surviving a power cut, at ~0.6 ms of blocked event loop per write).
   */
  @IsIn(['normal', 'full'])
  SQLITE_SYNCHRONOUS: 'normal' | 'full' = 'normal';

  /**
   * SQLite only: how often a worker thread copies the WAL into the database file (a checkpoint);
   * 0 = the commit that fills the WAL past 1,000 pages does it, on the event loop (SQLite's default).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SQLITE_CHECKPOINT_MS = 1000;

  @IsOptional()
  @IsString()
  REDIS_URL?: string;

  /** Prefix of every Redis key and channel (several deployments can share one Redis). */
  @IsString()
  REDIS_PREFIX = 'chat:';

  /** With Redis: how often an instance says it is alive; one silent for 3 beats is dead. */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  INSTANCE_HEARTBEAT_MS = 10_000;

  @IsOptional()
  @IsString()
  DEEPSEEK_API_KEY?: string;

  @IsString()
  DEEPSEEK_BASE_URL = 'https://api.deepseek.com';

  @IsString()
  DEEPSEEK_MODEL = 'deepseek-v4-flash';

  @IsIn(['local', 'none'])
  AUTH_MODE: 'local' | 'none' = 'local';

  @IsOptional()
  @IsString()
  SESSION_SECRET?: string;

  @IsString()
  GITHUB_API_URL = 'https://api.github.com';

  @IsOptional()
  @IsString()
  GITHUB_TOKEN?: string;

  /** Who may ask a Solver run to open a pull request with GITHUB_TOKEN: `admin`, `everyone` or `off`. */
  @IsIn(['admin', 'everyone', 'off'])
  SOLVER_PR: 'admin' | 'everyone' | 'off' = 'admin';

  /** When set, the only repositories (comma-separated `owner/repo`, `*` a wildcard) a pull request may be opened on. */
  @IsOptional()
  @IsString()
  SOLVER_PR_REPOS?: string;

  /** Retries of a GitHub request after a 5xx, a dropped connection or a short secondary rate limit. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10)
  GITHUB_MAX_RETRIES = 3;

  /** First back-off of those retries (doubling, with jitter); a secondary limit waits its `retry-after`. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  GITHUB_RETRY_BASE_MS = 1000;

  /** Solver runs one user may have going at once; one more is `limit_exceeded`. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  SOLVER_MAX_RUNS_PER_USER = 2;

  @Transform(toInt)
  @IsInt()
  @Min(256)
  CONTEXT_TOKENS = 65536;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WS_MAX_PAYLOAD = 65536;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  RATE_LIMIT_PER_MINUTE = 30;

  @IsOptional()
  @IsString()
  ALLOWED_ORIGINS?: string;

  /** `Host` names answered (comma-separated, `*` any); unset: loopback names on a loopback HOST, else any. */
  @IsOptional()
  @IsString()
  ALLOWED_HOSTS?: string;

  /** Express's `trust proxy` (`true`, a hop count, or addresses/subnets) when behind a reverse proxy. */
  @IsOptional()
  @IsString()
  TRUST_PROXY?: string;

  /** Accounts one client address may create per hour (`0` = no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SIGNUPS_PER_HOUR = 10;

  /** `false` closes sign-up (the first account can always be made). */
  @IsIn(['true', 'false'])
  ALLOW_SIGNUP: 'true' | 'false' = 'true';

  /** Answers one user may have streaming at once. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_RUNNING_PER_USER = 3;

  /** Open WebSockets one user may hold at once. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  WS_MAX_SOCKETS_PER_USER = 20;

  /** Files one `user_message` may attach. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_ATTACHMENTS_PER_MESSAGE = 10;

  /** Total size of the files one `user_message` attaches. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_ATTACHMENT_BYTES_PER_TURN = 1_048_576;

  /** Bytes of uploaded files one user may keep (`0` = no quota). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  FILE_QUOTA_BYTES = 104_857_600;

  /** Largest body of `POST /api/chats/import`. */
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  IMPORT_MAX_BYTES = 33_554_432;

  /** Most messages one import may hold. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  IMPORT_MAX_MESSAGES = 10_000;

  /** Imports one user may make per hour (`0` = no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  IMPORTS_PER_HOUR = 20;

  /** Largest `max_tokens` a message's options may ask for. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_TOKENS_LIMIT = 65_536;

  /** No-progress timeout of a model request; `: keep-alive` comments do not count as progress. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  LLM_TIMEOUT_MS = 120_000;

  /** Retries of 429/5xx/refused connections, only before the first piece arrives. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10)
  LLM_MAX_RETRIES = 3;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  LLM_RETRY_BASE_MS = 500;

  /** `false`: a new chat keeps its first line as its title instead of one the model writes after the first answer. */
  @IsIn(['true', 'false'])
  GENERATED_TITLES: 'true' | 'false' = 'true';

  /** Where DeepSeek's `thinking` field is sent: `auto` (DeepSeek's host or model names), `deepseek` (always), `none`. */
  @IsIn(['auto', 'deepseek', 'none'])
  LLM_THINKING_FIELD: 'auto' | 'deepseek' | 'none' = 'auto';

  /** `reasoning_effort` sent with requests that do not turn thinking off (DeepSeek: `high` or `max`); unset = not sent. */
  @IsOptional()
  @IsString()
  LLM_REASONING_EFFORT?: string;

  /** How long SIGTERM waits for running generations before storing them as `interrupted`. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  DRAIN_TIMEOUT_MS = 10_000;

  /** Interval of WebSocket pings; a socket that missed one is dropped. */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  WS_PING_INTERVAL_MS = 30_000;
}

const OPTIONAL = [
  'REDIS_URL',
  'DEEPSEEK_API_KEY',
  'SESSION_SECRET',
  'GITHUB_TOKEN',
  'SOLVER_PR_REPOS',
  'ALLOWED_ORIGINS',
  'LLM_REASONING_EFFORT',
  'ALLOWED_HOSTS',
  'TRUST_PROXY',
];

/** Validates raw variables; throws one readable error naming every bad variable. */
export function validateEnvironment(raw: Record<string, unknown>): Environment {
  const known = [...Object.keys(new Environment()), ...OPTIONAL];
  const present: Record<string, unknown> = {};
  for (const key of known) {
    const value = raw[key];
    if (value !== '' && value !== undefined && value !== null) present[key] = value;
  }
  const env = plainToInstance(Environment, present, { exposeDefaultValues: true });
  const errors = validateSync(env);
  if (errors.length) {
    const lines = errors.map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`);
    throw new Error(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return env;
}
