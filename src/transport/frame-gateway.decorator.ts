import { applyDecorators, type Type, UseFilters, UsePipes } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { FrameValidationPipe } from './frame-validation.pipe';
import { WsErrorFilter } from './ws-error.filter';

/** Marks a provider whose `@OnFrame` methods handle frames on our socket; found with Nest's `DiscoveryService`. */
export const FrameGatewayMarker = DiscoveryService.createDecorator<Record<string, never>>();

/**
 * A provider that handles frames on the chat's socket (served at `MountPoint.wsPath`), with the frame
 * validation pipe and the WS error filter. It is not a Nest `@WebSocketGateway`: the chat's socket is
 * its own `ws` server (FrameSocketServer), so a host's own gateways and adapter are left alone.
 * Its handlers are the methods marked `@OnFrame(type, Dto)`, usually one `handleMessage`.
 */
export function FrameGateway(): ClassDecorator {
  return applyDecorators(FrameGatewayMarker({}), UsePipes(new FrameValidationPipe()), UseFilters(new WsErrorFilter()));
}

/** One `@OnFrame` of a method: the frame type and the DTO its body is validated against. */
export interface FrameRoute {
  type: string;
  dto?: Type<unknown>;
}

const ON_FRAME = Symbol('onFrame');

/**
 * Routes frames of `type` to the method (stack one per type). The method's frame parameter is
 * validated as `dto` (class-validator, through the gateway's pipes), so one `handleMessage` can take
 * several types, each with its own DTO. The method runs through Nest's guards, interceptors, pipes
 * and filters, with the 'ws' context: `switchToWs().getClient()` is the socket, `getData()` the frame.
 */
export function OnFrame(type: string, dto?: Type<unknown>): MethodDecorator {
  return (_target, _key, descriptor) => {
    const method = descriptor.value as object;
    const routes = (Reflect.getMetadata(ON_FRAME, method) as FrameRoute[] | undefined) ?? [];
    Reflect.defineMetadata(ON_FRAME, [...routes, { type, dto }], method);
    return descriptor;
  };
}

/** The `@OnFrame` routes of a method, in the order they were written. */
export function frameRoutesOf(method: object): FrameRoute[] {
  return [...((Reflect.getMetadata(ON_FRAME, method) as FrameRoute[] | undefined) ?? [])].reverse();
}

export { ConnectionId, FRAME_ARGS, FRAME_PARAM, FrameBody, FrameParamtype, FrameSocket } from './frame-params';
