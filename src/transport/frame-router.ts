import { assignMetadata, Injectable, type ParamData } from '@nestjs/common';
import { DiscoveryService, ExternalContextCreator, MetadataScanner } from '@nestjs/core';
import type { WebSocket } from 'ws';
import { connectionIdOf } from './connection-registry';
import { FrameGatewayMarker, frameRoutesOf } from './frame-gateway.decorator';
import { FRAME_ARGS, FRAME_PARAM, FrameParamtype } from './frame-params';
import type { Frame } from './frames';

/** A frame's handler with Nest's pipeline around it: resolves to what the handler (or a filter) returned. */
export type FrameHandler = (socket: WebSocket, frame: Frame, type: string) => Promise<unknown>;

/** Frame types the socket server answers itself. */
const RESERVED = new Set(['ping', 'pong', 'connected', 'error']);

/** The TypeScript key of a method's parameter types (what Nest's pipes read a DTO from). */
const PARAMTYPES = 'design:paramtypes';

/** What the parameter decorators of frame handlers take from the call's arguments: (socket, frame, type). */
const paramsFactory = {
  exchangeKeyForValue(type: number, _data: ParamData, args: unknown[]): unknown {
    switch (type as FrameParamtype) {
      case FrameParamtype.SOCKET:
        return args[0];
      case FrameParamtype.FRAME:
        return args[1];
      case FrameParamtype.CONNECTION_ID:
        return connectionIdOf(args[0] as WebSocket);
      default:
        return undefined;
    }
  },
};

/** `handleMessage(msg, connectionId)` (MessageHandler): the frame first, its connection id second. */
function defaultParams(): object {
  return assignMetadata(assignMetadata({}, FrameParamtype.FRAME, 0, FRAME_PARAM), FrameParamtype.CONNECTION_ID, 1);
}

/**
 * The dispatch table of the chat's socket, built once at bootstrap: every `@OnFrame(type, Dto)`
 * method of every `@FrameGateway()` provider (found with Nest's DiscoveryService and
 * MetadataScanner), each wrapped by Nest's ExternalContextCreator, the way @nestjs/graphql runs
 * resolvers: the gateway's and the app's guards, interceptors, pipes and filters run around it, with
 * the 'ws' context type (`switchToWs().getClient()` is the socket, `getData()` the frame,
 * `getPattern()` its type) and `getHandler()` the method itself.
 *
 * A method that takes several types (the usual `handleMessage` of MessageHandler) gets one context
 * per type: Nest keeps a handler's parameter metadata per method name, so each type is registered
 * under `<method>:<type>` with the parameter types of the method and that type's DTO in the frame's
 * place, which is what the validation pipe validates against. The call itself is always the method.
 */
@Injectable()
export class FrameRouter {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly contexts: ExternalContextCreator,
  ) {}

  build(): Map<string, FrameHandler> {
    const table = new Map<string, FrameHandler>();
    const owners = new Map<string, string>();
    for (const wrapper of this.discovery.getProviders({ metadataKey: FrameGatewayMarker.KEY })) {
      const instance = wrapper.instance as object | undefined;
      const gatewayName = String(wrapper.name);
      if (!wrapper.isDependencyTreeStatic()) {
        throw new Error(
          `@FrameGateway() ${gatewayName} is request-scoped (or depends on a request-scoped provider): frame gateways are singletons, make it and its dependencies default-scoped`,
        );
      }
      if (!instance) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[name] as (...args: unknown[]) => unknown;
        for (const route of frameRoutesOf(method)) {
          const where = `${gatewayName}.${name}`;
          if (RESERVED.has(route.type)) {
            throw new Error(
              `@OnFrame('${route.type}') on ${where}: "${route.type}" is a frame type of the socket itself (docs/protocol.md); give the handler another type`,
            );
          }
          const first = owners.get(route.type);
          if (first) {
            throw new Error(`frame type "${route.type}" has two handlers, ${first} and ${where}: each type goes to one @OnFrame method; rename one of them`);
          }
          owners.set(route.type, where);
          table.set(route.type, this.wrap(instance, prototype, name, method, route.type, route.dto));
        }
      }
    }
    return table;
  }

  private wrap(instance: object, prototype: object, name: string, method: (...args: unknown[]) => unknown, type: string, dto: unknown): FrameHandler {
    const key = `${name}:${type}`;
    const owner = prototype.constructor;
    const params = (Reflect.getMetadata(FRAME_ARGS, owner, name) as object | undefined) ?? defaultParams();
    const types = [...((Reflect.getMetadata(PARAMTYPES, prototype, name) as unknown[] | undefined) ?? [])];
    for (const { index, data } of Object.values(params) as Array<{ index: number; data?: unknown }>) {
      if (dto && data === FRAME_PARAM) types[index] = dto;
    }
    Reflect.defineMetadata(FRAME_ARGS, params, owner, key);
    Reflect.defineMetadata(PARAMTYPES, types, prototype, key);
    const call = this.contexts.create(instance, method, key, FRAME_ARGS, paramsFactory, undefined, undefined, undefined, 'ws');
    return call as FrameHandler;
  }
}
