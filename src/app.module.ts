import { DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module';
import { ChatModule } from './chat/chat.module';
import { AppConfigModule, ConfigOptions } from './config/app-config.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { LlmModule } from './llm/llm.module';
import { SolverModule } from './solver/solver.module';
import { StorageModule } from './storage/storage.module';
import { TransportModule } from './transport/transport.module';

@Module({})
export class AppModule {
  static forRoot(config: ConfigOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [AppConfigModule.forRoot(config), StorageModule, TransportModule, MetricsModule, AuthModule, LlmModule, ChatModule, HealthModule, SolverModule],
    };
  }
}
