import { applyDecorators, UseFilters, UsePipes } from '@nestjs/common';
import { WebSocketGateway } from '@nestjs/websockets';
import { FrameValidationPipe } from './frame-validation.pipe';
import { WS_PATH } from './ws-path';
import { WsErrorFilter } from './ws-error.filter';

/**
 * A gateway on the shared `/ws` endpoint with the frame validation pipe and the error filter. Nest 11
 * applies no global pipes or filters to gateways, so every gateway takes them from here.
 */
export function FrameGateway(): ClassDecorator {
  return applyDecorators(WebSocketGateway({ path: WS_PATH }), UsePipes(new FrameValidationPipe()), UseFilters(new WsErrorFilter()));
}
