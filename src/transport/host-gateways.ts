import type { DiscoveryService } from '@nestjs/core';
import { GATEWAY_METADATA, GATEWAY_OPTIONS, PORT_METADATA } from '@nestjs/websockets/constants';
import { normalizePath } from '../common/mount';

/**
 * The host's Nest gateways (`@WebSocketGateway`) served on `path` of the app's HTTP server (no port
 * of their own): they would never get a socket, our upgrade listener answers that path. Read with
 * the constants @nestjs/websockets publishes for its decorator, for this start-up check only.
 */
export function hostGatewaysOn(discovery: DiscoveryService, path: string): string[] {
  const found: string[] = [];
  for (const wrapper of discovery.getProviders()) {
    const type = wrapper.metatype as object | null | undefined;
    if (!type || typeof type !== 'function' || !Reflect.getMetadata(GATEWAY_METADATA, type)) continue;
    const port = Number(Reflect.getMetadata(PORT_METADATA, type) ?? 0);
    const options = (Reflect.getMetadata(GATEWAY_OPTIONS, type) ?? {}) as { path?: string };
    if (port === 0 && typeof options.path === 'string' && normalizePath(options.path) === path) found.push(String(wrapper.name));
  }
  return found;
}
