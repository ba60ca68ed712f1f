import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { Environment } from '../config/environment';
import { parseAllowedOrigins, parseList } from './origin';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Whether `HOST` only listens on this machine (loopback addresses and `localhost`). */
export function isLoopback(host: string): boolean {
  return /^(127\.|::1$|\[::1\]$|localhost$)/i.test(host);
}

/** `Host: Example.org:3000` → `example.org`; `[::1]:3000` → `[::1]`. */
function hostName(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1);
  const colon = lower.indexOf(':');
  return colon < 0 ? lower : lower.slice(0, colon);
}

/**
 * The DNS-rebinding defence: the `Host` header names the server answers (`ALLOWED_HOSTS`, with or
 * without port, `*` for any). Unset: on a loopback `HOST` only the loopback names, otherwise any. The
 * hosts of `ALLOWED_ORIGINS` are always added. A page of `rebind.example` whose name now resolves to
 * 127.0.0.1 still says `Host: rebind.example`, so it gets 421 instead of the user's chats.
 */
@Injectable()
export class HostCheck {
  /** Lower-case names and name:port entries; undefined: any host. */
  private readonly allowed?: Set<string>;

  constructor(env: Environment) {
    const listed = parseList(env.ALLOWED_HOSTS);
    if (listed.includes('*') || (!listed.length && !isLoopback(env.HOST))) return;
    const names = listed.length ? listed : LOOPBACK_NAMES;
    const fromOrigins = parseAllowedOrigins(env.ALLOWED_ORIGINS).flatMap((origin) => {
      try {
        return [new URL(origin).host];
      } catch {
        return [];
      }
    });
    this.allowed = new Set([...names, ...fromOrigins].map((name) => name.toLowerCase()));
  }

  allows(req: IncomingMessage): boolean {
    if (!this.allowed) return true;
    const host = req.headers.host;
    if (!host) return false;
    return this.allowed.has(host.toLowerCase()) || this.allowed.has(hostName(host));
  }
}
