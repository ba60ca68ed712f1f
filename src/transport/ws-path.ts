/**
 * The chat's socket path when the module is given no `wsPath` (MountPoint.wsPath is where
 * FrameSocketServer actually serves it).
 */
export const WS_PATH = '/ws';

/** Protocol version sent in `connected`. */
export const PROTOCOL_VERSION = 1;
