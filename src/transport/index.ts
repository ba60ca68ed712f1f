export * from './ws-path';
export * from './frames';
export * from './message-handler';
export * from './connection-registry';
export * from './fanout';
export * from './frame-gateway.decorator';
export * from './frame-ws.adapter';
export * from './transport.module';
