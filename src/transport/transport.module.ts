import { Global, Module } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry';
import { Fanout, LocalFanout } from './fanout';

@Global()
@Module({
  providers: [ConnectionRegistry, { provide: Fanout, useClass: LocalFanout }],
  exports: [ConnectionRegistry, Fanout],
})
export class TransportModule {}
