import type { NextFunction, Request, Response } from 'express';
import type { HostCheck } from './host-check';

const HSTS = 'max-age=31536000; includeSubDomains';

/** `TRUST_PROXY` as Express takes it: `true`/`false`, a hop count, or addresses and subnets. */
export function trustProxyValue(value: string | undefined): boolean | number | string | undefined {
  if (value === undefined) return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  return /^\d+$/.test(value) ? Number(value) : value;
}

/**
 * What every request meets first: a `Host` the server does not answer gets 421 (DNS rebinding), and
 * an https request (directly, or `X-Forwarded-Proto` from a trusted proxy) gets HSTS. A plain-http
 * answer never carries HSTS: it would pin a name that has no https at all.
 */
export function httpEdge(hosts: HostCheck) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!hosts.allows(req)) {
      res.status(421).type('text/plain').send('Misdirected request: this server does not answer that host name');
      return;
    }
    if (req.secure) res.setHeader('Strict-Transport-Security', HSTS);
    next();
  };
}
