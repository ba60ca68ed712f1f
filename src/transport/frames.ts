import type { ErrorCode } from '../common/app-error';

/** Every frame, both ways, is one JSON object with a string `type`; `id` is the client's own. */
export interface Frame {
  type: string;
  id?: string;
  [field: string]: unknown;
}

/** An inbound frame after the adapter checked its shape. */
export interface ClientFrame extends Frame {
  id?: string;
}

export interface ErrorFrame extends Frame {
  type: 'error';
  code: ErrorCode;
  message: string;
  chat_id?: string;
  message_id?: string;
  run_id?: string;
  retry_after_ms?: number;
}

/** The one status type of a message (storage and frames share it). */
export type { MessageStatus } from '../common/message-status';

/** A frame of a generation's stream: numbered so a viewer can resume without gap or repeat. */
export interface SequencedFrame extends Frame {
  message_id: string;
  seq: number;
}
