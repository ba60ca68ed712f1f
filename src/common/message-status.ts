/** Where an answer is: `streaming` while it is generated, then how it ended (user messages are `complete`). */
export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'interrupted' | 'error';
