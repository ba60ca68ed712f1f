import type { ConnectionUser } from './connection-registry';

/** What the upgrade check decides for one WebSocket upgrade request on our path. */
export type UpgradeVerdict = { ok: true; user: ConnectionUser } | { ok: false; status: number; message: string };
