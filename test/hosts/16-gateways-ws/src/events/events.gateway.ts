import { SubscribeMessage, WebSocketGateway, WebSocketServer, WsResponse } from '@nestjs/websockets';
import { from, map, Observable } from 'rxjs';
import type { WebSocketServer as Server } from 'ws';

/**
 * The sample's gateway: its own port (8080 in the sample; EVENTS_PORT here, so parallel test runs do
 * not collide), answering `{"event":"events","data":…}` with three frames.
 */
@WebSocketGateway(Number(process.env.EVENTS_PORT ?? 8080))
export class EventsGateway {
  @WebSocketServer()
  server: Server;

  @SubscribeMessage('events')
  onEvent(_client: unknown, _data: unknown): Observable<WsResponse<number>> {
    return from([1, 2, 3]).pipe(map((item) => ({ event: 'events', data: item })));
  }
}
