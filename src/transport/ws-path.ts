/**
 * The one WebSocket path. Every gateway uses this constant: Nest shares one `ws` server between
 * gateways with the same port and path, and a path spelled differently (`ws` vs `/ws`) would silently
 * create a second, unreachable server.
 */
export const WS_PATH = '/ws';

/** Protocol version sent in `connected`. */
export const PROTOCOL_VERSION = 1;
