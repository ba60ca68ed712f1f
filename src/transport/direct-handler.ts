import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import {
  CUSTOM_ROUTE_ARGS_METADATA,
  EXCEPTION_FILTERS_METADATA,
  GUARDS_METADATA,
  INTERCEPTORS_METADATA,
  PARAMTYPES_METADATA,
  PIPES_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants';
import type { WebSocket } from 'ws';
import { FrameValidationPipe } from './frame-validation.pipe';
import { WsErrorFilter } from './ws-error.filter';

/** `@ConnectedSocket()` and `@MessageBody()` (Nest's WsParamtype.SOCKET and .PAYLOAD). */
const SOCKET = 0;
const PAYLOAD = 3;

/** A gateway handler as the adapter calls it: with the socket the frame came from. */
export type Invoke = (client: WebSocket, frame: unknown, type: string) => unknown;

/**
 * A handler of a `@FrameGateway()` called without Nest's per-call pipeline, when that pipeline
 * would only do what this does. For gateways Nest builds, per handler, a chain of async steps
 * (exception zone, guards, interceptors, a pipe runner per parameter, the param factory), and it
 * runs it for every frame; with a socket idle between turns that code runs cold, and took ~0.26 ms
 * of a 1-client turn before the validation pipe was even called (bench/findings.md).
 *
 * Taken only when the handler's whole pipeline is the one `@FrameGateway()` declares:
 * - no guards and no interceptors, on the class or the method (Nest 11 applies no global
 *   enhancers to gateways: its WS context creators are made without the app's config);
 * - pipes: the class's `FrameValidationPipe` alone, none on the method or a parameter;
 * - filters: the class's `WsErrorFilter` alone (the adapter answers a failure the same way: an
 *   `error` frame with the request's `id`, the socket left open);
 * - parameters: only `@MessageBody()` (the whole frame, no property key) and `@ConnectedSocket()`
 *   (a 'custom' parameter to pipes: ValidationPipe hands it back as it is).
 * Anything else (a guard added by a host app, an interceptor, a custom parameter decorator) gets
 * Nest's pipeline, unchanged: `undefined` here.
 *
 * The body goes through the same pipe instance, with the metadata Nest would give it.
 */
export function directHandler(instance: object, methodName: string): Invoke | undefined {
  const method = (instance as Record<string, unknown>)[methodName];
  if (typeof method !== 'function') return undefined;
  const target = instance.constructor;
  const own = (key: string): unknown[] => (Reflect.getMetadata(key, method) as unknown[] | undefined) ?? [];
  const ofClass = (key: string): unknown[] => (Reflect.getMetadata(key, target) as unknown[] | undefined) ?? [];
  if (own(GUARDS_METADATA).length || ofClass(GUARDS_METADATA).length) return undefined;
  if (own(INTERCEPTORS_METADATA).length || ofClass(INTERCEPTORS_METADATA).length) return undefined;
  if (own(PIPES_METADATA).length || own(EXCEPTION_FILTERS_METADATA).length) return undefined;
  const pipes = ofClass(PIPES_METADATA);
  const filters = ofClass(EXCEPTION_FILTERS_METADATA);
  if (pipes.length !== 1 || !(pipes[0] instanceof FrameValidationPipe)) return undefined;
  if (filters.length !== 1 || !(filters[0] instanceof WsErrorFilter)) return undefined;
  const pipe = pipes[0] as PipeTransform;

  const params = (Reflect.getMetadata(ROUTE_ARGS_METADATA, target, methodName) ?? {}) as Record<string, { index: number; data?: unknown; pipes?: unknown[] }>;
  // Without parameter decorators Nest hands the handler its raw arguments (socket, data, pattern).
  if (!Object.keys(params).length) return undefined;
  const types = (Reflect.getMetadata(PARAMTYPES_METADATA, instance, methodName) ?? []) as unknown[];
  let socketAt: number | undefined;
  let bodyAt: number | undefined;
  let length = 0;
  for (const [key, { index, data, pipes: own }] of Object.entries(params)) {
    if (key.includes(CUSTOM_ROUTE_ARGS_METADATA) || data !== undefined || own?.length) return undefined;
    const kind = Number(key.split(':')[0]);
    if (kind === SOCKET && socketAt === undefined) socketAt = index;
    else if (kind === PAYLOAD && bodyAt === undefined) bodyAt = index;
    else return undefined;
    length = Math.max(length, index + 1);
  }
  // What Nest's pipe runner gives a pipe for the body (its PipesConsumer names the param type).
  const metadata: ArgumentMetadata = { type: 'body', metatype: types[bodyAt ?? -1] as ArgumentMetadata['metatype'], data: undefined };
  const call = (client: WebSocket, body: unknown): unknown => {
    const args: unknown[] = new Array(length).fill(undefined);
    if (socketAt !== undefined) args[socketAt] = client;
    if (bodyAt !== undefined) args[bodyAt] = body;
    return (method as (...args: unknown[]) => unknown).apply(instance, args);
  };
  // Called a microtask later either way (as after Nest's awaits), so frames of one read keep their
  // order whatever their handler takes. With only the socket there is nothing for the pipe to
  // change (Nest would pass it the socket, a 'custom' parameter it returns as is).
  if (bodyAt === undefined) return (client) => Promise.resolve(undefined).then(() => call(client, undefined));
  return (client, frame) => Promise.resolve(pipe.transform(frame, metadata)).then((body) => call(client, body));
}
